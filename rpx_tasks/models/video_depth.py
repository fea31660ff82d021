"""Video depth models: image-depth models run frame by frame (streaming), the weight-free baselines and
the ``--hf-checkpoint`` fast path of ``video_depth``.

A video depth model is a Model of task ``video_depth`` whose ``predict(batch)`` receives consecutive
frames of one clip (the benchmark loop never lets a batch cross a clip end) and returns one (H, W)
float32 metre map per frame; the loop calls its ``reset()``, when it has one, before each clip's first
batch. ``whole_clip = True`` asks for each clip as one batch.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np

from rpx_tasks.models.baselines import CONSTANT_DEPTH_M, ground_plane_depth
from rpx_tasks.models.hf_depth import load_hf_depth_model
from rpx_tasks.sample import Sample

TASK = "video_depth"


class PerFrameDepthModel:
    """A streaming video depth model from a numpy image-depth function ``fn(rgb) -> (H, W)`` metres.

    Holds no frame: each frame is predicted on its own; ``reset()`` counts the clips seen (the
    function has no state to clear).
    """

    task = TASK
    torch_module = None

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray], name: str) -> None:
        self._fn = fn
        self.name = name
        self.clips_started = 0

    def setup(self) -> None:
        """Nothing to set up."""

    def reset(self) -> None:
        """Start a new clip."""
        self.clips_started += 1

    def predict(self, batch: list[Sample]) -> list[np.ndarray]:
        """One (H, W) float32 depth map per frame, in order."""
        return [np.asarray(self._fn(sample.rgb), dtype=np.float32) for sample in batch]


class GroundPlaneVideo(PerFrameDepthModel):
    """The ground-plane prior (``models.baselines.ground_plane_depth``) frame by frame."""

    def __init__(self) -> None:
        super().__init__(ground_plane_depth, "video_ground_plane_prior")


def constant_clip_depth(rgb_seq: np.ndarray) -> np.ndarray:
    """``CONSTANT_DEPTH_M`` for every pixel of every frame of the clip: (T, H, W) float32 metres."""
    frames, height, width = np.asarray(rgb_seq).shape[:3]
    return np.full((frames, height, width), CONSTANT_DEPTH_M, np.float32)


def load_hf_video_depth_model(checkpoint: str, **kwargs: Any) -> Any:
    """The image-depth HF fast path (``models.hf_depth.load_hf_depth_model``, same arguments and errors) as
    a streaming video depth model: every frame is predicted on its own, batched within a clip."""
    model = load_hf_depth_model(checkpoint, **kwargs)
    model.task = TASK
    return model


# One signature: the run's checks (model kwargs, --precision / --compile) read the image-depth loader's parameters.
load_hf_video_depth_model.__signature__ = inspect.signature(load_hf_depth_model)  # type: ignore[attr-defined]
