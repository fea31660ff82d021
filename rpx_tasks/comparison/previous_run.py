"""Which earlier run is "the previous run" of a finished run, and its comparison (no Prefect).

The previous run is the newest *complete* run with the same task, model, split, data source
(``data_source_label``) and device class (``device_class``) among the run folders **beside** the run's
folder (links such as ``latest`` are skipped). Step ``compare-previous`` (``rpx_tasks.steps``) adds the
Prefect parts on top (a deployment's previous flow run wins the tie, the artifact, the regression event);
``rpx bench`` without Prefect calls ``compare_with_previous_run`` directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rpx_tasks.comparison.compare import compare_runs
from rpx_tasks.reports import RESULT_FILE
from rpx_tasks.run_identity import data_source_label, device_class
from rpx_tasks.run_record import RUN_FILE, read_json_object


@dataclass(frozen=True)
class ComparableLabels:
    """What makes two runs comparable: task, model (its name in reports), split, data source
    (``data_source_label``: ``sample``, ``manifest-<hash>`` or the Hub revision's short hash), device class
    (``cuda`` / ``cpu``) and, for a shard run, its shard (``"i/K"``: it compares only with the same shard's
    runs). ``rpx_tasks.steps.RunLabels`` adds the flow-run tags and artifact keys of these."""

    task: str
    model: str
    split: str
    data: str
    device: str
    shard: str | None = None


@dataclass(frozen=True)
class RunFolder:
    """A complete run found on disk: its id, folder, finish time and the flow run that made it (if any)."""

    id: str
    folder: Path
    finished: str
    flow_run_id: str | None


def labels_of_record(record: dict[str, Any]) -> ComparableLabels:
    """Return the labels of a run record (``run.json``). Raises nothing."""
    return ComparableLabels(
        task=str(record.get("task")),
        model=str(record.get("model")),
        split=str(record.get("split")),
        data=data_source_label(record.get("data") or {}),
        device=device_class(record.get("device")),
        shard=record.get("shard"),
    )


def holds_report_of(folder: Path, record: dict[str, Any]) -> bool:
    """Return whether ``folder``'s result.json is the report of run ``record`` (a complete run). Raises nothing."""
    result = read_json_object(folder / RESULT_FILE)
    return bool(result) and (result.get("run") or {}).get("id") == record.get("id")


def comparable_runs(run_folder: Path, labels: ComparableLabels, exclude_id: str | None) -> list[RunFolder]:
    """Return the complete runs beside ``run_folder`` (its sibling folders; links such as ``latest`` are
    skipped) with the same task, model, split, data source and device class as ``labels``, oldest first,
    leaving out run ``exclude_id`` (this run). Raises nothing (an unreadable folder is skipped)."""
    found = []
    try:
        siblings = [entry for entry in run_folder.resolve().parent.iterdir() if entry.is_dir()]
    except OSError:
        return []
    for folder in siblings:
        if folder.is_symlink() or folder == run_folder.resolve():
            continue
        record = read_json_object(folder / RUN_FILE)
        if not record or record.get("status") != "complete":
            continue
        same = (
            record.get("task") == labels.task
            and record.get("model") == labels.model
            and record.get("split") == labels.split
            and data_source_label(record.get("data") or {}) == labels.data
            and device_class(record.get("device")) == labels.device
            and record.get("shard") == labels.shard  # a shard run compares only with the same shard's runs
        )
        # result.json, the larger file, is read only for a run that matches.
        if same and record.get("id") != exclude_id and holds_report_of(folder, record):
            orchestration = record.get("orchestration") or {}
            found.append(
                RunFolder(
                    id=str(record["id"]),
                    folder=folder,
                    finished=str(record.get("finished") or record.get("started") or ""),
                    flow_run_id=orchestration.get("flow_run_id"),
                )
            )
    return sorted(found, key=lambda run: (run.finished, run.id))


def choose_previous(candidates: list[RunFolder], deployment_flow_run_ids: list[str]) -> RunFolder | None:
    """Return the previous run among ``candidates`` (oldest first): the one made by the newest of
    ``deployment_flow_run_ids`` (a deployment's earlier completed flow runs, newest first) when any is,
    else the newest candidate; None when there is none. Raises nothing."""
    by_flow_run = {run.flow_run_id: run for run in candidates if run.flow_run_id}
    for flow_run_id in deployment_flow_run_ids:
        if flow_run_id in by_flow_run:
            return by_flow_run[flow_run_id]
    return candidates[-1] if candidates else None


def outcome(previous: RunFolder, comparison: dict[str, Any]) -> dict[str, Any]:
    """Return the outcome of a comparison with ``previous``: status ``compared``, the previous run's id and
    folder and the primary metric's metric, verdict, delta and CI."""
    primary = comparison.get("primary") or {}
    return {
        "status": "compared",
        "previous_run_id": previous.id,
        "previous_folder": str(previous.folder),
        "metric": primary.get("metric"),
        "verdict": primary.get("verdict"),
        "delta": primary.get("delta"),
        "ci": primary.get("ci"),
    }


def compare_with_previous_run(run_folder: Path) -> dict[str, Any]:
    """Compare the complete run in ``run_folder`` with its previous run (module doc), as ``compare-previous``
    does without Prefect (no deployment tie-breaker, no artifact, no event).

    Returns ``{"status": "no previous run"}`` or the ``outcome``. Raises ConfigError when the two runs
    cannot be compared, OSError when a file cannot be read.
    """
    record = read_json_object(run_folder / RUN_FILE) or {}
    previous = choose_previous(comparable_runs(run_folder, labels_of_record(record), record.get("id")), [])
    if previous is None:
        return {"status": "no previous run"}
    return outcome(previous, compare_runs(previous.folder, run_folder))
