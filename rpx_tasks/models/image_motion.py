"""A weight-free estimate of how the image content moved from frame A to frame B.

:func:`estimate_image_motion` models the motion as an in-plane rotation about the image centre
plus a shift (:class:`ImageMotion`), found by Gauss-Newton image alignment on a small grey-level
pyramid. A camera that rolls about its optical axis and turns a little moves the image by almost
exactly such a similarity, so the frame-pair baselines (``models.keypoint_baselines``,
``models.pose_baselines``) build on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from rpx_tasks.errors import AdapterError


def gray_image(rgb: np.ndarray) -> np.ndarray:
    """(H, W) float32 luma in [0, 255] of an (H, W, 3) image (or a grey (H, W) image as is).

    Raises AdapterError when the array is not (H, W) or (H, W, 3).
    """
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        return rgb.astype(np.float32)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise AdapterError(
            f"Expected an (H, W, 3) RGB image, got shape {rgb.shape}.",
            hint="pass frames as (H, W, 3) uint8 arrays",
        )
    weights = np.array([0.299, 0.587, 0.114], np.float32)
    return rgb.astype(np.float32) @ weights


@dataclass(frozen=True)
class ImageMotion:
    """Image motion from frame A to frame B: ``p_b = R(angle) (p_a - centre) + centre + shift``.

    Pixel coordinates are (x right, y down); ``angle`` (radians) is positive clockwise on
    screen, i.e. counter-clockwise in (x, y-down) coordinates.
    """

    angle: float
    shift: tuple[float, float]
    centre: tuple[float, float]

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Map (N, 2) pixel coordinates of frame A to frame B; returns (N, 2) float64."""
        points = np.asarray(points, np.float64).reshape(-1, 2)
        c, s = math.cos(self.angle), math.sin(self.angle)
        local = points - np.asarray(self.centre)
        rotated = np.stack([c * local[:, 0] - s * local[:, 1], s * local[:, 0] + c * local[:, 1]], axis=1)
        return rotated + np.asarray(self.centre) + np.asarray(self.shift)


def _resize(gray: np.ndarray, width: int, height: int) -> np.ndarray:
    image = Image.fromarray(np.ascontiguousarray(gray, np.float32), mode="F")
    return np.asarray(image.resize((width, height), Image.BILINEAR), np.float32)


def _sample_bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear samples of ``image`` at (x, y) and a mask of the points inside it."""
    h, w = image.shape
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    xc, yc = np.clip(x, 0, w - 1), np.clip(y, 0, h - 1)
    x0, y0 = np.minimum(xc.astype(np.int64), w - 2), np.minimum(yc.astype(np.int64), h - 2)
    fx, fy = xc - x0, yc - y0
    top = image[y0, x0] * (1 - fx) + image[y0, x0 + 1] * fx
    bottom = image[y0 + 1, x0] * (1 - fx) + image[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy, inside


def _align_level(a: np.ndarray, b: np.ndarray, params: np.ndarray, iterations: int) -> np.ndarray:
    """Gauss-Newton refinement of (angle, tx, ty) so that b(warp(p)) matches a(p) on one level."""
    h, w = a.shape
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    ys, xs = np.mgrid[0:h, 0:w]
    lx, ly = (xs - cx).ravel().astype(np.float64), (ys - cy).ravel().astype(np.float64)
    target = a.ravel().astype(np.float64)
    gy_b, gx_b = np.gradient(b.astype(np.float64))
    # Flat regions carry no alignment signal but add noise: weight pixels by A's gradient.
    gy_a, gx_a = np.gradient(a.astype(np.float64))
    texture = np.hypot(gx_a, gy_a).ravel()
    for _ in range(iterations):
        angle, tx, ty = params
        c, s = math.cos(angle), math.sin(angle)
        x = c * lx - s * ly + cx + tx
        y = s * lx + c * ly + cy + ty
        values, inside = _sample_bilinear(b.astype(np.float64), x, y)
        gx, _ = _sample_bilinear(gx_b, x, y)
        gy, _ = _sample_bilinear(gy_b, x, y)
        keep = inside & (texture > 1.0)
        if keep.sum() < 16:
            break
        residual = (values - target)[keep]
        # d(x, y)/d(angle) = R'(angle) (l)
        dx_da = -s * lx - c * ly
        dy_da = c * lx - s * ly
        jac = np.stack([gx * dx_da + gy * dy_da, gx, gy], axis=1)[keep]
        normal = jac.T @ jac + np.diag([1e-3, 1e-6, 1e-6]) * len(residual)
        step = np.linalg.solve(normal, -jac.T @ residual)
        params = params + step
        if abs(step[0]) < 1e-6 and abs(step[1]) < 1e-4 and abs(step[2]) < 1e-4:
            break
    return params


def estimate_image_motion(
    rgb_a: np.ndarray, rgb_b: np.ndarray, *, max_width: int = 160, levels: int = 3
) -> ImageMotion:
    """Estimate the in-plane rotation and shift that maps frame A's content onto frame B.

    Works on a grey-level pyramid of frame A and B resized to at most ``max_width`` pixels
    wide (``levels`` levels, coarsest first), refining (angle, tx, ty) by Gauss-Newton on
    the photometric error; shifts are returned in pixels of frame A's full resolution.
    Returns an :class:`ImageMotion`. Raises AdapterError when a frame is not (H, W, 3).
    """
    a, b = gray_image(rgb_a), gray_image(rgb_b)
    height, width = a.shape
    if b.shape != a.shape:
        b = _resize(b, width, height)
    scale = min(1.0, max_width / width)
    params = np.zeros(3)
    previous_scale = None
    for level in reversed(range(levels)):
        level_scale = scale / (2**level)
        lw, lh = max(8, round(width * level_scale)), max(8, round(height * level_scale))
        if previous_scale is not None:
            params[1:] *= lw / previous_scale
        a_level, b_level = _resize(a, lw, lh), _resize(b, lw, lh)
        params = _align_level(a_level, b_level, params, iterations=30)
        previous_scale = lw
    factor = width / previous_scale
    return ImageMotion(
        angle=float(params[0]),
        shift=(float(params[1] * factor), float(params[2] * factor)),
        centre=((width - 1) / 2.0, (height - 1) / 2.0),
    )


__all__ = ["ImageMotion", "estimate_image_motion", "gray_image"]
