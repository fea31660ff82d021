"""The lock of a run folder: one writer at a time, and a dead writer's lock is taken over.

A run holds ``<run folder>/.rpx-run.lock`` from the moment it claims the folder until its report is
published or it fails. The lock is an advisory ``flock`` on that file, so the kernel releases it
when its holder dies, even by SIGKILL; the file also names the holder (pid, host, start time, run
id) for the error a second writer gets. A lock file left by a dead process of this host is taken
over (its flock is gone); one written on another host is never taken over, since a live run there
cannot be told from a dead one (the error says which file to remove once that run is known dead).
The holder deletes the file when it releases the lock.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rpx_tasks.errors import RunLockedError

try:  # POSIX; elsewhere the lock file alone decides (see ``_lock_descriptor``)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".rpx-run.lock"

logger = logging.getLogger("rpx_tasks.run_lock")


def _read_holder(path: Path) -> dict[str, Any]:
    """Return what a lock file says about its holder ({} when it is empty, unreadable or not JSON)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _pid_alive(pid: Any) -> bool:
    """Return whether a process with id ``pid`` runs on this host (a pid that is not an int: False)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def _describe(holder: dict[str, Any]) -> str:
    run = f", run {holder['run_id']}" if holder.get("run_id") else ""
    since = f", since {holder['started']}" if holder.get("started") else ""
    return f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}{run}{since}"


class RunLock:
    """A held lock on a run folder; ``release()`` gives it up and deletes the lock file."""

    def __init__(self, path: Path, descriptor: int, holder: dict[str, Any]) -> None:
        self.path = path
        self._descriptor: int | None = descriptor
        self.holder = holder

    @property
    def held(self) -> bool:
        """Return whether this object still holds the lock."""
        return self._descriptor is not None

    @classmethod
    def acquire(cls, folder: Path, run_id: str | None = None) -> "RunLock":
        """Take the lock of ``folder`` (created if missing) for this process; returns the RunLock.

        A lock left by a dead process of this host is taken over, with a warning. Raises
        RunLockedError naming the holder's pid and host when a live run holds it, or when the lock
        file was written on another host; OSError when the folder cannot be written.
        """
        lock = cls.try_acquire(folder, run_id)
        if lock is None:
            path = Path(folder) / LOCK_FILE
            holder = _read_holder(path)
            foreign = holder.get("host") not in (None, socket.gethostname())
            hint = (
                f"wait for that run to finish, or use another --output-dir; if no run is active on host "
                f"{holder.get('host')}, delete {path}"
                if foreign
                else "wait for that run to finish, or use another --output-dir"
            )
            raise RunLockedError(
                f"Another run is writing into {folder}: {_describe(holder)}.",
                hint=hint,
                details={"lock": str(path), "holder": holder},
            )
        return lock

    @classmethod
    def try_acquire(cls, folder: Path, run_id: str | None = None) -> "RunLock | None":
        """Take the lock of ``folder`` as ``acquire`` does; returns None where ``acquire`` raises RunLockedError.
        Raises OSError when the folder cannot be written."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / LOCK_FILE
        while True:
            descriptor = _lock_descriptor(path)
            if descriptor is None:
                return None
            try:
                same_file = os.fstat(descriptor).st_ino == os.stat(path).st_ino
            except FileNotFoundError:  # its holder released (and deleted) it meanwhile: lock the new file
                same_file = False
            if not same_file:
                os.close(descriptor)
                continue
            previous = _read_holder(path)
            if previous.get("host") not in (None, socket.gethostname()):
                os.close(descriptor)  # another host's run: never taken over
                return None
            if previous.get("pid") not in (None, os.getpid()):
                logger.warning("Taking over the stale lock of %s in %s (gone).", _describe(previous), folder)
            holder = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "run_id": run_id,
            }
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, (json.dumps(holder) + "\n").encode("utf-8"), 0)
            os.fsync(descriptor)
            return cls(path, descriptor, holder)

    def release(self) -> None:
        """Delete the lock file and give up the lock (in that order, so a waiting run locks a fresh file).
        Idempotent; raises nothing."""
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
        finally:
            os.close(descriptor)

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _lock_descriptor(path: Path) -> int | None:
    """Return an open descriptor of ``path`` holding its exclusive flock, or None when another open
    file holds it. Without ``fcntl``, the file is created exclusively and a file of a pid that no
    longer runs is replaced. Raises OSError."""
    if fcntl is not None:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return None
        return descriptor
    try:  # pragma: no cover - Windows
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:  # pragma: no cover - Windows
        holder = _read_holder(path)
        if holder.get("host") == socket.gethostname() and not _pid_alive(holder.get("pid")):
            path.unlink(missing_ok=True)
            return _lock_descriptor(path)
        return None
