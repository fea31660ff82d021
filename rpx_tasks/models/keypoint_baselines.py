"""Weight-free baselines of keypoint_matching: ``fn(rgb_a, rgb_b) -> {points0, points1}``.

- :func:`global_motion_matches`: a dense grid of frame-A pixels moved by the global image
  motion (``models.image_motion``).
- :func:`identity_matches`: every grid point stays where it was ("nothing moved").

Points are (x, y) pixels, float64 (M, 2). Both raise AdapterError when a frame is not (H, W, 3).
"""

from __future__ import annotations

import numpy as np

from rpx_tasks.models.image_motion import estimate_image_motion, gray_image


def _grid(width: int, height: int) -> np.ndarray:
    """(M, 2) pixel centres (x, y) on a grid of stride about width / 128 (1 up to 191 px wide)."""
    stride = max(1, round(width / 128))
    xs = np.arange(stride // 2, width, stride, dtype=np.float64)
    ys = np.arange(stride // 2, height, stride, dtype=np.float64)
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def global_motion_matches(rgb_a: np.ndarray, rgb_b: np.ndarray) -> dict[str, np.ndarray]:
    """Weight-free baseline: a dense grid of frame-A pixels moved by the global image motion.

    The two frames are aligned by an in-plane rotation about the centre plus a shift
    (``image_motion.estimate_image_motion``, photometric Gauss-Newton), which is how the image
    moves when the camera rolls and turns; every grid pixel of frame A is mapped through it.
    Matches that leave frame B are dropped. The grid stride is about width / 128 pixels (every
    pixel of a frame up to 191 px wide), so a true point always has a grid point close by: the
    metric scores the match nearest to each true point. Parallax and moving objects are not
    modelled. Returns {"points0": (M, 2), "points1": (M, 2)} float64; raises AdapterError
    when a frame is not (H, W, 3).
    """
    h, w = gray_image(rgb_a).shape
    hb, wb = gray_image(rgb_b).shape
    points0 = _grid(w, h)
    points1 = estimate_image_motion(rgb_a, rgb_b).apply(points0)
    inside = (points1[:, 0] >= 0) & (points1[:, 0] <= wb - 1) & (points1[:, 1] >= 0) & (points1[:, 1] <= hb - 1)
    return {"points0": points0[inside], "points1": points1[inside]}


def identity_matches(rgb_a: np.ndarray, rgb_b: np.ndarray) -> dict[str, np.ndarray]:
    """Trivial baseline: every grid point of frame A matched to the same pixel in frame B.

    Returns {"points0": (M, 2), "points1": (M, 2)} float64 (identical arrays); raises
    AdapterError when ``rgb_a`` is not (H, W, 3).
    """
    h, w = gray_image(rgb_a).shape
    points = _grid(w, h)
    return {"points0": points, "points1": points.copy()}


__all__ = ["global_motion_matches", "identity_matches"]
