"""JEDI and J_min (reference §8.8): desirability of the task's metric vector, per (scene, phase) cell.

d_k = clip((x_k − worst) / (best − worst), 0, 1) with the metric's ``MetricSpec`` bounds; a cell's
J is the geometric mean of its d_k (0 when any d_k is 0); a phase's J is the mean J of its cells;
``overall`` is the mean J of every cell; ``j_min`` the lowest J of the three phases clutter,
interaction and clean (the worst phase), null with a reason unless all three have cells; a phase
of another name is reported in ``per_phase`` but never counts towards ``j_min``.
Every cell with finite means counts (not only the complete-case scenes of Φ); cells with a
non-finite mean are left out with a note (``phase_cells``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rpx_tasks.constants import PHASES
from rpx_tasks.contracts.metric_specs import metric_spec
from rpx_tasks.readiness.phase_cells import PhaseCells, phase_order


def cell_jedi(values: np.ndarray, metrics: list[str]) -> float:
    """J of one cell: the geometric mean of the metrics' desirabilities, 0 when any of them is 0."""
    desirability = [metric_spec(name).desirability(float(value)) for name, value in zip(metrics, values)]
    if min(desirability) <= 0.0:
        return 0.0
    return math.exp(sum(math.log(d) for d in desirability) / len(desirability))


def compute_jedi(cells: PhaseCells) -> dict[str, Any]:
    """Return the ``readiness.jedi`` block of result.json: j_min, per_phase {phase: mean J}, overall,
    metrics_used, notes and reason (None, or why j_min is null). Raises nothing."""
    metrics = list(cells.metrics)
    notes = list(cells.notes)
    reason = None
    if not metrics:
        reason = "the task declares no JEDI metric vector"
    elif not cells.means:
        reason = "no (scene, phase) cell with every metric"
    if reason is not None:
        empty = {"j_min": None, "per_phase": {}, "overall": None}
        return {**empty, "metrics_used": metrics, "notes": [*notes, reason], "reason": reason}
    by_phase: dict[str, list[float]] = {}
    out_of_window = 0
    for (_, phase), values in cells.means.items():
        by_phase.setdefault(phase, []).append(cell_jedi(values, metrics))
        out_of_window += sum(
            not min(spec.best, spec.worst) <= value <= max(spec.best, spec.worst)
            for spec, value in zip(map(metric_spec, metrics), values)
        )
    if out_of_window:
        notes.append(f"{out_of_window} cell means outside their metric's [best, worst] window (clipped)")
    per_phase = {phase: float(np.mean(by_phase[phase])) for phase in phase_order(by_phase)}
    every = [j for values in by_phase.values() for j in values]
    missing = [phase for phase in PHASES if phase not in per_phase]
    if missing:
        reason = f"J_min needs all three phases; no cell of {', '.join(missing)}"
        notes.append(reason)
    extra = sorted(set(per_phase) - set(PHASES))
    if extra:
        notes.append(f"phases outside clutter / interaction / clean left out of J_min: {', '.join(extra)}")
    return {
        "j_min": None if missing else min(per_phase[phase] for phase in PHASES),
        "per_phase": per_phase,
        "overall": float(np.mean(every)),
        "metrics_used": metrics,
        "notes": notes,
        "reason": reason,
    }
