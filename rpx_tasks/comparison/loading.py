"""Find and read a finished run for ``rpx compare``: its result.json and its per-sample rows.

A run is named by its run folder, its ``result.json``, or a model/split results folder (or its
``latest`` pointer), which stands for the run ``latest`` points at.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from rpx_tasks.errors import ConfigError
from rpx_tasks.reports import PER_SAMPLE_FILE, RESULT_FILE
from rpx_tasks.run_record import LATEST, latest_run

# The key columns of per_sample_metrics.parquet; every other float column except these is a metric.
KEY_COLUMNS = ("id", "scene", "phase", "difficulty", "frame_idx")
NOT_METRICS = ("latency_ms",)


@dataclass(frozen=True)
class LoadedRun:
    """A finished run: its folder, result.json and per-sample rows (key columns and metric columns)."""

    folder: Path
    result: dict[str, Any]
    ids: np.ndarray
    scenes: np.ndarray
    phases: np.ndarray
    difficulties: np.ndarray
    metrics: dict[str, np.ndarray]  # float64, NaN where the metric is missing for a sample

    @property
    def task(self) -> str:
        """Return the run's task name."""
        return str(self.result.get("task"))

    @property
    def primary_metric(self) -> str:
        """Return the name of the task's primary metric."""
        return str(self.result.get("primary_metric"))


def resolve_run_folder(path: Path | str) -> Path:
    """Return the run folder ``path`` names: a run folder, its result.json, or a results folder / its
    ``latest`` pointer (the run ``latest`` points at). Raises ConfigError when nothing there is a run."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise ConfigError(
            f"No run at {path}: it does not exist.", hint="pass a run folder, its result.json or `latest`"
        )
    if path.name == LATEST and (path.is_symlink() or path.is_file()):
        target = latest_run(path.parent)  # named as the run it points at, not as ``.../latest``
    elif path.is_file():
        if path.name != RESULT_FILE:
            raise ConfigError(
                f"{path} is not a run: a file given for a run must be its {RESULT_FILE}.",
                hint="pass a run folder, its result.json, or a model/split folder (its `latest`)",
            )
        target = path.parent
    elif (path / RESULT_FILE).is_file():
        target = path
    else:
        target = latest_run(path)
    if target is None or not (target / RESULT_FILE).is_file():
        raise ConfigError(
            f"{path} is not a finished run: no {RESULT_FILE} there"
            + (f" nor in the run `{LATEST}` points at" if target is not None else ""),
            hint="pass a run folder holding result.json (see `rpx runs`), a result.json, or a model/split "
            "folder whose `latest` names a complete run",
        )
    return target


def _read_result(folder: Path) -> dict[str, Any]:
    """Return result.json of ``folder``. Raises ConfigError when it is not a JSON object of a run."""
    try:
        result = json.loads((folder / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"Cannot read {folder / RESULT_FILE}: {error}", hint="is the run complete?") from error
    if not isinstance(result, dict) or not result.get("task") or not isinstance(result.get("aggregated"), dict):
        raise ConfigError(
            f"{folder / RESULT_FILE} is not an RPX result (no task or aggregated metrics).",
            hint="pass the result.json that `rpx bench` writes",
        )
    return result


def read_per_sample(folder: Path, metric_names: list[str]) -> dict[str, np.ndarray]:
    """Return the columns of ``folder``'s per_sample_metrics.parquet: the key columns as object arrays and
    each metric of ``metric_names`` found there as float64 (NaN for null). Raises ConfigError when the
    file is missing or unreadable."""
    path = folder / PER_SAMPLE_FILE
    try:
        present = set(pq.read_schema(path).names)
        wanted = ("id", "scene", "phase", "difficulty", *metric_names)  # only these columns are read
        table = pq.read_table(path, columns=[name for name in dict.fromkeys(wanted) if name in present])
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"Cannot read the per-sample rows {path}: {error}",
            hint="compare complete runs: their folders hold per_sample_metrics.parquet",
        ) from error
    names = set(table.column_names)
    if "id" not in names:
        raise ConfigError(
            f"{path} has no `id` column: its samples cannot be paired with the other run's.",
            hint="compare run folders written by rpx bench (per_sample_metrics.parquet has id, scene, phase, ...)",
        )
    ids = table.column("id").to_pylist()
    if len(set(ids)) != len(ids):
        duplicated = len(ids) - len(set(ids))
        raise ConfigError(
            f"{path} holds {duplicated} duplicated sample id(s): its samples cannot be paired one to one.",
            hint="compare run folders written by rpx bench, one row per sample",
        )
    columns: dict[str, np.ndarray] = {}
    for key in ("id", "scene", "phase", "difficulty"):
        values = table.column(key).to_pylist() if key in names else [""] * table.num_rows
        columns[key] = np.array(["" if value is None else str(value) for value in values], dtype=object)
    for name in metric_names:
        if name in names:
            columns[name] = np.array(table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)
    return columns


def load_run(path: Path | str) -> LoadedRun:
    """Return the LoadedRun ``path`` names (see ``resolve_run_folder``). Raises ConfigError when it is not a
    finished run or its files cannot be read."""
    folder = resolve_run_folder(path)
    result = _read_result(folder)
    names = [name for name in result["aggregated"] if name not in KEY_COLUMNS + NOT_METRICS]
    columns = read_per_sample(folder, names)
    return LoadedRun(
        folder=folder,
        result=result,
        ids=columns["id"],
        scenes=columns["scene"],
        phases=columns["phase"],
        difficulties=columns["difficulty"],
        metrics={name: columns[name] for name in names if name in columns},
    )
