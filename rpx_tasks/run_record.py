"""Run identity and the run record: run ids, config fingerprints, ``run.json`` and ``latest``.

Every run gets an id ``<UTC yyyymmddTHHMMSSZ>-<6 hex>`` and the fingerprint of what it computes
(:func:`config_fingerprint`). Without ``--output-dir`` it writes into a fresh folder
``<results of model/split>/<run id>/`` (never an existing one), and ``latest`` beside the run
folders names the newest complete run. ``run.json`` in the run folder says how far the run got:

- ``running`` while it runs (left so by a killed run: ``rpx runs`` shows it as incomplete),
- ``failed`` when it raised, ``complete`` once its report is published.

A run into a folder that already holds a complete report (``--output-dir``) keeps its record
under the hidden staging name ``.run.json.running`` until it completes, and a failed run removes
it, so the earlier report's folder stays as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import rpx_tasks
from rpx_tasks.config import RunConfig
from rpx_tasks.errors import ConfigError
from rpx_tasks.model_selection import get_entry
from rpx_tasks.reports import RESULT_FILE, write_text_atomic
from rpx_tasks.sample_data.builtin import is_builtin

RUN_FILE = "run.json"
STAGED_RUN_FILE = ".run.json.running"
LATEST = "latest"
RUN_STATUSES = ("running", "complete", "failed")


def utc_now() -> str:
    """Return the current UTC time as ISO 8601 with a ``Z`` (seconds precision)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_run_id(now: datetime | None = None) -> str:
    """Return a fresh run id ``<UTC yyyymmddTHHMMSSZ>-<6 hex>`` (random hex: two runs in one second differ)."""
    stamp = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_identity(config: RunConfig) -> dict[str, Any]:
    """Return what names the config's model: registry name and target, import path, HF checkpoint, or
    the module and qualified name of a library model object. Raises ConfigError for an unknown name."""
    if config.hf_checkpoint:
        return {"hf_checkpoint": config.hf_checkpoint}
    if config.model_name and ":" in config.model_name:
        return {"import": config.model_name}
    if config.model_name:
        entry = get_entry(config.model_name, config.task)
        return {"registry": entry.name, "kind": entry.kind, "target": entry.target}
    kind = config.model if isinstance(config.model, type) or callable(config.model) else type(config.model)
    return {
        "object": f"{getattr(kind, '__module__', '?')}.{getattr(kind, '__qualname__', '?')}",
        "name": config.display_name,
    }


def data_identity(config: RunConfig) -> dict[str, Any]:
    """Return where the run's samples come from: the built-in sample data and package version, a manifest
    file and its sha256, or the dataset repo and revision. Raises OSError when the manifest cannot be read."""
    if is_builtin(config.manifest):
        return {"builtin": config.manifest, "version": rpx_tasks.__version__}
    if config.manifest:
        path = Path(config.manifest).resolve()
        return {"manifest": str(path), "sha256": _file_sha256(path)}
    return {"repo_id": config.effective_repo_id, "revision": config.effective_revision}


def config_fingerprint(config: RunConfig, data: dict[str, Any] | None = None) -> str:
    """Return the sha256 (hex) of a canonical JSON of what the run computes: task, model identity,
    model kwargs, split, data source (``data``: its ``data_identity`` when already computed),
    max_samples, SGC and vocabulary. Batch size, device and the output folder are not part of it.
    Raises ConfigError / OSError as ``model_identity`` / ``data_identity``."""
    identity = {
        "task": config.task,
        "model": model_identity(config),
        "model_kwargs": config.model_kwargs,
        "split": config.split,
        "data": data if data is not None else data_identity(config),
        "max_samples": config.max_samples,
        "geometric_coherence": config.geometric_coherence,
        "vocabulary": config.vocabulary,
    }
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass
class RunRecord:
    """The run record of result.json's ``run`` and of ``run.json``.

    ``task``, ``model``, ``split``, ``device`` and ``data`` (``data_identity``) let ``rpx runs`` describe
    a run that never wrote result.json. ``orchestration``: under Prefect, the flow-run id, flow-run
    name and deployment; else None.
    """

    id: str
    fingerprint: str
    folder: Path
    started: str
    task: str
    model: str
    split: str
    device: str
    data: dict[str, Any]
    status: str = "running"
    finished: str | None = None
    samples_done: int = 0
    samples_total: int | None = None
    resumed_from: str | None = None
    orchestration: dict[str, Any] | None = None
    staged: bool = False  # the record lives under STAGED_RUN_FILE until the run completes
    results_dir: Path | None = field(default=None, repr=False)  # the model/split folder holding ``latest``

    def as_dict(self) -> dict[str, Any]:
        """Return the record as plain JSON values (the folder is not part of it)."""
        return {
            "id": self.id,
            "fingerprint": self.fingerprint,
            "status": self.status,
            "started": self.started,
            "finished": self.finished,
            "samples_done": self.samples_done,
            "samples_total": self.samples_total,
            "resumed_from": self.resumed_from,
            "orchestration": self.orchestration,
            "task": self.task,
            "model": self.model,
            "split": self.split,
            "device": self.device,
            "data": self.data,
        }

    @property
    def record_path(self) -> Path:
        """Return where the record is written now: ``run.json``, or its staging name."""
        return self.folder / (STAGED_RUN_FILE if self.staged else RUN_FILE)


