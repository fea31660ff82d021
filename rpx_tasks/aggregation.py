"""Streaming means that count what they cannot average (NaN, inf, undefined)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

from rpx_tasks.constants import PHASES


@dataclass
class MetricStats:
    """Running mean of one metric: finite values are averaged, NaN/inf/None are counted."""

    total: float = 0.0
    count: int = 0
    nan_count: int = 0
    inf_count: int = 0
    missing_count: int = 0

    def add(self, value: float | None) -> None:
        if value is None:
            self.missing_count += 1
        elif math.isnan(value):
            self.nan_count += 1
        elif math.isinf(value):
            self.inf_count += 1
        else:
            self.total += value
            self.count += 1

    @property
    def mean(self) -> float | None:
        """Mean of the finite values, None when there are none."""
        return self.total / self.count if self.count else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "count": self.count,
            "nan_count": self.nan_count,
            "inf_count": self.inf_count,
            "missing_count": self.missing_count,
        }


class MetricTable:
    """Running statistics of many metrics, keyed by metric name (union over all rows)."""

    def __init__(self, names: Iterable[str] = ()):
        self.stats: dict[str, MetricStats] = {name: MetricStats() for name in names}

    def add_row(self, metrics: dict[str, float | None]) -> None:
        for name, value in metrics.items():
            self.stats.setdefault(name, MetricStats()).add(value)

    def means(self) -> dict[str, float | None]:
        return {name: stats.mean for name, stats in self.stats.items()}


class CellTable:
    """Per (scene, phase) running means of every metric: the rows of ``cells.parquet``."""

    def __init__(self, names: Iterable[str]):
        self.names = list(names)
        self.cells: dict[tuple[str | None, str | None], list] = {}

    def add(self, scene: str | None, phase: str | None, metrics: dict[str, float | None]) -> None:
        cell = self.cells.get((scene, phase))
        if cell is None:
            cell = self.cells[(scene, phase)] = [0, MetricTable(self.names)]
        cell[0] += 1
        cell[1].add_row(metrics)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per cell, by scene then phase order: scene, phase, num_samples, metric means."""

        def order(key):
            scene, phase = key
            return (str(scene), PHASES.index(phase) if phase in PHASES else len(PHASES), str(phase))

        return [
            {"scene": scene, "phase": phase, "num_samples": count, **table.means()}
            for (scene, phase), (count, table) in sorted(self.cells.items(), key=lambda item: order(item[0]))
        ]


class ExactSum:
    """A sum of floats kept exactly (Shewchuk's non-overlapping partials, as ``math.fsum``), so sums made in
    parts and combined (``add_partials``) equal the sum made in one go, bit for bit, in any order.

    ``value`` is the exact sum correctly rounded; NaN and inf are summed apart (any NaN, or +inf with
    -inf, gives NaN). ``partials()`` is plain data (a list of floats) for a checkpoint or a shard's state.
    """

    def __init__(self, partials: Iterable[float] = ()) -> None:
        self._partials: list[float] = []
        self._special = 0.0
        self.add_partials(partials)

    def add(self, value: float) -> None:
        value = float(value)
        if not math.isfinite(value):
            self._special += value
            return
        kept = 0
        for other in self._partials:
            if abs(value) < abs(other):
                value, other = other, value
            high = value + other
            low = other - (high - value)
            if low:
                self._partials[kept] = low
                kept += 1
            value = high
        self._partials[kept:] = [value]

    def add_partials(self, partials: Iterable[float]) -> None:
        """Add every value of ``partials`` (another ExactSum's ``partials()``)."""
        for value in partials:
            self.add(value)

    def partials(self) -> list[float]:
        """Return values whose exact sum is this sum (NaN / inf included as one value)."""
        return [*self._partials, *([self._special] if self._special != 0.0 or math.isnan(self._special) else [])]

    @property
    def value(self) -> float:
        return math.fsum(self._partials) + self._special
