"""What a run publishes in Prefect: its labels (tags), artifact keys, the report's tables and the run summary.

Artifact keys name task, model, split, data source and device class
(``rpx-<task>-<model>-<split>-<data>-<device>-<kind>``, e.g.
``rpx-monocular-depth-ground-plane-prior-hard-sample-cpu-summary``), so each key's history in the UI
holds only comparable runs: the smoke deployment (built-in sample data, CPU) and a nightly run (Hub
data at a pinned revision, CUDA) never share a key.
"""

from __future__ import annotations

import math
import re
from typing import Any

from rpx_tasks import bench
from rpx_tasks.comparison.previous_run import ComparableLabels
from rpx_tasks.config import RunConfig
from rpx_tasks.reports import PHASE_SCORES_FILE
from rpx_tasks.run_identity import data_identity, data_source_label, device_class

# The artifacts write_report_step publishes, by kind: the markdown summary (with the run folder's path),
# the aggregated metrics table and the phase-scores table.
ARTIFACT_KINDS = ("summary", "metrics", "phases")
# Published by other steps: run-benchmark's progress, compare-previous's comparison.
PROGRESS_KIND = "progress"
COMPARISON_KIND = "comparison"

# The phase scores of result.json's readiness.wps that the phase table shows, in order, with their labels.
_PHASE_SCORES = (
    ("s_clutter", "clutter"),
    ("s_interaction", "interaction"),
    ("s_clean", "clean"),
    ("s_overall", "overall"),
    ("delta_int", "Δ interaction (S_I − S_C)"),
    ("delta_rec", "Δ recovery (S_L − S_I)"),
)


class RunLabels(ComparableLabels):
    """A run's ComparableLabels (task, model, split, data source, device class, shard), with the flow-run tags
    and artifact keys they give; ``shard`` (``"i/K"``) keeps a shard run's keys apart from the unsharded
    run's."""

    def tags(self, *, with_device: bool = True) -> list[str]:
        """Return the flow-run tags: ``task:<t>``, ``model:<m>``, ``split:<s>``, ``data:<source>`` and (unless
        ``with_device`` is False: the device is not resolved yet) ``device:<class>``; and ``shard:<i>/<K>`` for a
        shard run."""
        tags = [f"task:{self.task}", f"model:{self.model}", f"split:{self.split}", f"data:{self.data}"]
        tags += [f"shard:{self.shard}"] if self.shard is not None else []
        return [*tags, f"device:{self.device}"] if with_device else tags

    def key(self, kind: str) -> str:
        """Return the artifact key of ``kind`` for these labels (``artifact_key``)."""
        split = self.split if self.shard is None else f"{self.split}-shard-{self.shard.replace('/', 'of')}"
        return artifact_key(self.task, self.model, split, kind, data=self.data, device=self.device)


def run_labels(config: RunConfig, device: str, data: dict[str, Any] | None = None) -> RunLabels:
    """Return the RunLabels of a run: ``device`` is the resolved device, ``data`` the run's ``data_identity``
    (computed from the config when not given; ``unknown`` when its manifest cannot be read). Raises nothing."""
    if data is None:
        try:
            data = data_identity(config)
        except OSError:
            data = {}
    return RunLabels(
        config.task, config.display_name, config.split, data_source_label(data), device_class(device), config.shard
    )


def artifact_key(
    task_name: str, model: str, split: str, kind: str, *, data: str | None = None, device: str | None = None
) -> str:
    """Return a stable artifact key, lowercase letters, digits and dashes:
    ``rpx-<task>-<model>-<split>[-<data>][-<device>]-<kind>``."""
    parts = ["rpx", task_name, model, split, data, device, kind]
    slug = re.sub(r"[^a-z0-9]+", "-", "-".join(part for part in parts if part).lower()).strip("-")
    return re.sub(r"-{2,}", "-", slug)


