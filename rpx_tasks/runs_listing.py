"""``rpx runs``: the runs under a results folder, read from their ``run.json`` and ``result.json``.

A run's status is ``complete`` (result.json written), ``incomplete`` (its record says running and
there is no result.json of it: killed, or still running; or it failed on something worth retrying,
a full disk or a crash: the same command resumes it) or ``failed`` (its record says failed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rpx_tasks.errors import ConfigError
from rpx_tasks.reports import RESULT_FILE
from rpx_tasks.run_record import RUN_FILE, STAGED_RUN_FILE, read_json_object

LISTED_STATUSES = ("complete", "incomplete", "failed")

# The columns of the listing, in order.
RUN_COLUMNS = (
    "id",
    "task",
    "model",
    "split",
    "status",
    "started",
    "samples",
    "primary_metric",
    "primary_value",
    "device",
    "data_revision",
    "shard",
)


def data_revision(data: dict[str, Any]) -> str | None:
    """Return the revision of a run's data source: the Hub revision, the manifest's sha256 (first 12
    hex digits) or the built-in sample data's package version."""
    if data.get("revision"):
        return str(data["revision"])
    if data.get("sha256"):
        return f"sha256:{str(data['sha256'])[:12]}"
    if data.get("version"):
        return f"{data.get('builtin')}@{data['version']}"
    return None


def _status(record: dict[str, Any], result: dict[str, Any] | None) -> str:
    """Return complete / incomplete / failed for a run record and the result.json beside it (if any)."""
    if record.get("status") == "failed":
        return "incomplete" if record.get("resumable") else "failed"
    result_run = (result or {}).get("run") or {}
    if record.get("status") == "complete" or result_run.get("id") == record.get("id"):
        return "complete" if result is not None else "incomplete"
    return "incomplete"


def _run_row(record: dict[str, Any], result: dict[str, Any] | None, folder: Path) -> dict[str, Any]:
    """Return the listing row of one run record (result.json's numbers when the run is complete)."""
    status = _status(record, result)
    mine = result if status == "complete" else None
    primary = (mine or {}).get("primary_metric")
    value = ((mine or {}).get("aggregated") or {}).get(primary or "", {}).get("mean")
    return {
        "id": record.get("id"),
        "task": record.get("task"),
        "model": record.get("model"),
        "split": record.get("split"),
        "shard": record.get("shard"),  # "i/K" for a shard run (rpx bench --shard), else None
        "status": status,
        "started": record.get("started"),
        "finished": record.get("finished"),
        # frames for a clip task (num_frames), as samples_total counts them
        "samples_done": (mine or {}).get("num_frames", (mine or {}).get("num_samples", record.get("samples_done"))),
        "samples_total": record.get("samples_total"),
        "primary_metric": primary,
        "primary_value": value,
        "device": record.get("device"),
        "data_revision": data_revision(record.get("data") or {}),
        "fingerprint": record.get("fingerprint"),
        "folder": str(folder),
    }


def _folder_rows(folder: Path) -> list[dict[str, Any]]:
    """Return the rows of the runs recorded in ``folder``: its ``run.json`` and a staged record of a run
    into a folder with an earlier report (``.run.json.running``)."""
    result = read_json_object(folder / RESULT_FILE)
    rows = []
    for name in (RUN_FILE, STAGED_RUN_FILE):
        record = read_json_object(folder / name)
        if record is not None and record.get("id"):
            rows.append(_run_row(record, result if name == RUN_FILE else None, folder))
    return rows


def list_runs(
    results_dir: Path,
    *,
    task: str | None = None,
    model: str | None = None,
    split: str | None = None,
    status: str | None = None,
) -> list[dict[str, Any]]:
    """Return the runs under ``results_dir`` (every folder holding a run record, at any depth), oldest
    first, keeping those that match every filter given. ``latest`` links are not followed twice.

    Raises ConfigError when ``results_dir`` is not a folder or ``status`` is not a listed status.
    """
    if status is not None and status not in LISTED_STATUSES:
        raise ConfigError(f"Unknown run status {status!r}.", hint=f"use one of: {', '.join(LISTED_STATUSES)}")
    if not results_dir.is_dir():
        raise ConfigError(
            f"No results folder at {results_dir}.",
            hint="pass the folder your runs write to (default ./rpx_results), e.g. `rpx runs path/to/rpx_results`",
        )
    folders = sorted(
        {path.parent for name in (RUN_FILE, STAGED_RUN_FILE) for path in results_dir.rglob(name)}
    )  # rglob does not follow symlinks such as ``latest``
    wanted = {"task": task, "model": model, "split": split, "status": status}
    rows = [row for folder in folders for row in _folder_rows(folder)]
    rows = [row for row in rows if all(value is None or row[key] == value for key, value in wanted.items())]
    return sorted(rows, key=lambda row: (str(row["started"]), str(row["id"])))


def format_run_cell(row: dict[str, Any], column: str) -> str:
    """Return the text of one cell of the listing (``samples`` is done/total; None is an en dash)."""
    if column == "samples":
        total = row["samples_total"]
        return (
            f"{row['samples_done'] if row['samples_done'] is not None else '–'}/{total if total is not None else '?'}"
        )
    value = row[column]
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
