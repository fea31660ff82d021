"""The unit of work every task, model and metric shares: one decoded frame with its labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rpx_tasks.errors import AdapterError


@dataclass
class Sample:
    """One decoded frame of a split.

    ``phase`` is ``clutter|interaction|clean`` (or None when the manifest does not say),
    ``rgb`` is (H, W, 3) uint8, ``ground_truth`` is whatever the task's loader returns,
    ``camera_pose`` is a 4x4 float64 camera-to-world matrix when the manifest has one.
    """

    id: str
    rgb: np.ndarray
    ground_truth: Any
    scene: str | None = None
    phase: str | None = None
    difficulty: str | None = None
    frame_idx: int | None = None
    camera_pose: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # (wall, CPU) seconds its decoding took, set by the read stage (``contracts.stage_timer.timed_decode``).
    read_seconds: tuple[float, float] | None = field(default=None, repr=False)

    @property
    def clip(self) -> tuple[str | None, str | None]:
        """The (scene, phase) clip this frame belongs to."""
        return (self.scene, self.phase)


def second_frame(sample: Sample, task: str) -> np.ndarray:
    """The (H, W, 3) uint8 second frame of a pair sample (``sample.metadata["rgb_b"]``).

    Raises AdapterError "... requires a second RGB frame" naming the sample when the manifest
    entry had no ``rgb_b``.
    """
    rgb_b = (sample.metadata or {}).get("rgb_b")
    if rgb_b is None:
        raise AdapterError(
            f"Sample {sample.id!r}: {task} requires a second RGB frame, but the sample has none.",
            hint="give every manifest entry an 'rgb_b' path (the second image of the pair)",
            details={"sample": sample.id, "key": "rgb_b"},
        )
    return rgb_b
