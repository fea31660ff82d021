"""The run record: ``run.json``, ``latest``, claiming a run folder and finding the run to resume.

Every run gets an id ``<UTC yyyymmddTHHMMSSZ>-<6 hex>`` and the fingerprint of what it computes
(``rpx_tasks.run_identity``). Without ``--output-dir`` it writes into a fresh folder
``<results of model/split>/<run id>/`` (never an existing one), and ``latest`` beside the run
folders names the newest complete run. ``run.json`` in the run folder says how far the run got:

- ``running`` while it runs (left so by a killed run: ``rpx runs`` shows it as incomplete),
- ``failed`` when it raised, ``complete`` once its report is published.

A run into a folder that already holds a complete report (``--output-dir``) keeps its record
under the hidden staging name ``.run.json.running`` until it completes, and a failed run that
cannot be resumed removes it, so the earlier report's folder stays as it was.

Resume (``open_run``): a run that was killed (record ``running``) or failed on something worth
retrying (record ``failed`` with ``resumable``: a full disk, a transient error) is *incomplete*.
Running the same command again resumes the newest incomplete run with the same fingerprint, in its
own folder; with ``--output-dir`` the folder's incomplete run must have the same fingerprint
(ConfigError otherwise). ``resume=False`` (``--no-resume``) starts afresh. Every run holds its
folder's lock (``rpx_tasks.run_lock``) from here until it completes or fails.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rpx_tasks.config import RunConfig
from rpx_tasks.errors import ConfigError
from rpx_tasks.reports import RESULT_FILE, write_text_atomic
from rpx_tasks.run_identity import config_fingerprint, data_identity, new_run_id, utc_now
from rpx_tasks.run_journal import CHECKPOINT_DIR, discard_journal
from rpx_tasks.run_lock import LOCK_FILE, RunLock

RUN_FILE = "run.json"
STAGED_RUN_FILE = ".run.json.running"
LATEST = "latest"

logger = logging.getLogger("rpx_tasks.run")


@dataclass
class RunRecord:
    """The run record of result.json's ``run`` and of ``run.json``.

    ``task``, ``model``, ``split``, ``device`` and ``data`` (``data_identity``) let ``rpx runs`` describe
    a run that never wrote result.json. ``orchestration``: under Prefect, the flow-run id, flow-run
    name and deployment; else None. ``shard``: ``"i/K"`` for a shard run (``--shard``); ``merged_from``: for
    a run that ``rpx merge`` made, the shard runs it merged (id, shard, folder, device). Both are written to
    ``run.json`` only when set.
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
    resumed_from: int | None = None  # samples an earlier attempt had done when this attempt resumed the run
    attempts: int = 1
    resumable: bool = False  # a failed run that the same command resumes (a full disk, a transient error)
    orchestration: dict[str, Any] | None = None
    abandoned_by: str | None = None  # the run that `--no-resume` started instead of resuming this one
    staged: bool = False  # the record lives under STAGED_RUN_FILE until the run completes
    shard: str | None = None
    merged_from: list[dict[str, Any]] | None = None
    results_dir: Path | None = field(default=None, repr=False)  # the model/split folder holding ``latest``
    lock: RunLock | None = field(default=None, repr=False, compare=False)  # held from open_run to the end

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
            "attempts": self.attempts,
            "resumable": self.resumable,
            "abandoned_by": self.abandoned_by,
            "orchestration": self.orchestration,
            "task": self.task,
            "model": self.model,
            "split": self.split,
            "device": self.device,
            "data": self.data,
            **({"shard": self.shard} if self.shard is not None else {}),
            **({"merged_from": self.merged_from} if self.merged_from is not None else {}),
        }

    @property
    def record_path(self) -> Path:
        """Return where the record is written now: ``run.json``, or its staging name."""
        return self.folder / (STAGED_RUN_FILE if self.staged else RUN_FILE)


def _create_run_folder(results: Path) -> tuple[str, Path]:
    """Return (run id, run folder): a new folder below ``results``, never an existing one. Raises OSError."""
    results.mkdir(parents=True, exist_ok=True)
    while True:
        run_id = new_run_id()
        try:
            (results / run_id).mkdir(exist_ok=False)  # never another run's folder
        except FileExistsError:
            continue
        return run_id, results / run_id