def artifact_keys(labels: RunLabels) -> dict[str, str]:
    """Return the artifact key of every kind in ``ARTIFACT_KINDS`` for the run's labels."""
    return {kind: labels.key(kind) for kind in ARTIFACT_KINDS}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) or math.isinf(value) else round(float(value), 6)


def metrics_table(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the rows of the aggregated-metrics table (summary.md's first table): metric, value (mean),
    better (``higher`` / ``lower``), n, NaN and inf counts."""
    return [
        {
            "metric": name,
            "value": _number(stats.get("mean")),
            "better": {True: "higher", False: "lower"}.get(stats.get("higher_is_better")),
            "n": stats.get("count"),
            "nan": stats.get("nan_count"),
            "inf": stats.get("inf_count"),
        }
        for name, stats in payload["aggregated"].items()
    ]


def phase_table(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the rows of the phase-scores table (summary.md's Weighted Phase Score): phase and score of
    the primary metric per phase, overall and the Δ interaction / Δ recovery, then Φ and J_min when
    result.json holds them (``readiness.phi.phi``, ``readiness.jedi.j_min``; None when not computable)."""
    readiness = payload.get("readiness") or {}
    wps = readiness.get("wps") or {}
    rows = [{"phase": label, "score": _number(wps.get(name))} for name, label in _PHASE_SCORES if name in wps]
    for block, key, label in (("phi", "phi", "Φ (phase robustness)"), ("jedi", "j_min", "J_min (worst phase)")):
        if block in readiness:
            rows.append({"phase": label, "score": _number((readiness[block] or {}).get(key))})
    return rows


def summary_markdown(summary_md: str, payload: dict[str, Any], paths: bench.ReportPaths) -> str:
    """Return the markdown artifact: summary.md followed by the run id and the run folder's path (on the
    machine that ran it; a path, not a link, since a browser cannot open it)."""
    run = payload.get("run") or {}
    # The chart is a file beside summary.md; a relative image link would show as broken in the UI.
    text = "\n".join(line for line in summary_md.rstrip("\n").splitlines() if not line.startswith("![phase scores]"))
    return (
        text
        + "\n\n## Report files\n\n"
        + f"- Chart: `{PHASE_SCORES_FILE}` in the run folder\n"
        + f"- Run: `{run.get('id', '?')}`\n"
        + f"- Run folder (on the machine that ran it): `{paths.output_dir.resolve()}`\n"
    )


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
        "run_id": (payload.get("run") or {}).get("id"),
        "num_samples": payload["num_samples"],
        "primary_metric": primary,
        "primary_value": _number(payload["aggregated"].get(primary, {}).get("mean")),
        "s_overall": _number((payload["readiness"].get("wps") or {}).get("s_overall")),
        "output_dir": str(paths.output_dir.resolve()),
        "result_json": str(paths.result_json.resolve()),
        "summary_md": str(paths.summary_md.resolve()),
        "artifacts": keys,
    }


def publish_artifacts(labels: RunLabels, paths: bench.ReportPaths, payload: dict[str, Any]) -> dict[str, str]:
    """Create the markdown summary (with the run folder's path), the metrics table and (when the task has
    phase scores) the phase-scores table artifacts; returns the keys of those created.

    Must run inside a flow or task run. Raises Prefect's errors when the API does not answer.
    """
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    keys = artifact_keys(labels)
    title = f"{labels.task} / {labels.model} / {labels.split} ({labels.data}, {labels.device})"
    summary = summary_markdown(paths.summary_md.read_text(encoding="utf-8"), payload, paths)
    create_markdown_artifact(summary, key=keys["summary"], description=f"RPX summary: {title}")
    create_table_artifact(metrics_table(payload), key=keys["metrics"], description=f"RPX metrics: {title}")
    phases = phase_table(payload)
    if phases:
        create_table_artifact(phases, key=keys["phases"], description=f"RPX phase scores: {title}")
    else:
        del keys["phases"]
    return keys
