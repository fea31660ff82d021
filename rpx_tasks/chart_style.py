"""What every chart shares, without a plotting library: its size, its grey levels and hatches, and its axis
labels (metric, unit and direction).

Every chart is ``CHART_WIDTH_PX`` x ``CHART_HEIGHT_PX`` pixels (1200 x 700), has a title, axis labels with
units and the metric's direction, and a legend, and is readable in grey-scale: series differ by grey level and
hatching or marker, never by colour alone. ``rpx_tasks.phase_chart`` (the run report's chart, drawn with
Pillow) and ``rpx_tasks.charts`` (the on-demand charts, matplotlib) both follow it.
"""

from __future__ import annotations

CHART_DPI = 100
CHART_WIDTH_PX = 1200
CHART_HEIGHT_PX = 700

# Grey levels (0 black .. 1 white) and hatches of the series (difficulty, run A/B, ...), in order:
# distinguishable without colour.
GREYS = ("0.85", "0.55", "0.25", "0.70", "0.40")
HATCHES = ("", "//", "xx", "..", "\\\\")
MARKERS = ("o", "s", "^", "D", "v")

# Units of metrics, for axis labels; a metric not listed is a ratio or a score (unitless).
METRIC_UNITS = {
    "rmse": "m",
    "sparse_rmse": "m",
    "translation_error_m": "m",
    "rotation_error_deg": "degrees",
    "pose_error_max_deg": "degrees",
    "fp": "per frame",
    "fn": "per frame",
    "idsw": "per frame",
}


def metric_label(metric: str, higher_is_better: bool | None, prefix: str = "") -> str:
    """Return an axis label: the metric, its unit and its direction, e.g. ``rmse [m] (lower is better)``."""
    base = metric.rsplit("_", 1)[0] if metric not in METRIC_UNITS else metric
    unit = METRIC_UNITS.get(metric, METRIC_UNITS.get(base, "unitless"))
    direction = {True: "higher is better", False: "lower is better"}.get(higher_is_better, "no direction")
    return f"{prefix}{metric} [{unit}] ({direction})"


__all__ = [
    "CHART_DPI",
    "CHART_HEIGHT_PX",
    "CHART_WIDTH_PX",
    "GREYS",
    "HATCHES",
    "MARKERS",
    "METRIC_UNITS",
    "metric_label",
]
