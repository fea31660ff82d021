"""Weight-free baselines of novel_view_synthesis: ``fn(rgb, source_pose, target_pose[, source_depth]) -> rgb``.

- :func:`reproject_source`: re-projects the source frame with its depth into the target camera.
- :func:`copy_source`: "the view does not change" (the source frame as is).

Poses are 4x4 float64 camera->world in OpenCV camera axes (x right, y down, z forward), the
convention of ``rpx_tasks.tasks.novel_view_synthesis``; the camera is the RPX D435 with its
intrinsics scaled to the frame (``constants.scaled_intrinsics``, pixel centres at whole numbers).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from rpx_tasks.constants import scaled_intrinsics
from rpx_tasks.errors import AdapterError

_MIN_DEPTH_M = 1e-6


def _pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.mgrid[0:height, 0:width]
    return cols.astype(np.float64), rows.astype(np.float64)


def _sample_bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of an (H, W, C) float image at (x, y) pixels inside [0, W-1] x [0, H-1]: (N, C)."""
    height, width = image.shape[:2]
    x0 = np.clip(np.floor(x).astype(np.intp), 0, width - 2) if width > 1 else np.zeros(x.shape, np.intp)
    y0 = np.clip(np.floor(y).astype(np.intp), 0, height - 2) if height > 1 else np.zeros(y.shape, np.intp)
    x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
    bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def _forward_depth(depth: np.ndarray, source_to_target: np.ndarray, intrinsics) -> np.ndarray:
    """The source depth splatted into the target camera with a z-buffer (nearest point wins), holes filled
    with the nearest splatted value: (H, W) float64 metres, or an all-NaN map when nothing lands inside."""
    height, width = depth.shape
    fx, fy, cx, cy = intrinsics
    u, v = _pixel_grid(height, width)
    valid = np.isfinite(depth) & (depth > _MIN_DEPTH_M)
    z = depth[valid].astype(np.float64)
    points = np.stack([(u[valid] - cx) / fx * z, (v[valid] - cy) / fy * z, z], axis=1)
    moved = points @ source_to_target[:3, :3].T + source_to_target[:3, 3]
    in_front = moved[:, 2] > _MIN_DEPTH_M
    moved = moved[in_front]
    col = np.rint(cx + fx * moved[:, 0] / moved[:, 2])
    row = np.rint(cy + fy * moved[:, 1] / moved[:, 2])
    inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
    target = np.full(height * width, np.inf)
    np.minimum.at(target, (row[inside] * width + col[inside]).astype(np.intp), moved[inside, 2])
    target = target.reshape(height, width)
    holes = ~np.isfinite(target)
    if holes.all():
        return np.full((height, width), np.nan)
    if holes.any():
        nearest = ndimage.distance_transform_edt(holes, return_distances=False, return_indices=True)
        target = target[tuple(nearest)]
    return target


def reproject_source(
    rgb: np.ndarray, source_pose: np.ndarray, target_pose: np.ndarray, source_depth: np.ndarray | None = None
) -> np.ndarray:
    """Weight-free baseline: the source frame re-projected into the target camera through its depth.

    1. Forward-warps the source depth into the target camera (each valid pixel back-projected with
       the scaled D435 intrinsics, moved by ``inv(target_pose) @ source_pose``, projected to the
       nearest target pixel; a z-buffer keeps the nearest point) and fills the holes with the
       nearest warped depth.
    2. Backward-warps the colours: every target pixel is back-projected at that depth, moved into
       the source camera and sampled bilinearly from the source frame.

    Target pixels whose point falls outside the source frame or behind it keep the source pixel at
    the same place. Without a depth map (``source_depth`` None, as on a Hub sample without
    depth) or without a single valid depth pixel, this is the identity: the source frame is
    returned as is. Returns (H, W, 3) uint8. Raises AdapterError when ``rgb`` is not (H, W, 3),
    a pose is not a finite 4x4 matrix, or the depth map's size differs from the frame's.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise AdapterError(f"reproject_source needs an (H, W, 3) frame, got shape {rgb.shape}.", hint="pass RGB")
    poses = []
    for name, pose in (("source_pose", source_pose), ("target_pose", target_pose)):
        matrix = np.asarray(pose, dtype=np.float64)
        if matrix.shape != (4, 4) or not np.isfinite(matrix).all():
            raise AdapterError(
                f"reproject_source: {name} must be a finite 4x4 camera->world matrix, got shape {matrix.shape}.",
                hint="poses are 4x4 camera->world in OpenCV axes",
            )
        poses.append(matrix)
    if source_depth is None:
        return rgb.astype(np.uint8, copy=True)
    depth = np.asarray(source_depth, dtype=np.float64)
    height, width = rgb.shape[:2]
    if depth.shape != (height, width):
        raise AdapterError(
            f"reproject_source: the depth map is {depth.shape}, the frame {(height, width)}.",
            hint="give the source depth at the frame's resolution",
        )
    intrinsics = scaled_intrinsics(width, height)
    source_to_target = np.linalg.inv(poses[1]) @ poses[0]
    target_depth = _forward_depth(depth, source_to_target, intrinsics)
    if np.isnan(target_depth).all():
        return rgb.astype(np.uint8, copy=True)
    fx, fy, cx, cy = intrinsics
    u, v = _pixel_grid(height, width)
    z = target_depth.reshape(-1)
    points = np.stack([(u.reshape(-1) - cx) / fx * z, (v.reshape(-1) - cy) / fy * z, z], axis=1)
    target_to_source = np.linalg.inv(source_to_target)
    back = points @ target_to_source[:3, :3].T + target_to_source[:3, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        x_src = cx + fx * back[:, 0] / back[:, 2]
        y_src = cy + fy * back[:, 1] / back[:, 2]
    usable = (back[:, 2] > _MIN_DEPTH_M) & (x_src >= 0) & (x_src <= width - 1) & (y_src >= 0) & (y_src <= height - 1)
    out = rgb.reshape(-1, 3).astype(np.float64)
    out[usable] = _sample_bilinear(rgb.astype(np.float64), x_src[usable], y_src[usable])
    return np.clip(np.rint(out), 0, 255).astype(np.uint8).reshape(height, width, 3)


def copy_source(rgb: np.ndarray, source_pose: np.ndarray, target_pose: np.ndarray) -> np.ndarray:
    """Trivial baseline: the view does not change (the source frame, copied). Returns (H, W, 3) uint8."""
    return np.array(rgb, dtype=np.uint8, copy=True)


__all__ = ["copy_source", "reproject_source"]