def _create_run_folder(config: RunConfig) -> tuple[str, Path, Path | None]:
    """Return (run id, run folder, results folder of model/split or None); the folder is new unless
    ``--output-dir`` names it. Raises ConfigError when the output folder is a file."""
    if config.output_dir:
        folder = config.output_path
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"--output-dir is a file: {folder}", hint="pass a folder with --output-dir")
        folder.mkdir(parents=True, exist_ok=True)
        return new_run_id(), folder, None
    results = config.results_path
    results.mkdir(parents=True, exist_ok=True)
    while True:
        run_id = new_run_id()
        try:
            (results / run_id).mkdir(exist_ok=False)  # never another run's folder
        except FileExistsError:
            continue
        return run_id, results / run_id, results


def begin_run(
    config: RunConfig, device: str, samples_total: int | None, orchestration: dict[str, Any] | None = None
) -> RunRecord:
    """Create the run's folder and write its record with status ``running`` (``device``: the resolved
    device); returns the RunRecord.

    Raises ConfigError (the output folder is a file, an unknown model name), OSError when it
    cannot be written.
    """
    data = data_identity(config)
    fingerprint = config_fingerprint(config, data)
    run_id, folder, results = _create_run_folder(config)
    record = RunRecord(
        id=run_id,
        fingerprint=fingerprint,
        folder=folder,
        started=utc_now(),
        task=config.task,
        model=config.display_name,
        split=config.split,
        device=device,
        data=data,
        samples_total=samples_total,
        orchestration=orchestration,
        staged=(folder / RESULT_FILE).exists(),
        results_dir=results,
    )
    write_text_atomic(record.record_path, json.dumps(record.as_dict(), indent=2) + "\n")
    return record


def complete_run(record: RunRecord, samples_done: int) -> RunRecord:
    """Mark ``record`` complete at ``samples_done`` (finished now); returns it. The caller writes result.json
    with ``as_dict()`` first, then calls ``publish_record``. Raises nothing."""
    record.status = "complete"
    record.samples_done = samples_done
    record.finished = utc_now()
    return record


def publish_record(record: RunRecord) -> None:
    """Write the complete record to ``run.json`` (dropping its staging name) and point ``latest`` at the run.

    Raises OSError when the record cannot be written.
    """
    staged = record.record_path
    record.staged = False
    write_text_atomic(record.record_path, json.dumps(record.as_dict(), indent=2) + "\n")
    if staged != record.record_path:
        staged.unlink(missing_ok=True)
    if record.results_dir is not None:
        point_latest(record.results_dir, record.id)


def fail_run(record: RunRecord, samples_done: int) -> None:
    """Record that the run raised: ``run.json`` says ``failed``, or a staged record is removed (the folder's
    earlier report stays as it was). Best effort: an OSError here is swallowed, the run's own error matters."""
    record.status = "failed"
    record.samples_done = samples_done
    record.finished = utc_now()
    try:
        if record.staged:
            record.record_path.unlink(missing_ok=True)
        else:
            write_text_atomic(record.record_path, json.dumps(record.as_dict(), indent=2) + "\n")
    except OSError:
        pass


def point_latest(results_dir: Path, run_id: str) -> Path:
    """Point ``results_dir/latest`` at ``run_id``: a relative symlink replaced atomically (temp link +
    rename), or a pointer file holding the id where links are unavailable. Returns its path. Raises OSError."""
    latest = results_dir / LATEST
    temp = results_dir / f".{LATEST}.{secrets.token_hex(4)}.tmp"
    try:
        os.symlink(run_id, temp, target_is_directory=True)
    except (OSError, NotImplementedError):
        write_text_atomic(temp, run_id + "\n")
    try:
        if latest.is_dir() and not latest.is_symlink():
            raise OSError(f"{latest} is a folder, not a run pointer")
        os.replace(temp, latest)
    finally:
        if temp.is_symlink() or temp.exists():
            temp.unlink()
    return latest


def latest_run(results_dir: Path) -> Path | None:
    """Return the folder ``results_dir/latest`` points at (symlink or pointer file), or None. Raises nothing."""
    latest = results_dir / LATEST
    if latest.is_symlink():
        return results_dir / os.readlink(latest)
    if latest.is_file():
        return results_dir / latest.read_text(encoding="utf-8").strip()
    return None
