"""Camera-pose types and rotation helpers shared by decoding, the pose task, its metrics and models.

Quaternions are x, y, z, w everywhere (the order RPX stores). Stored T265 poses are camera->world
in the T265 body axes (x right, y up, z backward); :func:`t265_to_opencv` turns one into the RGB
camera's OpenCV axes (x right, y down, z forward), the axes relative poses are given in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from rpx_tasks.errors import MetricError, RPXError

_QUATERNION_SHAPES = ((4,), (1, 4), (4, 1))

# S = diag(1, -1, -1, 1): flips y and z, so the T265 body axes (x right, y up, z backward) become
# the OpenCV camera axes (x right, y down, z forward). S is its own inverse.
T265_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


def quaternion_xyzw_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrix (3, 3) of a quaternion in x, y, z, w order (normalised first)."""
    x, y, z, w = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


@dataclass(frozen=True)
class RelativePose:
    """A relative camera pose: ``rotation`` (3, 3) float64 and ``translation`` (3,) float64 metres.

    As ground truth, ``rotation`` is always a matrix; a prediction may also carry a (4,)
    x, y, z, w quaternion (converted by :func:`rotation_matrix`).
    """

    rotation: np.ndarray
    translation: np.ndarray

    def matrix(self) -> np.ndarray:
        """The 4x4 homogeneous transform (rotation converted from a quaternion if needed)."""
        out = np.eye(4)
        out[:3, :3] = rotation_matrix(self.rotation)
        out[:3, 3] = self.translation
        return out


def t265_to_opencv(pose: np.ndarray) -> np.ndarray:
    """A 4x4 T265 camera->world pose in OpenCV camera axes: ``S @ P @ S`` with S = :data:`T265_TO_OPENCV`.

    Reference §1.4 relative_camera_pose (0.3.x). Returns (4, 4) float64; raises nothing.
    """
    return T265_TO_OPENCV @ np.asarray(pose, np.float64) @ T265_TO_OPENCV


def relative_pose(pose_a: np.ndarray, pose_b: np.ndarray) -> RelativePose:
    """``inv(P_a) @ P_b`` of two 4x4 camera->world poses, as a RelativePose (float64).

    The result is frame B's camera in frame A's camera axes, in whichever axes P_a and P_b use.
    """
    rel = np.linalg.inv(np.asarray(pose_a, np.float64)) @ np.asarray(pose_b, np.float64)
    return RelativePose(rotation=rel[:3, :3].copy(), translation=rel[:3, 3].copy())


def rotation_matrix(value: Any, *, error: type[RPXError] = MetricError, what: str = "rotation") -> np.ndarray:
    """A (3, 3) float64 rotation from a (3, 3) matrix or a (4,) x, y, z, w quaternion.

    The quaternion is normalised; a matrix is used as given (not re-orthonormalised, like the
    reference). Raises ``error`` when the shape is neither, or the quaternion has zero norm.
    """
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise error(
            f"{what} is not numeric ({exc}).", hint="give a (3, 3) matrix or a (4,) quaternion x, y, z, w"
        ) from exc
    if array.shape == (3, 3):
        return array
    if array.shape in _QUATERNION_SHAPES:
        norm = float(np.linalg.norm(array))
        if not math.isfinite(norm) or norm < 1e-12:
            raise error(
                f"{what} quaternion {array.reshape(-1).tolist()} has zero or non-finite norm.",
                hint="quaternions are x, y, z, w with a non-zero norm",
            )
        return quaternion_xyzw_to_matrix(array.reshape(4))
    raise error(
        f"{what} must be a (3, 3) matrix or a (4,) quaternion x, y, z, w; got shape {array.shape}.",
        hint="quaternions use the stored order x, y, z, w (not w, x, y, z)",
    )
