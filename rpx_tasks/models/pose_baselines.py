"""Weight-free baselines of relative_camera_pose: ``fn(rgb_a, rgb_b) -> {rotation, translation}``.

- :func:`image_motion_pose`: the camera rotation implied by the global image motion
  (``models.image_motion``), no translation.
- :func:`identity_pose`: "the camera did not move".

Poses are frame B's camera in frame A's camera axes (T265: X right, Y up, Z back), float64.
"""

from __future__ import annotations

import math

import numpy as np

from rpx_tasks.constants import scaled_intrinsics
from rpx_tasks.models.image_motion import estimate_image_motion


def _rot_x(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rot_y(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rot_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def image_motion_pose(rgb_a: np.ndarray, rgb_b: np.ndarray) -> dict[str, np.ndarray]:
    """Weight-free baseline: the camera rotation implied by the image motion, no translation.

    Aligns the two frames with an in-plane rotation about the centre plus a shift
    (``image_motion.estimate_image_motion``). In T265 axes an image rotation by ``angle``
    (clockwise on screen) is a roll of +angle about Z, and a shift (dx, dy) is a turn of
    atan(dx / f) about Y and atan(dy / f) about X, with the RPX focal length f scaled to the
    frame width (``constants.scaled_intrinsics``). Translation is zero: one camera cannot see
    metric scale. Returns {"rotation": (3, 3) float64, "translation": zeros (3,)}; raises
    AdapterError when a frame is not (H, W, 3).
    """
    motion = estimate_image_motion(rgb_a, rgb_b)
    height, width = np.asarray(rgb_a).shape[:2]
    f = scaled_intrinsics(width, height)[0]
    yaw, pitch = math.atan2(motion.shift[0], f), math.atan2(motion.shift[1], f)
    rotation = _rot_z(motion.angle) @ _rot_x(pitch) @ _rot_y(yaw)
    return {"rotation": rotation, "translation": np.zeros(3)}


def identity_pose(rgb_a: np.ndarray, rgb_b: np.ndarray) -> dict[str, np.ndarray]:
    """Trivial baseline: "the camera did not move" (identity rotation, zero translation).

    Returns {"rotation": eye(3), "translation": zeros(3)}; raises nothing.
    """
    return {"rotation": np.eye(3), "translation": np.zeros(3)}


__all__ = ["identity_pose", "image_motion_pose"]
