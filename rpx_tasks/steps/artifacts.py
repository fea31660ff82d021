"""What a run publishes in Prefect: artifact keys, the metrics table and the run summary."""

from __future__ import annotations

import math
import re
from typing import Any

from rpx_tasks import bench
from rpx_tasks.config import RunConfig

# The artifacts write_report_step publishes, by kind: markdown summary, metrics table, link to the report.
ARTIFACT_KINDS = ("summary", "metrics", "output")

# The phase scores of result.json's readiness.wps that the metrics table shows, in order.
_PHASE_SCORES = ("s_clutter", "s_interaction", "s_clean", "s_overall", "delta_int", "delta_rec")


def artifact_key(task_name: str, model: str, split: str, kind: str) -> str:
    """Return a stable artifact key from task, model and split: lowercase letters, digits and dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", f"rpx-{task_name}-{model}-{split}-{kind}".lower()).strip("-")
    return re.sub(r"-{2,}", "-", slug)


def artifact_keys(config: RunConfig) -> dict[str, str]:
    """Return the artifact key of every kind in ``ARTIFACT_KINDS`` for the run's task, model and split."""
    return {kind: artifact_key(config.task, config.display_name, config.split, kind) for kind in ARTIFACT_KINDS}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) or math.isinf(value) else round(float(value), 6)


def metrics_table(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the rows of the table artifact: every aggregated metric, then the phase scores."""
    rows = [
        {
            "section": "metric",
            "name": name,
            "value": _number(stats.get("mean")),
            "higher_is_better": stats.get("higher_is_better"),
        }
        for name, stats in payload["aggregated"].items()
    ]
    wps = payload["readiness"].get("wps") or {}
    for name in _PHASE_SCORES:
        if name in wps:
            rows.append({"section": "phase score", "name": name, "value": _number(wps[name]), "higher_is_better": None})
    return rows


def run_summary(
    config: RunConfig, payload: dict[str, Any], paths: bench.ReportPaths, device: str, keys: dict[str, str]
) -> dict[str, Any]:
    """Return the small JSON dict a flow run returns (identity, headline numbers, report paths, artifact keys)."""
    primary = payload["primary_metric"]
    return {
        "task": config.task,
        "model": config.display_name,
        "split": config.split,
        "device": device,
        "num_samples": payload["num_samples"],
        "primary_metric": primary,
        "primary_value": _number(payload["aggregated"].get(primary, {}).get("mean")),
        "s_overall": _number((payload["readiness"].get("wps") or {}).get("s_overall")),
        "output_dir": str(paths.output_dir.resolve()),
        "result_json": str(paths.result_json.resolve()),
        "summary_md": str(paths.summary_md.resolve()),
        "artifacts": keys,
    }


def publish_artifacts(config: RunConfig, paths: bench.ReportPaths, payload: dict[str, Any]) -> dict[str, str]:
    """Create the markdown summary, the metrics table and the report-folder link artifacts; returns their keys.

    Must run inside a flow or task run. Raises Prefect's errors when the API does not answer.
    """
    from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

    keys = artifact_keys(config)
    title = f"{config.task} / {config.display_name} / {config.split}"
    create_markdown_artifact(
        paths.summary_md.read_text(encoding="utf-8"), key=keys["summary"], description=f"RPX summary: {title}"
    )
    create_table_artifact(
        metrics_table(payload), key=keys["metrics"], description=f"RPX metrics and phase scores: {title}"
    )
    output = paths.output_dir.resolve()
    create_link_artifact(
        output.as_uri(), link_text=str(output), key=keys["output"], description=f"RPX report folder: {title}"
    )
    return keys
