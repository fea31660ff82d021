"""A monocular-depth model that logs every sample it predicts and can SIGKILL its own process.

For the kill-and-resume tests: ``rpx bench monocular_depth --model tests.support.killable_models:build``
(with the repository on PYTHONPATH). Read from the environment, so they stay out of the run's
config fingerprint:

- ``RPX_TEST_CALL_LOG``: a file each predicted sample appends ``<pid> <sample id> <unix time>`` to
  (one ``write`` per line on an O_APPEND descriptor: nothing is lost when the process is killed);
- ``RPX_TEST_KILL_AT``: ``<sample id>:<seconds>``: when that sample is predicted, the process
  sends itself SIGKILL after that many seconds (0: at once, mid-batch), from a timer thread, so
  the kill lands wherever the run is by then (inference, scoring, a commit, the report write);
- ``RPX_TEST_RAISE_AT``: ``<sample id>[:<times>]``: the first ``times`` (default 1) times this model
  object is asked for that sample it raises RuntimeError (a transient failure: a retry with the
  same object goes on once they are used up);
- ``RPX_TEST_FILL_DISK_AT``: ``<sample id>:<file>``: when that sample is predicted, ``<file>`` is
  written until its disk is full (ENOSPC), so the run's next write fails as on a full disk;
- ``RPX_TEST_SLEEP_S``: seconds each prediction sleeps (default 0.002).
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np


def kill_self_after(seconds: float) -> None:
    """SIGKILL this process after ``seconds`` (at once for 0)."""
    if seconds <= 0:
        os.kill(os.getpid(), signal.SIGKILL)
    threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGKILL)).start()


def fill_disk(path: str) -> None:
    """Write ``path`` until its disk is full (ENOSPC); the file stays."""
    block = b"\0" * (64 * 1024)
    with open(path, "ab", buffering=0) as handle:
        try:
            while True:
                handle.write(block)
        except OSError:
            pass


def depth_of(rgb: np.ndarray) -> np.ndarray:
    """A deterministic depth map of a frame: 1 m plus its red channel in metres / 255."""
    return 1.0 + rgb[..., 0].astype(np.float32) / 255.0


class CountingDepth:
    """Depth from the red channel; logs each predicted sample and kills itself where told (module doc)."""

    task = "monocular_depth"

    def __init__(self, device: str = "cpu") -> None:
        self.name = "counting_depth"
        self.device = device
        self.torch_module = None
        self._log: int | None = None
        kill_at = os.environ.get("RPX_TEST_KILL_AT") or ""
        self._kill_id, _, delay = kill_at.rpartition(":")
        self._kill_delay = float(delay) if kill_at else 0.0
        self._sleep = float(os.environ.get("RPX_TEST_SLEEP_S") or 0.002)
        raise_id, _, times = (os.environ.get("RPX_TEST_RAISE_AT") or "").partition(":")
        self._raise_id = raise_id or None
        self._raise_times = int(times or 1)
        self._fill_id, _, self._fill_path = (os.environ.get("RPX_TEST_FILL_DISK_AT") or "").partition(":")

    def setup(self) -> None:
        path = os.environ.get("RPX_TEST_CALL_LOG")
        if path:
            self._log = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def predict(self, batch):
        predictions = []
        for sample in batch:
            if self._raise_id and sample.id == self._raise_id and self._raise_times > 0:
                self._raise_times -= 1
                raise RuntimeError(f"transient failure at sample {sample.id} (RPX_TEST_RAISE_AT)")
            if self._log is not None:
                os.write(self._log, f"{os.getpid()} {sample.id} {time.time():.6f}\n".encode())
            if self._fill_id and sample.id == self._fill_id:
                fill_disk(self._fill_path)
            if self._kill_id and sample.id == self._kill_id:
                kill_self_after(self._kill_delay)
            time.sleep(self._sleep)
            predictions.append(depth_of(sample.rgb))
        return predictions


def build(device: str = "cpu") -> CountingDepth:
    """The factory ``--model tests.support.killable_models:build`` names."""
    return CountingDepth(device=device)