def read_json_object(path: Path) -> dict[str, Any] | None:
    """Return the JSON object in ``path``, or None when it is missing, unreadable or not an object."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def is_incomplete(record: dict[str, Any] | None) -> bool:
    """Return whether a run record is of a run to resume: ``running`` (killed), or ``failed`` and resumable."""
    if not record:
        return False
    return record.get("status") == "running" or (record.get("status") == "failed" and bool(record.get("resumable")))


def pending_record(folder: Path) -> tuple[dict[str, Any], bool] | None:
    """Return (the record of the incomplete run in ``folder``, whether it is staged), or None. A staged
    record (``.run.json.running``, beside an earlier complete report) comes first, unless ``run.json``
    already says that run completed (a kill between publishing the record and removing the staged one).
    Raises nothing."""
    record = read_json_object(folder / RUN_FILE)
    staged = read_json_object(folder / STAGED_RUN_FILE)
    if is_incomplete(staged) and not (record and record.get("id") == staged.get("id")):
        return staged, True
    if is_incomplete(record):
        return record, False
    return None


def _record_from(saved: dict[str, Any], folder: Path, staged: bool, results: Path | None) -> RunRecord:
    """Return the RunRecord of an incomplete run's saved record, resumed now (``running``, one more attempt)."""
    return RunRecord(
        id=saved["id"],
        fingerprint=saved["fingerprint"],
        folder=folder,
        started=saved.get("started") or utc_now(),
        task=saved.get("task"),
        model=saved.get("model"),
        split=saved.get("split"),
        device=saved.get("device"),
        data=saved.get("data") or {},
        shard=saved.get("shard"),
        samples_done=int(saved.get("samples_done") or 0),
        samples_total=saved.get("samples_total"),
        attempts=int(saved.get("attempts") or 1) + 1,
        staged=staged,
        results_dir=results,
    )


def _run_folders(results: Path) -> list[Path]:
    """Return the run folders below ``results``, newest first (``latest`` and other entries left out)."""
    if not results.is_dir():
        return []
    folders = [entry for entry in results.iterdir() if entry.is_dir() and not entry.is_symlink()]
    return sorted(folders, key=lambda path: path.name, reverse=True)


def _incomplete_runs(results: Path, fingerprint: str) -> Iterator[tuple[RunRecord, RunLock]]:
    """Yield the incomplete runs below ``results`` with ``fingerprint``, newest first, each with its lock held
    (the caller keeps or releases it); a run another live process holds is skipped, with a warning when
    its lock names another host. Completed folders a kill left a journal in are tidied on the way."""
    for folder in _run_folders(results):
        pending = pending_record(folder)
        if pending is None:
            _tidy_complete_folder(folder)
            continue
        if pending[0].get("fingerprint") != fingerprint or pending[0].get("id") != folder.name:
            continue
        lock = RunLock.try_acquire(folder, run_id=folder.name)
        if lock is None:
            holder = read_json_object(folder / LOCK_FILE) or {}
            if holder.get("host") not in (None, socket.gethostname()):
                logger.warning(
                    "Not resuming run %s: its lock names host %s (delete %s if no run is active there).",
                    folder.name,
                    holder.get("host"),
                    folder / LOCK_FILE,
                )
            continue
        pending = pending_record(folder)  # read again under the lock: it may have completed meanwhile
        if pending is None:
            lock.release()
            continue
        yield _record_from(pending[0], folder, pending[1], results), lock


def _tidy_complete_folder(folder: Path) -> None:
    """Remove the journal a kill left in a completed run's folder (after its report was published). Raises nothing."""
    record = read_json_object(folder / RUN_FILE)
    if not (record and record.get("status") == "complete" and (folder / CHECKPOINT_DIR).exists()):
        return
    try:
        lock = RunLock.try_acquire(folder, run_id=folder.name)
    except OSError:
        return
    if lock is not None:
        discard_journal(folder)
        lock.release()


def _resume_in_results(results: Path, fingerprint: str) -> RunRecord | None:
    """Return the newest incomplete run below ``results`` with ``fingerprint`` whose lock this process could
    take, with its lock held; else None."""
    for record, lock in _incomplete_runs(results, fingerprint):
        record.lock = lock
        return record
    return None


def _abandon_incomplete(results: Path, fingerprint: str, by: str) -> None:
    """Mark the incomplete runs below ``results`` with ``fingerprint`` failed for good (``--no-resume``
    started run ``by`` afresh), so a later plain command does not resume them; their journals go."""
    for record, lock in list(_incomplete_runs(results, fingerprint)):
        record.lock = lock
        record.attempts -= 1  # _record_from counted an attempt that is not made
        record.abandoned_by = by
        discard_journal(record.folder)
        fail_run(record, record.samples_done, resumable=False)


