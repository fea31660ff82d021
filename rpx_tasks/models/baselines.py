"""Weight-free monocular depth baselines: plain numpy functions ``fn(rgb) -> depth``.

Each takes an (H, W, 3) uint8 image and returns an (H, W) float32 depth map in metres, so
any of them can be benchmarked by import path, e.g.
``--model rpx_tasks.models.baselines:ground_plane_depth``. They give reference points a
learned model has to beat.
"""

from __future__ import annotations

import numpy as np

from rpx_tasks.constants import CAMERA_HEIGHT_M, WALL_DISTANCE_M, scaled_intrinsics
from rpx_tasks.errors import AdapterError

CONSTANT_DEPTH_M = 2.0


def _image_shape(rgb: np.ndarray) -> tuple[int, int]:
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise AdapterError(
            f"expected an (H, W, 3) image, got shape {rgb.shape}", hint="pass the frame as an (H, W, 3) uint8 array"
        )
    return rgb.shape[0], rgb.shape[1]


def ground_plane_depth(rgb: np.ndarray) -> np.ndarray:
    """Depth of an empty room: a floor below the horizon and a wall facing the camera.

    Assumes the camera is level (no pitch or roll, horizon at the principal point row cy), stands
    ``CAMERA_HEIGHT_M`` above a flat floor and has the RPX D435 intrinsics scaled to the image
    width (fy = 615 * W / 640, cy = H / 2). A pixel in row v below the horizon sees the floor
    at z = fy * height / (v - cy), capped at ``WALL_DISTANCE_M``; rows at or above the horizon
    get the wall depth. The image content is ignored, so objects and occluders are missed.
    Returns (H, W) float32 metres; raises AdapterError if ``rgb`` is not (H, W, 3).
    """
    h, w = _image_shape(rgb)
    _fx, fy, _cx, cy = scaled_intrinsics(w, h)
    below_horizon = np.arange(h, dtype=np.float64) - cy
    with np.errstate(divide="ignore"):
        floor = np.where(below_horizon > 0, fy * CAMERA_HEIGHT_M / below_horizon, np.inf)
    column = np.minimum(floor, WALL_DISTANCE_M).astype(np.float32)
    return np.repeat(column[:, None], w, axis=1)


def constant_depth(rgb: np.ndarray) -> np.ndarray:
    """``CONSTANT_DEPTH_M`` (2.0 m) everywhere: assumes nothing but a typical indoor range.

    Returns (H, W) float32 metres; raises AdapterError if ``rgb`` is not (H, W, 3).
    """
    h, w = _image_shape(rgb)
    return np.full((h, w), CONSTANT_DEPTH_M, np.float32)
