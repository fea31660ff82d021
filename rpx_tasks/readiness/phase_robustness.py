"""Φ and J_min of a run from its per-sample rows, read once (reference §8.7-8.8)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rpx_tasks.contracts.metric_specs import metric_spec
from rpx_tasks.readiness.jedi import compute_jedi
from rpx_tasks.readiness.phase_cells import collect_phase_cells
from rpx_tasks.readiness.phi import compute_phi


def phase_robustness(rows: Iterable[dict[str, Any]], metrics: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Return ``{"phi": ..., "jedi": ...}`` (the ``readiness`` blocks of result.json) of ``rows`` over ``metrics``.

    Rows are dicts with ``scene``, ``phase`` and the metric keys (per_sample_metrics.parquet rows);
    memory is O(cells). Raises MetricError when a metric has no MetricSpec (a task declaring a Φ metric
    without reference bounds); a run whose data does not allow Φ gets null values with the reason.
    """
    for name in metrics:
        metric_spec(name)
    cells = collect_phase_cells(rows, metrics)
    return {"phi": compute_phi(cells), "jedi": compute_jedi(cells)}
