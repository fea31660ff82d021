"""Reference bounds of the RPX metrics (reference §8.8): the ``MetricSpec`` each metric with bounds has.

Φ orients a metric by its ``direction``; JEDI maps a raw value to a desirability in [0, 1] between
its ``worst`` and ``best`` values. A metric without a spec takes part in neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rpx_tasks.errors import MetricError

Direction = Literal["higher", "lower"]


@dataclass(frozen=True)
class MetricSpec:
    """One metric's direction and its best and worst reference values.

    ``direction="higher"`` requires ``best > worst``, ``"lower"`` requires ``best < worst``;
    construction raises MetricError otherwise.
    """

    name: str
    direction: Direction
    best: float
    worst: float
    description: str = ""

    def __post_init__(self) -> None:
        if self.direction not in ("higher", "lower"):
            raise MetricError(
                f"MetricSpec {self.name!r}: direction must be 'higher' or 'lower', got {self.direction!r}."
            )
        if (self.direction == "higher") != (self.best > self.worst) or self.best == self.worst:
            raise MetricError(
                f"MetricSpec {self.name!r}: direction {self.direction!r} contradicts best={self.best}, "
                f"worst={self.worst}.",
                hint="higher-is-better metrics need best > worst, lower-is-better ones best < worst",
            )

    @property
    def higher_is_better(self) -> bool:
        """Whether larger raw values are better."""
        return self.direction == "higher"

    def desirability(self, value: float) -> float:
        """Return clip((value - worst) / (best - worst), 0, 1): 1 at ``best``, 0 at or beyond ``worst``."""
        return min(1.0, max(0.0, (value - self.worst) / (self.best - self.worst)))


def _lower(name: str, worst: float, description: str) -> MetricSpec:
    return MetricSpec(name, "lower", 0.0, worst, description)


def _higher(name: str, description: str) -> MetricSpec:
    return MetricSpec(name, "higher", 1.0, 0.0, description)


_SPECS: tuple[MetricSpec, ...] = (
    _lower("absrel", 0.5, "absolute relative depth error"),
    _lower("rmse", 2.0, "depth RMSE in metres"),
    _lower("rmselog", 0.5, "RMSE of log depth"),
    _lower("silog", 25.0, "scale-invariant log error (x100)"),
    _higher("delta1", "fraction of pixels within 1.25x"),
    _higher("delta2", "fraction of pixels within 1.25^2 x"),
    _higher("delta3", "fraction of pixels within 1.25^3 x"),
    _higher("fscore_5cm", "point-cloud F-score at 5 cm"),
    _lower("chamfer_l1", 0.5, "L1 Chamfer distance in metres"),
    _lower("normal_mae", 45.0, "mean angular error of normals in degrees"),
    _lower("tgm", 0.1, "temporal geometric error on static pixels"),
    _lower("tgse", 0.1, "temporal geometric scale error"),
    _lower("tae", 0.1, "temporal alignment error"),
    _lower("opw", 0.1, "optical-flow-based warping error"),
    _higher("tcc", "temporal change consistency"),
    _higher("tmc", "temporal motion consistency"),
    _higher("mota", "multi-object tracking accuracy"),
    _higher("idf1", "identity F1"),
    _higher("hota", "higher-order tracking accuracy"),
    _lower("id_sw", 100.0, "identity switches"),
    _lower("idsw", 100.0, "identity switches (this package's name of id_sw)"),
    _higher("ap50", "average precision at IoU 0.5"),
    _higher("ap75", "average precision at IoU 0.75"),
    _higher("map", "mean average precision"),
    _higher("ar", "average recall"),
    _higher("auc_5deg", "pose AUC at 5 degrees"),
    _higher("auc_10deg", "pose AUC at 10 degrees"),
    _higher("auc_20deg", "pose AUC at 20 degrees"),
    _higher("metric_auc", "metric pose AUC"),
    _higher("fuzzy_acc", "fuzzy answer accuracy"),
    _higher("exact_match", "exact answer match"),
)

METRIC_SPECS: dict[str, MetricSpec] = {spec.name: spec for spec in _SPECS}


def metric_spec(name: str) -> MetricSpec:
    """Return the MetricSpec of ``name``. Raises MetricError when the metric has no reference bounds."""
    try:
        return METRIC_SPECS[name]
    except KeyError:
        raise MetricError(
            f"Metric {name!r} has no reference bounds (MetricSpec).",
            hint=f"metrics with bounds: {sorted(METRIC_SPECS)}",
        ) from None
