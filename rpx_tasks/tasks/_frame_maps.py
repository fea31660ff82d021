"""What the per-pixel tasks (monocular_depth, object_segmentation) share: the checks every
prediction that is one (H, W) map per frame must pass, before each task checks its values.

This module's name starts with "_" so the task registry does not take it for a task.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rpx_tasks.errors import ModelError
from rpx_tasks.sample import Sample


def check_frame_map(
    prediction: Any, sample: Sample, *, kind: str, noun: str, type_hint: str, shape_hint: str, resize_hint: str
) -> np.ndarray:
    """Return ``prediction`` unchanged once it is a 2-D numpy array of the frame's (H, W).

    ``kind`` and ``noun`` name it in messages ("depth" prediction, "depth map"); the hints say
    what to return. Raises ModelError naming the sample when it is not a numpy array, not 2-D,
    or of another size than the sample's RGB frame.
    """
    if not isinstance(prediction, np.ndarray):
        raise ModelError(
            f"Sample {sample.id!r}: {kind} prediction must be a numpy array, got {type(prediction).__name__}.",
            hint=type_hint,
            details={"sample": sample.id},
        )
    if prediction.ndim != 2:
        raise ModelError(
            f"Sample {sample.id!r}: {noun} must have 2 dims; got {prediction.ndim} (shape {prediction.shape}).",
            hint=shape_hint,
            details={"sample": sample.id},
        )
    expected = sample.rgb.shape[:2]
    if prediction.shape != expected:
        raise ModelError(
            f"Sample {sample.id!r}: {noun} shape {prediction.shape} differs from the frame's {expected}.",
            hint=resize_hint,
            details={"sample": sample.id},
        )
    return prediction


__all__ = ["check_frame_map"]
