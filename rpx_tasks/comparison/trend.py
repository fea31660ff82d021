"""The points of ``rpx runs --plot``: per complete run of one task/model/split, the primary metric's mean with its
scene-cluster bootstrap 95% interval (from the run's per-sample rows) and the overall WPS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rpx_tasks.comparison.bootstrap import scene_bootstrap
from rpx_tasks.comparison.loading import load_run
from rpx_tasks.errors import ConfigError

TREND_KEYS = ("task", "model", "split")


def check_single_series(runs: list[dict[str, Any]]) -> None:
    """Raise ConfigError unless the complete ``runs`` (rows of ``list_runs``) share one task, model and split, and
    there is at least one."""
    complete = [run for run in runs if run["status"] == "complete"]
    if not complete:
        raise ConfigError(
            "No complete run to plot.", hint="run `rpx runs` without --plot to see the runs and their status"
        )
    for key in TREND_KEYS:
        values = sorted({str(run[key]) for run in complete})
        if len(values) > 1:
            raise ConfigError(
                f"The runs listed mix {key}s ({', '.join(values)}): a trend needs runs of one task, model and split.",
                hint="narrow the listing with --task, --model and --split, e.g. "
                "`rpx runs --task monocular_depth --model ground_plane_prior --split hard --plot trend.png`",
            )


def trend_points(runs: list[dict[str, Any]], *, resamples: int = 2000, seed: int = 0) -> list[dict[str, Any]]:
    """Return one point per complete run of ``runs`` (rows of ``list_runs``, oldest first): ``id``, ``started``,
    ``metric``, ``higher_is_better``, ``mean``, ``ci`` [low, high] and ``wps_overall``. Raises ConfigError when the
    runs mix tasks, models or splits, or none is complete (``check_single_series``), or a run cannot be read."""
    check_single_series(runs)
    points = []
    for run in runs:
        if run["status"] != "complete":
            continue
        loaded = load_run(Path(run["folder"]))
        metric = loaded.primary_metric
        stats = loaded.result["aggregated"].get(metric) or {}
        mean, ci = stats.get("mean"), None
        if metric in loaded.metrics:
            result = scene_bootstrap(loaded.metrics[metric], loaded.scenes, resamples=resamples, seed=seed)
            mean, ci = float(result.estimate[0]), [float(result.low[0]), float(result.high[0])]
        points.append(
            {
                "id": run["id"],
                "started": run["started"],
                "metric": metric,
                "higher_is_better": stats.get("higher_is_better"),
                "mean": mean,
                "ci": ci,
                "wps_overall": ((loaded.result.get("readiness") or {}).get("wps") or {}).get("s_overall"),
            }
        )
    return points
