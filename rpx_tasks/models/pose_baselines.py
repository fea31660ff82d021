"""Weight-free baselines of relative_camera_pose: ``fn(rgb_a, rgb_b) -> {rotation, translation}``.

- :func:`image_motion_pose`: the camera rotation implied by the global image motion
  (``models.image_motion``), no translation.
- :func:`identity_pose`: "the camera did not move".

Poses are frame B's camera in frame A's camera axes, OpenCV axes (x right, y down, z forward),
float64: the convention of ``rpx_tasks.tasks.relative_camera_pose``.
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
    (``image_motion.estimate_image_motion``: ``p_b = R(angle) (p_a - c) + c + shift``, angle
    positive clockwise on screen) and reads it as a pure camera rotation in OpenCV axes (x right,
    y down, z forward), with the RPX focal length f scaled to the frame width
    (``constants.scaled_intrinsics``). A point X_A seen from camera B is ``R^T X_A``, so:

    - a roll by theta about z (clockwise seen from behind) turns the image content by -theta:
      ``theta = -angle``;
    - a yaw by phi about y (turning right) moves the content left by f tan(phi):
      ``phi = -atan(dx / f)``;
    - a pitch by psi about x (tilting up) moves the content down by f tan(psi):
      ``psi = atan(dy / f)``.

    Translation is zero: one camera cannot see metric scale. Returns {"rotation": (3, 3)
    float64, "translation": zeros (3,)}; raises AdapterError when a frame is not (H, W, 3).
    """
    motion = estimate_image_motion(rgb_a, rgb_b)
    height, width = np.asarray(rgb_a).shape[:2]
    f = scaled_intrinsics(width, height)[0]
    dx, dy = motion.shift
    roll, yaw, pitch = -motion.angle, -math.atan2(dx, f), math.atan2(dy, f)
    rotation = _rot_z(roll) @ _rot_x(pitch) @ _rot_y(yaw)
    return {"rotation": rotation, "translation": np.zeros(3)}


def identity_pose(rgb_a: np.ndarray, rgb_b: np.ndarray) -> dict[str, np.ndarray]:
    """Trivial baseline: "the camera did not move" (identity rotation, zero translation).

    Returns {"rotation": eye(3), "translation": zeros(3)}; raises nothing.
    """
    return {"rotation": np.eye(3), "translation": np.zeros(3)}


__all__ = ["identity_pose", "image_motion_pose"]
