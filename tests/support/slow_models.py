"""A monocular-depth model that takes its time, for the orchestration tests (fan-out, timeouts, collisions).

``--model tests.support.slow_models:build`` with the model kwarg ``delay_s`` (seconds each batch sleeps,
default 0.2). Its predictions do not depend on the delay (1 m plus the red channel / 255, in metres), so runs
with different delays have the same per-sample results. The sleep releases the GIL, so runs in parallel
processes overlap even on a busy machine.
"""

from __future__ import annotations

import time

import numpy as np


class SlowDepth:
    """Depth from the red channel, after sleeping ``delay_s`` per batch."""

    task = "monocular_depth"
    torch_module = None

    def __init__(self, delay_s: float) -> None:
        self.name = "slow_depth"
        self.delay_s = float(delay_s)

    def setup(self) -> None:
        pass

    def predict(self, batch):
        time.sleep(self.delay_s)
        return [1.0 + sample.rgb[..., 0].astype(np.float32) / 255.0 for sample in batch]


def build(device: str = "cpu", delay_s: float = 0.2) -> SlowDepth:
    """The slow model (any device: it computes in numpy)."""
    return SlowDepth(delay_s)
