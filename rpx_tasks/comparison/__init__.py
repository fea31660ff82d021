"""``rpx compare``: two finished runs compared sample by sample, with scene-cluster bootstrap intervals.

Public API: ``compare_runs(a, b, *, resamples=2000, seed=0, min_delta=None) -> dict`` (the JSON that
``rpx compare --json`` prints; schema in docs/compare.md) and ``comparison_markdown(comparison) -> str``.
No Prefect here: the ``compare-previous`` step and the CLI call these.
"""

from __future__ import annotations

from rpx_tasks.comparison.compare import SCHEMA_VERSION, compare_runs
from rpx_tasks.comparison.render import comparison_markdown

__all__ = ["SCHEMA_VERSION", "compare_runs", "comparison_markdown"]
