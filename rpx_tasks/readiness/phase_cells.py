"""Per (scene, phase) cell means of a metric vector, the input of Φ and JEDI (reference §8.7 step 2).

Rows stream in once; only a running sum per cell is kept (memory O(cells x metrics)). A row lacking a
scene, a phase or any of the metrics is left out; a cell whose mean is not finite (a NaN or inf raw
value) is left out with a note.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rpx_tasks.constants import PHASES


def ordered(values: Iterable[str], preferred: Iterable[str]) -> list[str]:
    """Return the distinct ``values``: those in ``preferred`` first, in its order, then the rest sorted."""
    present, preferred = set(values), list(preferred)
    return [value for value in preferred if value in present] + sorted(present - set(preferred))


def phase_order(phases: Iterable[str]) -> list[str]:
    """Return ``phases`` in canonical order: clutter, interaction, clean, then unknown phases alphabetically."""
    return ordered(phases, PHASES)


@dataclass
class PhaseCells:
    """Cell means of ``metrics`` per (scene, phase); ``notes`` say what was left out and why."""

    metrics: list[str]
    means: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def phases(self) -> list[str]:
        """The phases with at least one cell, in canonical order."""
        return phase_order(phase for _, phase in self.means)

    def complete_case(self) -> tuple[np.ndarray, list[str], list[str], int]:
        """Return (X of shape (N, P, K), scenes, phases, n_dropped): the scenes that have a cell in every phase.

        ``n_dropped`` counts the scenes left out for a missing phase.
        """
        phases = self.phases
        scenes = sorted({scene for scene, _ in self.means})
        kept = [scene for scene in scenes if all((scene, phase) in self.means for phase in phases)]
        tensor = np.array(
            [[self.means[(scene, phase)] for phase in phases] for scene in kept], dtype=np.float64
        ).reshape(len(kept), len(phases), len(self.metrics))
        return tensor, kept, phases, len(scenes) - len(kept)


def collect_phase_cells(rows: Iterable[dict[str, Any]], metrics: Sequence[str]) -> PhaseCells:
    """Return the PhaseCells of ``rows`` (dicts with ``scene``, ``phase`` and the metric keys), read once.

    Raises nothing: rows without a scene / phase or missing a metric are skipped, and a cell with a
    non-finite mean is dropped, each counted in ``notes``.
    """
    names = list(metrics)
    sums: dict[tuple[str, str], list] = {}
    unplaced = incomplete = 0
    for row in rows:
        scene, phase = row.get("scene"), row.get("phase")
        if scene is None or phase is None:
            unplaced += 1
            continue
        values = [row.get(name) for name in names]
        if any(value is None for value in values):
            incomplete += 1
            continue
        cell = sums.setdefault((str(scene), str(phase)), [0, np.zeros(len(names))])
        cell[0] += 1
        cell[1] += np.asarray(values, dtype=np.float64)
    cells = PhaseCells(names)
    if unplaced:
        cells.notes.append(f"{unplaced} rows without a scene or phase left out")
    if incomplete:
        cells.notes.append(f"{incomplete} rows missing a value of {names} left out")
    non_finite = []
    for key, (count, total) in sums.items():
        mean = total / count
        if all(math.isfinite(value) for value in mean):
            cells.means[key] = mean
        else:
            non_finite.append(f"{key[0]}/{key[1]}")
    if non_finite:
        cells.notes.append(f"cells with a non-finite value left out: {', '.join(sorted(non_finite))}")
    return cells
