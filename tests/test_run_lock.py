"""The run-folder lock (issue 10, requirement 5): one writer at a time, a dead writer's lock taken over."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from rpx_tasks.errors import RunLockedError
from rpx_tasks.run_lock import LOCK_FILE, RunLock

HOLD_LOCK = """
import sys, time
from pathlib import Path
from rpx_tasks.run_lock import RunLock
lock = RunLock.acquire(Path(sys.argv[1]), run_id="holder-run")
print("held", flush=True)
time.sleep(60)
"""


def hold_in_subprocess(folder) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(folder)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_writer_fails_at_once_naming_the_holder(tmp_path):
    holder = hold_in_subprocess(tmp_path)
    try:
        start = time.perf_counter()
        with pytest.raises(RunLockedError) as caught:
            RunLock.acquire(tmp_path)
        assert time.perf_counter() - start < 1.0
        message = str(caught.value)
        assert f"pid {holder.pid}" in message and socket.gethostname() in message and "holder-run" in message
        assert caught.value.hint and "--output-dir" in caught.value.hint
        assert RunLock.try_acquire(tmp_path) is None
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_of_a_killed_holder_is_taken_over(tmp_path):
    holder = hold_in_subprocess(tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == holder.pid  # left behind
    with RunLock.acquire(tmp_path, run_id="next") as lock:
        assert json.loads((tmp_path / LOCK_FILE).read_text()) == lock.holder
        assert lock.holder["pid"] == os.getpid() and lock.holder["run_id"] == "next"
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_stale_lock_file_of_a_dead_pid_is_taken_over(tmp_path, caplog):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    lock = RunLock.acquire(tmp_path)
    assert lock.held and "stale lock" in caplog.text
    lock.release()
    lock.release()  # idempotent
    assert not lock.held and not (tmp_path / LOCK_FILE).exists()


def test_a_lock_written_on_another_host_is_never_taken_over(tmp_path):
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": 4242, "host": "gpu-node-7"}))
    with pytest.raises(RunLockedError) as caught:
        RunLock.acquire(tmp_path)
    assert "gpu-node-7" in str(caught.value) and str(tmp_path / LOCK_FILE) in caught.value.hint


def test_release_lets_the_next_writer_in(tmp_path):
    first = RunLock.acquire(tmp_path)
    with pytest.raises(RunLockedError):
        RunLock.acquire(tmp_path)  # a second open file in the same process conflicts too
    first.release()
    RunLock.acquire(tmp_path).release()
