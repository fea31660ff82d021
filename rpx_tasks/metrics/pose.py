"""Relative camera pose errors (reference §1.4 relative_camera_pose, 0.3.x for the angular terms).

All lower is better; the task's primary metric is ``rotation_error_deg``:

- ``rotation_error_deg = degrees(arccos(clip((trace(R_pred^T R_gt) - 1) / 2, -1, 1)))``
- ``translation_error_m = ||t_pred - t_gt||``
- ``translation_angular_deg``: the angle between t_pred and t_gt, 180 when either has a
  norm below ``TRANSLATION_NORM_EPS`` = 1e-9 (0.3.x; direction error, useful because monocular
  models get no scale)
- ``pose_error_max_deg = max(rotation_error_deg, translation_angular_deg)`` (0.3.x)

A (4,) rotation is an x, y, z, w quaternion, normalised first (``contracts.pose.rotation_matrix``);
a matrix is used as given (not re-orthonormalised), the arccos argument is clipped.
"""

from __future__ import annotations

import math

import numpy as np

from rpx_tasks.contracts.pose import RelativePose, rotation_matrix
from rpx_tasks.contracts.spec import MetricInfo
from rpx_tasks.errors import MetricError

TRANSLATION_NORM_EPS = 1e-9

POSE_METRIC_INFO: tuple[MetricInfo, ...] = (
    MetricInfo("rotation_error_deg", False, "geodesic angle between predicted and true relative rotation (degrees)"),
    MetricInfo("translation_error_m", False, "Euclidean distance between predicted and true relative translation (m)"),
    MetricInfo(
        "translation_angular_deg",
        False,
        "angle between predicted and true translation directions (180 if either is ~0)",
    ),
    MetricInfo("pose_error_max_deg", False, "max(rotation_error_deg, translation_angular_deg)"),
)


def _angle_deg(cosine: float) -> float:
    return math.degrees(math.acos(min(1.0, max(-1.0, cosine))))


def pose_metrics(prediction: RelativePose, ground_truth: RelativePose) -> dict[str, float | None]:
    """The four pose errors of one sample (module docstring gives the formulas).

    Returns ``{rotation_error_deg, translation_error_m, translation_angular_deg,
    pose_error_max_deg}`` as floats. Raises MetricError when either argument is not a
    RelativePose or a rotation has the wrong shape.
    """
    for value, role in ((prediction, "prediction"), (ground_truth, "ground truth")):
        if not isinstance(value, RelativePose):
            raise MetricError(
                f"relative_camera_pose expects a RelativePose {role}, got {type(value).__name__}.",
                hint="pass predictions through SPEC.validate_prediction and ground truth from SPEC.load_ground_truth",
            )
    r_pred = rotation_matrix(prediction.rotation, what="predicted rotation")
    r_gt = rotation_matrix(ground_truth.rotation, what="ground-truth rotation")
    r_rel = r_pred.T @ r_gt
    rotation_error = _angle_deg((float(np.trace(r_rel)) - 1.0) / 2.0)
    t_pred = np.asarray(prediction.translation, np.float64).reshape(3)
    t_gt = np.asarray(ground_truth.translation, np.float64).reshape(3)
    translation_error = float(np.linalg.norm(t_pred - t_gt))
    n_pred, n_gt = float(np.linalg.norm(t_pred)), float(np.linalg.norm(t_gt))
    if n_pred < TRANSLATION_NORM_EPS or n_gt < TRANSLATION_NORM_EPS:
        translation_angle = 180.0
    else:
        translation_angle = _angle_deg(float(np.dot(t_pred, t_gt)) / (n_pred * n_gt))
    return {
        "rotation_error_deg": rotation_error,
        "translation_error_m": translation_error,
        "translation_angular_deg": translation_angle,
        "pose_error_max_deg": max(rotation_error, translation_angle),
    }


__all__ = ["POSE_METRIC_INFO", "TRANSLATION_NORM_EPS", "pose_metrics"]
