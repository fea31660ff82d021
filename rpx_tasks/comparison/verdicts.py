"""Verdicts of ``rpx compare``: improved / regressed / no change, from a delta, its interval and a direction.

Rule: a metric *changed* when its 95% interval excludes 0 (``low > 0`` or ``high < 0``) **and**
``|delta| >= min_delta``. A change in the metric's good direction is ``improved``, in the other
``regressed``; everything else is ``no change`` (``n/a`` when there is no delta: no paired frame
holds the metric in both runs).

``min_delta`` is absolute, in the metric's unit. The defaults (``DEFAULT_MIN_DELTA``) are small
changes that matter in practice; a metric not in the table gets ``FALLBACK_RELATIVE_MIN_DELTA`` of
its mean in run A (at least ``FALLBACK_FLOOR``). ``--min-delta NAME=VALUE`` overrides one metric.
"""

from __future__ import annotations

import math

IMPROVED = "improved"
REGRESSED = "regressed"
NO_CHANGE = "no change"
NOT_AVAILABLE = "n/a"
VERDICTS = (IMPROVED, REGRESSED, NO_CHANGE, NOT_AVAILABLE)

# Absolute minimum deltas, in each metric's own unit.
DEFAULT_MIN_DELTA: dict[str, float] = {
    # fractions in [0, 1]: half a percentage point
    **dict.fromkeys(
        (
            "delta1",
            "delta2",
            "delta3",
            "f1",
            "precision",
            "recall",
            "miou",
            "mota",
            "idf1",
            "keypoint_acc",
            "grounding_acc",
            "grounding_iou",
        ),
        0.005,
    ),
    "absrel": 0.005,  # relative depth error
    "rmse": 0.01,  # metres
    "sparse_rmse": 0.01,  # metres
    "rmselog": 0.005,
    "silog": 0.1,
    "rotation_error_deg": 0.1,  # degrees
    "pose_error_max_deg": 0.1,  # degrees
    "translation_error_m": 0.005,  # metres
    "fp": 0.1,  # counts per frame
    "fn": 0.1,
    "idsw": 0.1,
}
FALLBACK_RELATIVE_MIN_DELTA = 0.005  # 0.5% of run A's mean
FALLBACK_FLOOR = 1e-9


def default_min_delta(metric: str, mean_a: float | None) -> float:
    """Return the default minimum |delta| of ``metric``: its ``DEFAULT_MIN_DELTA`` entry, that of its base name
    for a range variant (``absrel_near`` uses ``absrel``'s), else 0.5% of |mean in A| (at least 1e-9)."""
    for name in (metric, metric.rsplit("_", 1)[0]):
        if name in DEFAULT_MIN_DELTA:
            return DEFAULT_MIN_DELTA[name]
    scale = abs(mean_a) if mean_a is not None and math.isfinite(mean_a) else 0.0
    return max(FALLBACK_RELATIVE_MIN_DELTA * scale, FALLBACK_FLOOR)


def min_delta_for(metric: str, mean_a: float | None, overrides: dict[str, float] | None) -> float:
    """Return ``overrides[metric]`` when given, else ``default_min_delta(metric, mean_a)``."""
    if overrides and metric in overrides:
        return float(overrides[metric])
    return default_min_delta(metric, mean_a)


def verdict(delta: float, low: float, high: float, higher_is_better: bool | None, min_delta: float) -> str:
    """Return improved / regressed / no change / n/a for ``delta`` (B - A) with interval [low, high] (see the
    module doc). A metric without a direction (``higher_is_better`` None) never improves or regresses."""
    if not all(math.isfinite(value) for value in (delta, low, high)):
        return NOT_AVAILABLE
    changed = (low > 0 or high < 0) and abs(delta) >= min_delta
    if not changed or higher_is_better is None:
        return NO_CHANGE
    return IMPROVED if (delta > 0) == bool(higher_is_better) else REGRESSED
