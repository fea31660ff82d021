"""References of ``rpx_tasks.metrics.pose``: ``pose_metrics`` (§1.4)."""

from __future__ import annotations

import math

import numpy as np

from rpx_tasks.contracts.pose import RelativePose
from tests.support.metric_references.table import SEEDS, Case, MetricRow


def ref_rotation(value) -> list[list[float]]:
    """A (3, 3) matrix as given, or an x, y, z, w quaternion via axis-angle (Rodrigues)."""
    array = np.asarray(value, np.float64)
    if array.shape == (3, 3):
        return array.tolist()
    x, y, z, w = array.reshape(4).tolist()
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    x, y, z, w = x / norm, y / norm, z / norm, w / norm
    s = math.sqrt(x * x + y * y + z * z)
    if s == 0.0:
        return [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    angle = 2.0 * math.atan2(s, w)
    k = (x / s, y / s, z / s)
    c, sn = math.cos(angle), math.sin(angle)
    cross = [[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]]
    return [[(c if i == j else 0.0) + sn * cross[i][j] + (1 - c) * k[i] * k[j] for j in range(3)] for i in range(3)]


def _degrees_of_cosine(cosine: float) -> float:
    return math.degrees(math.acos(min(1.0, max(-1.0, cosine))))


def ref_pose_metrics(prediction: RelativePose, ground_truth: RelativePose):
    r_pred, r_gt = ref_rotation(prediction.rotation), ref_rotation(ground_truth.rotation)
    # trace(R_pred^T R_gt) = sum_ij R_pred[i][j] * R_gt[i][j]
    trace = math.fsum(r_pred[i][j] * r_gt[i][j] for i in range(3) for j in range(3))
    rotation_error = _degrees_of_cosine((trace - 1.0) / 2.0)
    t_pred = np.asarray(prediction.translation, np.float64).ravel().tolist()
    t_gt = np.asarray(ground_truth.translation, np.float64).ravel().tolist()
    n_pred, n_gt = math.hypot(*t_pred), math.hypot(*t_gt)
    if n_pred < 1e-9 or n_gt < 1e-9:
        angular = 180.0
    else:
        angular = _degrees_of_cosine(math.fsum(a * b for a, b in zip(t_pred, t_gt)) / (n_pred * n_gt))
    return {
        "rotation_error_deg": rotation_error,
        "translation_error_m": math.dist(t_pred, t_gt),
        "translation_angular_deg": angular,
        "pose_error_max_deg": max(rotation_error, angular),
    }


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def _pose(rotation_pred, t_pred, rotation_gt, t_gt):
    return (
        RelativePose(np.asarray(rotation_pred, np.float64), np.asarray(t_pred, np.float64)),
        RelativePose(np.asarray(rotation_gt, np.float64), np.asarray(t_gt, np.float64)),
    )


def _pose_random(seed: int):
    rng = np.random.default_rng(seed)
    return _pose(_random_rotation(rng), rng.normal(size=3), _random_rotation(rng), rng.normal(size=3))


def _pose_quaternion(seed: int):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=4) * 3.0  # not unit: normalised first
    return _pose(q, rng.normal(size=3), _random_rotation(rng), rng.normal(size=3))


_I3 = np.eye(3)
_RZ180 = np.diag([-1.0, -1.0, 1.0])

POSE_CASES = (
    *(Case(f"random{s}", lambda s=s: _pose_random(s)) for s in SEEDS),
    *(Case(f"quaternion_prediction{s}", lambda s=s: _pose_quaternion(s)) for s in SEEDS),
    Case("identical", lambda: _pose(_I3, [3.0, 0.0, 4.0], _I3, [3.0, 0.0, 4.0])),
    Case("identity_quaternion", lambda: _pose([0.0, 0.0, 0.0, 2.0], [0.0, 1.0, 0.0], _I3, [0.0, 2.0, 0.0])),
    Case("half_turn_opposite_translation", lambda: _pose(_RZ180, [1.0, 0.0, 0.0], _I3, [-2.0, 0.0, 0.0])),
    Case("zero_translation_prediction", lambda: _pose(_I3, [0.0, 0.0, 0.0], _RZ180, [0.1, 0.2, 0.3])),
    Case("tiny_translation_ground_truth", lambda: _pose(_I3, [1.0, 0.0, 0.0], _I3, [1e-10, 0.0, 0.0])),
    Case("non_orthonormal_clipped", lambda: _pose(2.0 * _I3, [1.0, 1.0, 0.0], _I3, [1.0, 0.0, 0.0])),
)

ROWS = (MetricRow("pose:pose_metrics", ref_pose_metrics, POSE_CASES, info="pose:POSE_METRIC_INFO"),)
