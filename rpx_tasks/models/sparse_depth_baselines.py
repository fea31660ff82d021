"""Weight-free sparse-depth baselines: ``fn(rgb, coords (N, 2) (x, y) pixels) -> depths (N,) metres``."""

from __future__ import annotations

import numpy as np

from rpx_tasks.models.baselines import CONSTANT_DEPTH_M, ground_plane_depth


def _pixel_indices(coords: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    coords = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    cols = np.clip(np.rint(coords[:, 0]), 0, width - 1).astype(np.intp)
    rows = np.clip(np.rint(coords[:, 1]), 0, height - 1).astype(np.intp)
    return rows, cols


def ground_plane_at_points(rgb: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Weight-free baseline: the ground-plane prior (floor below the horizon, wall above) at ``coords``.

    ``coords`` (N, 2) are (x, y) pixels, rounded and clamped into the image. Returns (N,)
    float32 metres; raises AdapterError if ``rgb`` is not (H, W, 3).
    """
    dense = ground_plane_depth(rgb)
    rows, cols = _pixel_indices(coords, *dense.shape)
    return dense[rows, cols].astype(np.float32)


def constant_at_points(rgb: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Weight-free baseline: 2.0 m at every coordinate. Returns (N,) float32 metres."""
    return np.full(len(np.asarray(coords).reshape(-1, 2)), CONSTANT_DEPTH_M, np.float32)
