"""What a complete run folder holds, for the tests that list one."""

from __future__ import annotations

# The files of a complete run folder, sorted: the report, its chart and the run record. Nothing else
# (no journal, no lock, no temporary file) is left once a run completes.
REPORT_FILES = [
    "cells.parquet",
    "per_sample_metrics.parquet",
    "phase_scores.png",
    "result.json",
    "run.json",
    "summary.md",
]
