"""The run journal: what a run has computed, made durable as it goes, so a killed run resumes.

A run's rows and the state its scores still need (accumulators, timings) are committed to
``<run folder>/.rpx-checkpoint/`` every ``every_samples`` samples or ``every_seconds`` seconds,
whichever comes first, and once more at the end:

- ``rows-000001.parquet``, ``rows-000002.parquet``, ...: the rows since the previous commit, one
  file each (written under a temporary name, fsync'd, renamed);
- ``state-000002.npz``: the state's arrays (e.g. the previous frame's depth map);
- ``checkpoint.json``: the commit itself, replaced atomically last: how many samples are done, the
  id of the last one, the row files in order, the state's other values and its array file.

Anything ``checkpoint.json`` does not name (a row file or array file of a commit a kill cut short) is
deleted when the journal is opened. The final ``per_sample_metrics.parquet`` is assembled from the
row files, so an uninterrupted run and a resumed one write their rows the same way.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rpx_tasks.constants import CHECKPOINT_EVERY_SAMPLES, CHECKPOINT_EVERY_SECONDS
from rpx_tasks.errors import OutputError
from rpx_tasks.reports import publish

CHECKPOINT_DIR = ".rpx-checkpoint"
COMMIT_FILE = "checkpoint.json"
JOURNAL_VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    """The last commit of a journal: samples done, the id of the last one, the runner's state, and the run
    (id and config fingerprint) that wrote it."""

    samples_done: int
    last_id: str | None
    state: dict[str, Any]
    run_id: str | None = None
    fingerprint: str | None = None


def fsync_dir(folder: Path) -> None:
    """Make the entries of ``folder`` (renames, deletions) durable; a no-op where folders cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _split_arrays(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Return ``value`` as JSON values, each ndarray moved into ``arrays`` and replaced by ``{"__array__": key}``."""
    if isinstance(value, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = value
        return {"__array__": key}
    if isinstance(value, dict):
        return {str(name): _split_arrays(item, arrays) for name, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_split_arrays(item, arrays) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _join_arrays(value: Any, arrays: Any) -> Any:
    """Invert ``_split_arrays`` (lists stay lists)."""
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return np.array(arrays[value["__array__"]])
        return {name: _join_arrays(item, arrays) for name, item in value.items()}
    if isinstance(value, list):
        return [_join_arrays(item, arrays) for item in value]
    return value


class RunJournal:
    """The durable rows and state of one run folder (see the module doc).

    Use ``open()`` first (it returns the last Checkpoint, or None, and clears what no commit names),
    then ``write(row)`` per sample, ``commit(done, last_id, state)`` whenever ``due(done)``, and at the
    end ``assemble(path)``. ``on_commit(done)`` is called after each commit (e.g. to update ``run.json``);
    ``owner`` (``run_id``, ``fingerprint``) is written into every commit, so a journal is never taken for
    another run's.
    """

    def __init__(
        self,
        run_folder: Path,
        schema: pa.Schema,
        *,
        every_samples: int = CHECKPOINT_EVERY_SAMPLES,
        every_seconds: float = CHECKPOINT_EVERY_SECONDS,
        on_commit: Callable[[int], None] | None = None,
        owner: dict[str, str] | None = None,
    ) -> None:
        self.folder = Path(run_folder) / CHECKPOINT_DIR
        self._owner = dict(owner or {})  # run_id and fingerprint, written into every commit
        self.schema = schema
        self.every_samples = every_samples
        self.every_seconds = every_seconds
        self._on_commit = on_commit
        self._chunks: list[str] = []
        self._arrays_file: str | None = None
        self._buffer: dict[str, list] = {name: [] for name in schema.names}
        self._buffered = 0
        self._buffered_samples = 0
        self._committed = 0
        self._last_commit = time.monotonic()
        self._last_id: str | None = None

    @property
    def committed(self) -> int:
        """Return how many samples the last commit holds."""
        return self._committed

    def open(self) -> Checkpoint | None:
        """Return the journal's last Checkpoint (None for a new journal) and delete every file no commit
        names. Raises OutputError when the commit is unreadable or names a missing file (the hint says
        to start afresh with --no-resume)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        commit = self._read_commit()
        self._chunks = list(commit["chunks"]) if commit else []
        self._arrays_file = commit.get("arrays") if commit else None
        keep = {COMMIT_FILE, *self._chunks, *([self._arrays_file] if self._arrays_file else [])}
        for entry in self.folder.iterdir():
            if entry.name not in keep:
                entry.unlink(missing_ok=True)
        self._last_commit = time.monotonic()
        self._buffer = {name: [] for name in self.schema.names}
        self._buffered = 0
        self._buffered_samples = 0
        self._committed = 0
        self._last_id = None
        if commit is None:
            return None
        self._committed = int(commit["samples_done"])
        self._last_id = commit.get("last_id")
        arrays: Any = {}
        if self._arrays_file:
            with np.load(self.folder / self._arrays_file, allow_pickle=False) as loaded:
                arrays = {key: loaded[key] for key in loaded.files}
        return Checkpoint(
            self._committed,
            self._last_id,
            _join_arrays(commit["state"], arrays),
            run_id=commit.get("run_id"),
            fingerprint=commit.get("fingerprint"),
        )

    def _read_commit(self) -> dict[str, Any] | None:
        path = self.folder / COMMIT_FILE
        if not path.exists():
            return None
        try:
            commit = json.loads(path.read_text(encoding="utf-8"))
            missing = [name for name in commit["chunks"] if not (self.folder / name).is_file()]
            if commit.get("arrays") and not (self.folder / commit["arrays"]).is_file():
                missing.append(commit["arrays"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise OutputError(
                f"The run's checkpoint {path} cannot be read ({exc}).",
                hint="start the run afresh with --no-resume",
                details={"checkpoint": str(path)},
            ) from exc
        if missing or commit.get("version") != JOURNAL_VERSION:
            raise OutputError(
                f"The run's checkpoint {path} is incomplete or of another version (missing: {missing}).",
                hint="start the run afresh with --no-resume",
                details={"checkpoint": str(path), "missing": missing},
            )
        return commit

    def rows(self) -> Iterator[dict[str, Any]]:
        """Yield the committed rows in order, as dicts of the schema's columns. Raises OSError."""
        for name in self._chunks:
            yield from pq.read_table(self.folder / name, schema=self.schema).to_pylist()

    def write(self, row: dict[str, Any]) -> None:
        """Buffer one row until the next commit. Raises nothing."""
        for name in self.schema.names:
            self._buffer[name].append(row.get(name))
        self._buffered += 1
        self._buffered_samples += int(row.get("num_frames") or 1)  # a clip task's row holds a clip's frames
        self._last_id = row.get("id")

    def due(self, done: int) -> bool:
        """Return whether a commit is due with ``done`` samples done (by samples or by seconds)."""
        if done <= self._committed:
            return False
        elapsed = time.monotonic() - self._last_commit
        return done - self._committed >= self.every_samples or elapsed >= self.every_seconds

    def commit(self, done: int, state: dict[str, Any]) -> None:
        """Make the buffered rows and ``state`` (JSON values and ndarrays, nested) durable as the commit of
        ``done`` samples. Raises OutputError when ``done`` does not match the rows written (a bug); OSError
        (ENOSPC when the disk is full: the previous commit stays the valid one)."""
        if done != self._committed + self._buffered_samples:
            raise OutputError(
                f"Journal out of step: a commit of {done} samples, but the rows written hold "
                f"{self._committed + self._buffered_samples}.",
                hint="this is a bug in rpx-bench: please report it with the run folder",
            )
        chunks = list(self._chunks)
        if self._buffered:
            chunks.append(f"rows-{len(chunks) + 1:06d}.parquet")
            self._write_file(chunks[-1], lambda path: pq.write_table(pa.table(self._buffer, schema=self.schema), path))
        arrays: dict[str, np.ndarray] = {}
        values = _split_arrays(state, arrays)
        arrays_file = None
        if arrays:
            arrays_file = f"state-{len(chunks):06d}-{done}.npz"
            self._write_file(arrays_file, lambda path: _save_npz(path, arrays))
        commit = {
            "version": JOURNAL_VERSION,
            **self._owner,
            "samples_done": done,
            "last_id": self._last_id,
            "chunks": chunks,
            "arrays": arrays_file,
            "state": values,
        }
        self._write_file(COMMIT_FILE, lambda path: path.write_text(json.dumps(commit), encoding="utf-8"))
        fsync_dir(self.folder)
        previous_arrays, self._arrays_file = self._arrays_file, arrays_file
        if previous_arrays and previous_arrays != arrays_file:
            (self.folder / previous_arrays).unlink(missing_ok=True)
        self._chunks = chunks
        self._committed = done
        self._buffer = {name: [] for name in self.schema.names}
        self._buffered = 0
        self._buffered_samples = 0
        self._last_commit = time.monotonic()
        if self._on_commit is not None:
            self._on_commit(done)

    def _write_file(self, name: str, write: Callable[[Path], Any]) -> None:
        temp = self.folder / f".{name}.tmp"
        try:
            write(temp)
            publish(temp, self.folder / name)
        finally:
            temp.unlink(missing_ok=True)

    def assemble(self, final: Path, metadata: dict[str, str] | None = None) -> Path:
        """Write every committed row, in order, into a temporary Parquet file beside ``final`` (for
        ``reports.publish``); returns its path. ``metadata`` goes into the file's key-value metadata.
        Raises OSError (the temporary file is removed)."""
        temp = final.parent / f".{final.name}.assembling.tmp"
        schema = self.schema.with_metadata(metadata) if metadata else self.schema
        try:
            with pq.ParquetWriter(temp, schema) as writer:
                for name in self._chunks:
                    writer.write_table(
                        pq.read_table(self.folder / name, schema=self.schema).replace_schema_metadata(schema.metadata)
                    )
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return temp

    def discard(self) -> None:
        """Delete the journal's folder and everything in it. Raises nothing."""
        discard_journal(self.folder.parent)


def discard_journal(run_folder: Path) -> None:
    """Delete the journal of ``run_folder`` (``.rpx-checkpoint/``), if any. Raises nothing."""
    shutil.rmtree(Path(run_folder) / CHECKPOINT_DIR, ignore_errors=True)


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


# A write failed because the disk (or the user's quota, or the file-size limit) is full.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def is_disk_full(error: BaseException) -> bool:
    """Return whether ``error`` is an OSError of a full disk, quota or file-size limit."""
    return isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS


@contextmanager
def disk_full_as_output_error(folder: Path, journal: RunJournal | None = None) -> Iterator[None]:
    """Turn a full-disk OSError raised inside the block into an OutputError that says where space is needed
    and that the same command resumes after the journal's last commit (``journal`` None: before the run
    has one). Other errors pass unchanged."""
    try:
        yield
    except OSError as error:
        if not is_disk_full(error):
            raise
        try:
            free = f"{shutil.disk_usage(folder).free / 1e6:.1f} MB free"
        except OSError:
            free = "free space unknown"
        done = journal.committed if journal is not None else 0
        resumes = f"it resumes after sample {done}" if done else "nothing was computed yet"
        raise OutputError(
            f"The disk holding {folder} is full ({free}): {error.strerror or error}.",
            hint=f"free space there and run the same command again ({resumes}; earlier reports are intact)",
            details={"folder": str(folder), "samples_done": done, "errno": error.errno},
        ) from error
