"""Video depth models for the video_depth tests: they read ``sample.ground_truth`` (a real model never
does) so that their scores are known, and record how the benchmark loop called them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from rpx_tasks.contracts.clips import clip_position
from rpx_tasks.sample import Sample

SCALE = 0.37
SHIFT = 1.9
CALLS: list[tuple[str, list[str]]] = []  # ("reset" | "predict", clip ids of the batch), in call order


def _clip_ids(batch: list[Sample]) -> list[str]:
    return [clip_position(sample).clip_id for sample in batch]


class RecordingVideoModel:
    """A streaming model predicting ``gt * 1.1`` (``gt`` 0 -> 1 m), recording every ``reset`` and ``predict``."""

    task = "video_depth"
    name = "recording_video"
    torch_module = None

    def setup(self) -> None:
        CALLS.clear()

    def reset(self) -> None:
        CALLS.append(("reset", []))

    def predict(self, batch: list[Sample]) -> list[np.ndarray]:
        CALLS.append(("predict", _clip_ids(batch)))
        return [np.where(s.ground_truth > 0, s.ground_truth * 1.1, 1.0).astype(np.float32) for s in batch]


class WholeClipRecordingModel(RecordingVideoModel):
    """The same predictions, asking for each clip as one batch (``whole_clip``)."""

    whole_clip = True
    name = "whole_clip_video"


class AffineVideoModel:
    """Predicts ``SCALE * gt + SHIFT`` on valid pixels (``SHIFT`` elsewhere): ls_affine makes it exact."""

    task = "video_depth"
    name = "affine_video"
    torch_module = None

    def setup(self) -> None:
        """Nothing to load."""

    def predict(self, batch: list[Sample]) -> list[np.ndarray]:
        return [np.where(s.ground_truth > 0, SCALE * s.ground_truth + SHIFT, SHIFT).astype(np.float32) for s in batch]


class CrashOnceVideoModel(RecordingVideoModel):
    """Raises RuntimeError at its ``RPX_TEST_CRASH_AT``-th frame if the file ``RPX_TEST_CRASH_FLAG`` does not
    exist yet (and creates it): the first attempt dies mid-run, the next one goes through."""

    name = "crash_once_video"

    def __init__(self) -> None:
        self.frames = 0

    def predict(self, batch: list[Sample]) -> list[np.ndarray]:
        self.frames += len(batch)
        flag = Path(os.environ["RPX_TEST_CRASH_FLAG"])
        if self.frames >= int(os.environ["RPX_TEST_CRASH_AT"]) and not flag.exists():
            flag.write_text("crashed")
            raise RuntimeError("simulated crash in the middle of a clip")
        return super().predict(batch)


def clip_function_calls() -> list[int]:
    """The frame counts ``half_size_clip_function`` was called with, in order."""
    return CLIP_FUNCTION_CALLS


CLIP_FUNCTION_CALLS: list[int] = []


def half_size_clip_function(rgb_seq: np.ndarray) -> np.ndarray:
    """``fn(rgb_seq)``: a (T, 1, H/2, W/2) map of the mean intensity in metres (resized back by the adapter)."""
    CLIP_FUNCTION_CALLS.append(len(rgb_seq))
    frames, height, width = rgb_seq.shape[:3]
    level = rgb_seq.reshape(frames, -1).mean(axis=1) / 100.0 + 0.5
    return np.broadcast_to(level[:, None, None, None], (frames, 1, height // 2, width // 2)).astype(np.float32)


def one_frame_short(rgb_seq: np.ndarray) -> np.ndarray:
    """``fn(rgb_seq)`` that returns one frame fewer than it was given."""
    return np.ones((len(rgb_seq) - 1, *rgb_seq.shape[1:3]), np.float32)
