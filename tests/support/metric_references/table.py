"""The row types of the metric reference table, and what the reference modules share.

Each module of this package mirrors the module of ``rpx_tasks.metrics`` with the same name: a
plain float64 reference of each public function, written from its docstring and from
RPX-REFERENCE.md §1.4 / §8.3 / §8.4 (loops and straightforward numpy, no code shared with the
implementation), its cases (random inputs for a few seeds plus the edge cases: empty input,
all-invalid input, a single element, boundaries) and ``ROWS``, the module's table rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

SEEDS = (0, 1, 2)
INF = float("inf")


@dataclass(frozen=True)
class Case:
    """One input of a metric: ``make()`` returns the positional arguments of the call."""

    id: str
    make: Callable[[], tuple]
    xfail: str | None = None


@dataclass(frozen=True)
class MetricRow:
    """A public function of ``rpx_tasks.metrics`` (``module:function``), its reference, its
    cases and, for a per-sample metric, the MetricInfo tuple naming the keys it returns."""

    function: str
    reference: Callable[..., Any]
    cases: tuple[Case, ...]
    info: str | None = None  # "module:NAME" of the MetricInfo tuple naming the returned keys
    exact: frozenset[str] = field(default_factory=frozenset)  # keys compared exactly (counts)

    @property
    def name(self) -> str:
        """``module.function``, the row's test id."""
        return self.function.rsplit(".", 1)[-1].replace(":", ".")


def mean(values) -> float:
    """The mean of ``values`` with an exactly rounded sum (math.fsum)."""
    values = list(values)
    return math.fsum(values) / len(values)