def _claim_output_dir(folder: Path, fingerprint: str, resume: bool) -> tuple[RunLock, RunRecord | None]:
    """Lock ``--output-dir`` ``folder`` and return (the lock, the record of its incomplete run to resume, or
    None). Raises RunLockedError when another run holds it, ConfigError when it is a file or its incomplete
    run has another fingerprint (and ``resume``)."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--output-dir is a file: {folder}", hint="pass a folder with --output-dir")
    lock = RunLock.acquire(folder)
    pending = pending_record(folder)
    if pending is None or not resume:
        return lock, None
    saved, staged = pending
    if saved.get("fingerprint") != fingerprint:
        lock.release()
        raise ConfigError(
            f"{folder} holds an incomplete run ({saved.get('id')}: {saved.get('samples_done', 0)} of "
            f"{saved.get('samples_total', '?')} samples done) of another configuration.",
            hint="run the command that started it to resume it, pass --no-resume to discard it and start afresh, "
            "or choose another --output-dir",
            details={"folder": str(folder), "run_id": saved.get("id"), "fingerprint": saved.get("fingerprint")},
        )
    return lock, _record_from(saved, folder, staged, None)


def open_run(
    config: RunConfig,
    device: str,
    samples_total: int | None,
    orchestration: dict[str, Any] | None = None,
    *,
    resume: bool = True,
) -> RunRecord:
    """Claim the run's folder, holding its lock, and write its record with status ``running``; returns the
    RunRecord (``resumed_from`` set when it resumes an incomplete run: see the module doc).

    ``device``: the resolved device; ``orchestration``: the Prefect flow run, if any. Raises
    RunLockedError (another run writes into ``--output-dir``), ConfigError (the output folder is a file,
    an incomplete run of another configuration is there, an unknown model name), OSError when the
    folder cannot be written.
    """
    data = data_identity(config)
    fingerprint = config_fingerprint(config, data)
    record: RunRecord | None = None
    if config.output_dir:
        lock, record = _claim_output_dir(config.output_path, fingerprint, resume)
        if record is None:
            run_id, folder, results = new_run_id(), config.output_path, None
    else:
        results = config.results_path
        record = _resume_in_results(results, fingerprint) if resume else None
        if record is None:
            run_id, folder = _create_run_folder(results)
            lock = RunLock.acquire(folder, run_id=run_id)
            if not resume:
                _abandon_incomplete(results, fingerprint, by=run_id)
    if record is not None:
        record.resumed_from = record.samples_done
        record.device = device
        record.orchestration = orchestration
        record.samples_total = samples_total
        record.lock = record.lock or lock
        if record.lock.holder.get("run_id") is None:
            record.lock.holder["run_id"] = record.id
    else:
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
            shard=config.shard,
            staged=(folder / RESULT_FILE).exists(),
            results_dir=results,
            lock=lock,
        )
        discard_journal(folder)  # an earlier run's, in an --output-dir: never to be taken for this run's
    try:
        write_record(record)
    except BaseException:
        release_run(record)
        raise
    return record


def begin_run(
    config: RunConfig, device: str, samples_total: int | None, orchestration: dict[str, Any] | None = None
) -> RunRecord:
    """Start a new run (never a resumed one): ``open_run`` with ``resume=False``, its lock released at once.

    For callers that only need a run folder and record (tests, tools); a benchmark run uses ``open_run``.
    Raises as ``open_run``.
    """
    record = open_run(config, device, samples_total, orchestration, resume=False)
    release_run(record)
    return record


def write_record(record: RunRecord) -> None:
    """Write ``record`` where it lives now (``run.json`` or its staging name). Raises OSError."""
    write_text_atomic(record.record_path, json.dumps(record.as_dict(), indent=2) + "\n")


def release_run(record: RunRecord) -> None:
    """Release the run folder's lock, if held (the lock file is deleted). Raises nothing."""
    if record.lock is not None:
        record.lock.release()


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
    write_record(record)
    if staged != record.record_path:
        staged.unlink(missing_ok=True)
    if record.results_dir is not None:
        point_latest(record.results_dir, record.id)


def fail_run(record: RunRecord, samples_done: int, *, resumable: bool = False) -> None:
    """Record that the run raised and release its lock. ``resumable`` (a full disk, a transient error): the
    record says ``failed`` and ``resumable`` and the same command resumes the run. Otherwise ``run.json``
    says ``failed``, or a staged record is removed (the folder's earlier report stays as it was). Best
    effort: an OSError here is swallowed, the run's own error matters."""
    record.status = "failed"
    record.resumable = resumable
    record.samples_done = samples_done
    record.finished = utc_now()
    try:
        if record.staged and not resumable:
            record.record_path.unlink(missing_ok=True)
        else:
            write_record(record)
    except OSError:
        pass
    finally:
        release_run(record)


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
