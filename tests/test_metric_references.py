"""One shared tester for every per-sample metric function of ``rpx_tasks.metrics`` (torchmetrics style).

Each metric function is paired with a plain float64 reference written here from its docstring
and from RPX-REFERENCE.md §1.4 (loops and straightforward numpy, no shared code with the
implementation), and a list of cases: random inputs for a few seeds plus the edge cases
(empty input, all-invalid input, a single element, boundaries). One parametrised test runs
every (metric, case) pair and asserts the two agree to 1e-9 (counts exactly).

Further tests: every module's ``*_METRIC_INFO`` names equal the keys its function returns, the
table covers every metric function and MetricInfo of the package, and every registered task
scores with a function defined in ``rpx_tasks.metrics``.
"""

from __future__ import annotations

import importlib
import inspect
import math
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest

import rpx_tasks.metrics
from rpx_tasks.contracts.boxes import BoxPrediction, DetectionGroundTruth, GroundingGroundTruth
from rpx_tasks.contracts.keypoints import KeypointCorrespondences, KeypointMatches
from rpx_tasks.contracts.pose import RelativePose
from rpx_tasks.contracts.segmentation import SegmentationGroundTruth
from rpx_tasks.contracts.sparse_depth import SparseDepthGroundTruth, SparseDepthPrediction
from rpx_tasks.contracts.tracking import Tracklet, TrackletGroundTruth, TrackletPrediction

TOLERANCE = 1e-9
SEEDS = (0, 1, 2)
INF = float("inf")


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One input of a metric: ``make()`` returns the positional arguments of the call."""

    id: str
    make: Callable[[], tuple]
    xfail: str | None = None


@dataclass(frozen=True)
class MetricRow:
    """A metric function (``module:function``), its reference, cases and declared MetricInfo."""

    function: str
    reference: Callable[..., Any]
    cases: tuple[Case, ...]
    info: str | None = None  # "module:NAME" of the MetricInfo tuple naming the returned keys
    exact: frozenset[str] = field(default_factory=frozenset)  # keys compared exactly (counts)

    @property
    def name(self) -> str:
        return self.function.rsplit(".", 1)[-1].replace(":", ".")


def _load(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(f"rpx_tasks.metrics.{module}"), attribute)


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {"value": value}


# --------------------------------------------------------------------------------------------
# Shared reference geometry
# --------------------------------------------------------------------------------------------


def ref_box_iou(a, b) -> float:
    """IoU of two [x1, y1, x2, y2] boxes; area = max(0, x2 - x1) * max(0, y2 - y1); empty union -> 0."""
    ax1, ay1, ax2, ay2 = (float(v) for v in a)
    bx1, by1, bx2, by2 = (float(v) for v in b)
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = max(0.0, ax2 - ax1) * max(0.0, ay2 - ay1) + max(0.0, bx2 - bx1) * max(0.0, by2 - by1) - inter
    return inter / union if union > 0 else 0.0


def _mean(values) -> float:
    values = list(values)
    return math.fsum(values) / len(values)


# --------------------------------------------------------------------------------------------
# monocular_depth: depth_metrics
# --------------------------------------------------------------------------------------------

DEPTH_BINS = (("near", 0.3, 1.0), ("mid", 1.0, 2.5), ("far", 2.5, 5.0))


def _log_stats(e: np.ndarray) -> tuple[float, float]:
    """(rmselog, silog) of log errors e: sqrt(mean e^2) and 100 x population std (two passes)."""
    mean = math.fsum(e) / e.size
    rmselog = math.sqrt(math.fsum(e * e) / e.size)
    silog = 100.0 * math.sqrt(math.fsum((e - mean) ** 2) / e.size)
    return rmselog, silog


def ref_depth_metrics(pred, gt) -> dict[str, float | None]:
    p_all = np.asarray(pred, dtype=np.float64).ravel()
    g_all = np.asarray(gt, dtype=np.float64).ravel()
    out: dict[str, float | None] = {}

    valid = g_all > 0
    if not valid.any():
        out.update(absrel=0.0, rmse=0.0, delta1=1.0, delta2=1.0, delta3=1.0)
    else:
        g = g_all[valid]
        p = np.where(p_all[valid] < 1e-6, 1e-6, p_all[valid])  # clip below; NaN stays NaN
        out["absrel"] = math.fsum(np.abs(p - g) / g) / g.size
        out["rmse"] = math.sqrt(math.fsum((p - g) ** 2) / g.size)
        for k in (1, 2, 3):
            # max(p/g, g/p) < t  <=>  p/g < t and g/p < t (False for NaN, as a comparison with NaN is)
            within = (p / g < 1.25**k) & (g / p < 1.25**k)
            out[f"delta{k}"] = int(within.sum()) / g.size

    with np.errstate(invalid="ignore"):
        log_mask = np.isfinite(g_all) & (g_all > 0.3) & (g_all < 5.0) & np.isfinite(p_all) & (p_all > 0)
    if not log_mask.any():
        out["rmselog"], out["silog"] = 0.0, 0.0
    else:
        e = np.log(p_all[log_mask]) - np.log(g_all[log_mask])
        out["rmselog"], out["silog"] = _log_stats(e)

    for name, low, high in DEPTH_BINS:
        in_bin = log_mask & (g_all >= low) & (g_all < high)
        keys = [f"{m}_{name}" for m in ("absrel", "rmse", "rmselog", "silog", "delta1")]
        if in_bin.sum() < 100:
            out.update(dict.fromkeys(keys, None))
            continue
        g, p_raw = g_all[in_bin], p_all[in_bin]
        p = np.maximum(p_raw, 1e-6)
        rmselog, silog = _log_stats(np.log(p_raw) - np.log(g))
        within = (p / g < 1.25) & (g / p < 1.25)
        values = (
            math.fsum(np.abs(p - g) / g) / g.size,
            math.sqrt(math.fsum((p - g) ** 2) / g.size),
            rmselog,
            silog,
            int(within.sum()) / g.size,
        )
        out.update(zip(keys, values))
    return out


def _depth_random(seed: int, shape=(48, 64)):
    rng = np.random.default_rng(seed)
    gt = rng.uniform(0.1, 6.0, shape).astype(np.float32)
    gt[rng.random(shape) < 0.15] = 0.0
    pred = (gt * rng.uniform(0.7, 1.4, shape) + rng.normal(0.0, 0.05, shape)).astype(np.float32)
    flat = pred.reshape(-1)
    special = rng.choice(flat.size, 20, replace=False)
    flat[special[:5]] = 0.0
    flat[special[5:10]] = -0.5
    flat[special[10:15]] = 5e-7  # positive but below the 1e-6 floor
    flat[special[15:]] = rng.uniform(0.3, 5.0, 5)
    return pred, gt


def _depth_full_frame():
    """A 480x640 frame: invalid top band (whole blocks), mixed middle, all-in-log-range bottom."""
    rng = np.random.default_rng(7)
    gt = np.zeros((480, 640), np.float32)
    gt[160:320] = rng.uniform(0.05, 7.0, (160, 640))
    gt[160:320][rng.random((160, 640)) < 0.3] = 0.0
    gt[320:] = rng.uniform(0.35, 4.9, (160, 640))
    pred = (gt * rng.uniform(0.8, 1.25, gt.shape)).astype(np.float32)
    pred[:160] = rng.uniform(0.0, 3.0, (160, 640))
    return pred, gt


def _depth_scale():
    """A pure scale error: the log error is constant, so silog is ~0 (a cancellation trap)."""
    gt = np.random.default_rng(3).uniform(0.4, 4.5, (40, 50))
    return 1.1 * gt, gt


def _depth_nonfinite():
    pred, gt = _depth_random(4)
    gt[0, :4] = 2.0
    pred[0, :4] = [np.nan, np.inf, -np.inf, 1.0]
    return pred, gt


def _depth_bin_sizes():
    """Exactly 100 pixels in near (kept), 99 in mid (None), 150 in far, plus out-of-range ones."""
    gt = np.concatenate([np.full(100, 0.5), np.full(99, 1.5), np.full(150, 3.0), np.full(11, 5.5)])
    pred = gt * np.linspace(0.8, 1.3, gt.size)
    return pred.reshape(20, 18), gt.reshape(20, 18)


def _depth_bin_edges():
    """Float64 GT exactly on the bin edges 0.3 (excluded), 1.0, 2.5 (next bin) and 5.0 (excluded)."""
    rng = np.random.default_rng(5)
    gt = np.repeat([0.3, 0.6, 1.0, 2.0, 2.5, 4.0, 5.0], 120).astype(np.float64)
    pred = gt * rng.uniform(0.85, 1.2, gt.size)
    return pred.reshape(28, 30), gt.reshape(28, 30)


def _depth_all_invalid():
    return np.random.default_rng(0).uniform(0.5, 3.0, (8, 9)).astype(np.float32), np.zeros((8, 9), np.float32)


def _depth_log_empty():
    """Valid pixels, none in the log range (GT all beyond 5 m): rmselog = silog = 0, bins None."""
    gt = np.full((6, 6), 6.0, np.float32)
    return (gt * 1.2).astype(np.float32), gt


DEPTH_CASES = (
    *(Case(f"random{s}", lambda s=s: _depth_random(s)) for s in SEEDS),
    Case("full_frame_480x640", _depth_full_frame),
    Case("pure_scale", _depth_scale),
    Case("nonfinite_prediction", _depth_nonfinite),
    Case("bin_min_pixels", _depth_bin_sizes),
    Case("bin_edges", _depth_bin_edges),
    Case("perfect", lambda: (np.full((12, 12), 2.0, np.float32), np.full((12, 12), 2.0, np.float32))),
    Case("empty", lambda: (np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32))),
    Case("all_invalid", _depth_all_invalid),
    Case("no_log_pixels", _depth_log_empty),
    Case("single_pixel", lambda: (np.array([[2.5]], np.float32), np.array([[2.0]], np.float32))),
    Case("single_pixel_zero_prediction", lambda: (np.array([[0.0]], np.float32), np.array([[1.5]], np.float32))),
)


# --------------------------------------------------------------------------------------------
# object_segmentation: mean_iou, segmentation_metrics, label_pair_score
# --------------------------------------------------------------------------------------------


def _class_iou(first: list[int], second: list[int], c: int) -> float:
    inter = sum(1 for a, b in zip(first, second) if a == c and b == c)
    union = sum(1 for a, b in zip(first, second) if a == c or b == c)
    return inter / union if union else 1.0


def ref_mean_iou(prediction, ground_truth) -> float:
    pred = [int(v) for v in np.asarray(prediction).ravel()]
    gt = [int(v) for v in np.asarray(ground_truth).ravel()]
    classes = sorted({v for v in gt if v >= 0})
    if not classes:
        return 1.0
    return _mean(_class_iou(pred, gt, c) for c in classes)


def ref_segmentation_metrics(prediction, ground_truth: SegmentationGroundTruth) -> dict[str, float]:
    return {"miou": ref_mean_iou(prediction, ground_truth.mask)}


def ref_label_pair_score(labels_t, labels_next) -> float:
    first = [int(v) for v in np.asarray(labels_t).ravel()]
    second = [int(v) for v in np.asarray(labels_next).ravel()]
    classes = sorted({v for v in first + second if v >= 0})
    if not classes:
        return 1.0
    return _mean(_class_iou(first, second, c) for c in classes)


def _labels_random(seed: int, shape=(24, 32)):
    rng = np.random.default_rng(seed)
    gt = rng.integers(-1, 6, shape).astype(np.int32)
    pred = gt.copy()
    noisy = rng.random(shape) < 0.3
    pred[noisy] = rng.integers(-2, 8, int(noisy.sum()))
    return pred, gt


def _labels_wide():
    """Labels spread over the int32 range (the sorted-lookup path rather than bincount)."""
    rng = np.random.default_rng(11)
    values = np.array([-1, 0, 7, 3_000_000, 2**31 - 1], np.int32)
    gt = values[rng.integers(0, values.size, (20, 20))]
    pred = gt.copy()
    noisy = rng.random(gt.shape) < 0.25
    pred[noisy] = np.array([0, 5, 3_000_000, 2**31 - 1, -7], np.int32)[rng.integers(0, 5, int(noisy.sum()))]
    return pred, gt


LABEL_CASES = (
    *(Case(f"random{s}", lambda s=s: _labels_random(s)) for s in SEEDS),
    Case("wide_label_range", _labels_wide),
    Case("perfect", lambda: (np.arange(12, dtype=np.int32).reshape(3, 4),) * 2),
    Case("empty", lambda: (np.zeros((0, 0), np.int32), np.zeros((0, 0), np.int32))),
    Case("all_ignored", lambda: (np.arange(12, dtype=np.int32).reshape(3, 4), np.full((3, 4), -1, np.int32))),
    Case("single_pixel_hit", lambda: (np.array([[3]], np.int32), np.array([[3]], np.int32))),
    Case("single_pixel_miss", lambda: (np.array([[4]], np.int32), np.array([[3]], np.int32))),
    Case("background_only", lambda: (np.array([[0, 1], [0, 0]], np.int64), np.zeros((2, 2), np.int64))),
)


def _with_segmentation_gt(make: Callable[[], tuple]) -> Callable[[], tuple]:
    def build():
        pred, gt = make()
        return pred, SegmentationGroundTruth(mask=gt)

    return build


# --------------------------------------------------------------------------------------------
# sparse_depth: sparse_depth_metrics
# --------------------------------------------------------------------------------------------


def ref_sparse_depth_metrics(prediction: SparseDepthPrediction, ground_truth: SparseDepthGroundTruth):
    gt_xy = np.asarray(ground_truth.coordinates, np.float64).reshape(-1, 2).tolist()
    gt_d = [float(d) for d in np.asarray(ground_truth.depths, np.float64).ravel()]
    pred_xy = np.asarray(prediction.coordinates, np.float64).reshape(-1, 2).tolist()
    pred_d = [float(d) for d in np.asarray(prediction.depths, np.float64).ravel()]
    if not gt_d:
        return {"sparse_absrel": 0.0, "sparse_rmse": 0.0}
    abs_terms, sq_terms = [], []
    for xy, d in zip(gt_xy, gt_d):
        nearest, nearest_dist = None, INF
        for j, pxy in enumerate(pred_xy):
            dist = math.dist(xy, pxy)
            if dist < nearest_dist:  # strict: the first prediction wins a tie
                nearest, nearest_dist = j, dist
        pd = pred_d[nearest] if nearest is not None and nearest_dist <= 2.0 else 0.0
        abs_terms.append(abs(pd - d) / max(d, 1e-6))
        sq_terms.append((pd - d) ** 2)
    return {"sparse_absrel": _mean(abs_terms), "sparse_rmse": math.sqrt(_mean(sq_terms))}


def _sparse(gt_xy, gt_d, pred_xy, pred_d):
    return (
        SparseDepthPrediction(np.asarray(pred_xy, np.float32).reshape(-1, 2), np.asarray(pred_d, np.float32)),
        SparseDepthGroundTruth(np.asarray(gt_xy, np.float32).reshape(-1, 2), np.asarray(gt_d, np.float32)),
    )


def _sparse_random(seed: int):
    rng = np.random.default_rng(seed)
    n = 50
    gt_xy = rng.uniform(0, [64, 48], (n, 2))
    gt_d = rng.uniform(0.2, 5.0, n)
    hit = rng.random(n) < 0.7
    pred_xy = gt_xy[hit] + rng.normal(0.0, 1.2, (int(hit.sum()), 2))
    pred_d = gt_d[hit] * rng.uniform(0.8, 1.2, int(hit.sum()))
    pred_xy = np.concatenate([pred_xy, rng.uniform(0, [64, 48], (10, 2))])
    pred_d = np.concatenate([pred_d, rng.uniform(0.2, 5.0, 10)])
    order = rng.permutation(len(pred_d))
    return _sparse(gt_xy, gt_d, pred_xy[order], pred_d[order])


SPARSE_CASES = (
    *(Case(f"random{s}", lambda s=s: _sparse_random(s)) for s in SEEDS),
    Case("no_ground_truth", lambda: _sparse(np.zeros((0, 2)), [], [[1, 1]], [2.0])),
    Case("no_predictions", lambda: _sparse([[1, 1], [5, 5], [9, 2]], [1.0, 2.5, 4.0], np.zeros((0, 2)), [])),
    Case("all_gt_depth_zero_no_predictions", lambda: _sparse([[1, 1], [5, 5]], [0.0, 0.0], np.zeros((0, 2)), [])),
    Case("gt_depth_zero_matched", lambda: _sparse([[1, 1], [5, 5]], [0.0, 2.0], [[1, 1], [5, 5]], [0.5, 2.0])),
    Case("all_out_of_radius", lambda: _sparse([[1, 1], [10, 10]], [1.0, 3.0], [[4, 1], [10, 12.5]], [1.0, 3.0])),
    Case(
        "radius_boundary_inclusive", lambda: _sparse([[10, 10], [20, 20]], [2.0, 3.0], [[12, 10], [20, 17]], [2.2, 3.3])
    ),
    Case("tie_goes_to_first", lambda: _sparse([[10, 10]], [2.0], [[11, 10], [9, 10], [10, 11]], [1.0, 3.0, 5.0])),
    Case("single_point", lambda: _sparse([[3.5, 4.25]], [1.75], [[4.0, 4.0]], [1.5])),
)


# --------------------------------------------------------------------------------------------
# keypoint_matching: keypoint_metrics
# --------------------------------------------------------------------------------------------


def ref_keypoint_metrics(prediction: KeypointMatches, ground_truth: KeypointCorrespondences):
    true0 = np.asarray(ground_truth.points0, np.float64).reshape(-1, 2).tolist()
    true1 = np.asarray(ground_truth.points1, np.float64).reshape(-1, 2).tolist()
    pred0 = np.asarray(prediction.points0, np.float64).reshape(-1, 2).tolist()
    pred1 = np.asarray(prediction.points1, np.float64).reshape(-1, 2).tolist()
    if not true0:
        return {"keypoint_acc": 1.0, "mean_match_error": 0.0}
    if not pred0:
        return {"keypoint_acc": 0.0, "mean_match_error": INF}
    if ground_truth.visibility is not None:
        keep = [bool(v) for v in np.asarray(ground_truth.visibility).ravel()]
        true0 = [p for p, k in zip(true0, keep) if k]
        true1 = [p for p, k in zip(true1, keep) if k]
        if not true0:
            return {"keypoint_acc": 1.0, "mean_match_error": 0.0}
    errors = []
    for a, b in zip(true0, true1):
        nearest = min(range(len(pred0)), key=lambda j: math.dist(a, pred0[j]))  # min keeps the first on ties
        errors.append(math.dist(pred1[nearest], b))
    return {"keypoint_acc": sum(1 for e in errors if e < 3.0) / len(errors), "mean_match_error": _mean(errors)}


def _keypoints(true0, true1, pred0, pred1, visibility=None):
    return (
        KeypointMatches(np.asarray(pred0, np.float64).reshape(-1, 2), np.asarray(pred1, np.float64).reshape(-1, 2)),
        KeypointCorrespondences(
            np.asarray(true0, np.float64).reshape(-1, 2),
            np.asarray(true1, np.float64).reshape(-1, 2),
            None if visibility is None else np.asarray(visibility, bool),
        ),
    )


def _keypoints_random(seed: int, with_visibility: bool = True):
    rng = np.random.default_rng(seed)
    n = 40
    true0 = rng.uniform(0, [640, 480], (n, 2))
    true1 = true0 + rng.normal([15.0, -8.0], 3.0, (n, 2))
    visibility = rng.random(n) < 0.8 if with_visibility else None
    kept = rng.random(n) < 0.85
    pred0 = true0[kept] + rng.normal(0.0, 1.0, (int(kept.sum()), 2))
    pred1 = true1[kept] + rng.normal(0.0, 2.5, (int(kept.sum()), 2))
    pred0 = np.concatenate([pred0, rng.uniform(0, [640, 480], (8, 2))])
    pred1 = np.concatenate([pred1, rng.uniform(0, [640, 480], (8, 2))])
    order = rng.permutation(len(pred0))
    return _keypoints(true0, true1, pred0[order], pred1[order], visibility)


_E = np.zeros((0, 2))

KEYPOINT_CASES = (
    *(Case(f"random{s}", lambda s=s: _keypoints_random(s)) for s in SEEDS),
    Case("random_no_visibility", lambda: _keypoints_random(9, with_visibility=False)),
    Case("no_ground_truth", lambda: _keypoints(_E, _E, [[1, 1]], [[2, 2]])),
    Case("no_predictions", lambda: _keypoints([[1, 1], [4, 4]], [[2, 2], [5, 5]], _E, _E)),
    Case("all_invisible", lambda: _keypoints([[1, 1], [4, 4]], [[2, 2], [5, 5]], [[1, 1]], [[9, 9]], [0, 0])),
    Case("all_invisible_no_predictions", lambda: _keypoints([[1, 1]], [[2, 2]], _E, _E, [False])),
    Case(
        "threshold_is_strict",
        lambda: _keypoints([[0, 0], [10, 0]], [[0, 0], [10, 0]], [[0, 0], [10, 0]], [[3, 0], [10, 2.5]]),
    ),
    Case("tie_goes_to_first", lambda: _keypoints([[10, 10]], [[20, 20]], [[12, 10], [8, 10]], [[20, 21], [40, 40]])),
    Case("single_pair", lambda: _keypoints([[5.5, 6.5]], [[7.0, 8.0]], [[5.0, 6.0]], [[8.0, 9.5]])),
)


# --------------------------------------------------------------------------------------------
# relative_camera_pose: pose_metrics
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# object_detection / open_vocab_detection / visual_grounding
# --------------------------------------------------------------------------------------------


def ref_detection_metrics(pred_boxes, pred_scores, pred_labels, gt_boxes, gt_labels):
    pred = np.asarray(pred_boxes, np.float64).reshape(-1, 4).tolist()
    gt = np.asarray(gt_boxes, np.float64).reshape(-1, 4).tolist()
    scores = [float(s) for s in np.asarray(pred_scores, np.float64).ravel()]
    if not pred and not gt:
        return {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    if not pred:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    used = [False] * len(gt)
    tp = 0
    for i in sorted(range(len(pred)), key=lambda i: -scores[i]):  # sorted() is stable: ties keep model order
        best, best_iou = None, -1.0
        for j in range(len(gt)):
            if used[j] or str(gt_labels[j]) != str(pred_labels[i]):
                continue
            iou = ref_box_iou(pred[i], gt[j])
            if iou > best_iou:
                best, best_iou = j, iou
        if best is not None and best_iou >= 0.5:
            used[best] = True
            tp += 1
    fp, fn = len(pred) - tp, len(gt) - tp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def ref_score_detections(prediction: BoxPrediction, ground_truth: DetectionGroundTruth):
    return ref_detection_metrics(
        prediction.boxes, prediction.scores, prediction.labels or [], ground_truth.boxes, ground_truth.labels
    )


def ref_grounding_metrics(pred_boxes, gt_boxes):
    pred = np.asarray(pred_boxes, np.float64).reshape(-1, 4).tolist()
    gt = np.asarray(gt_boxes, np.float64).reshape(-1, 4).tolist()
    if not pred:
        return {"grounding_iou": 0.0, "grounding_acc": 0.0}
    if not gt:
        return {"grounding_iou": 1.0, "grounding_acc": 1.0}
    best = max(ref_box_iou(pred[0], g) for g in gt)
    return {"grounding_iou": best, "grounding_acc": 1.0 if best >= 0.5 else 0.0}


def ref_score_grounding(prediction: BoxPrediction, ground_truth: GroundingGroundTruth):
    return ref_grounding_metrics(prediction.boxes, ground_truth.boxes)


def _random_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    xy = rng.uniform(0, [600, 440], (n, 2))
    wh = rng.uniform(8, 120, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)


def _jitter(rng: np.random.Generator, boxes: np.ndarray, sigma: float) -> np.ndarray:
    return (boxes + rng.normal(0.0, sigma, boxes.shape)).astype(np.float32)


def _detection_raw_random(seed: int):
    rng = np.random.default_rng(seed)
    vocabulary = ["cup", "box", "can"]
    gt = _random_boxes(rng, 8)
    gt_labels = [vocabulary[i] for i in rng.integers(0, 3, 8)]
    picked = rng.choice(8, 6, replace=False)
    pred = np.concatenate([_jitter(rng, gt[picked], 6.0), _jitter(rng, gt[picked[:2]], 15.0), _random_boxes(rng, 3)])
    labels = [gt_labels[i] for i in picked] + [gt_labels[i] for i in picked[:2]] + ["cup", "can", "box"]
    labels[1] = "mug"  # one wrong label
    scores = np.round(rng.uniform(0, 1, len(pred)), 1).astype(np.float32)  # rounded: some ties
    order = rng.permutation(len(pred))
    return pred[order], scores[order], [labels[i] for i in order], gt, gt_labels


def _b(rows) -> np.ndarray:
    return np.asarray(rows, np.float32).reshape(-1, 4)


# Two GT boxes g1, g2 and two predictions: "wide" overlaps g1 (IoU 0.82) and g2 (0.54), "left" only g1
# (0.67). Visiting wide first leaves left unmatched (TP 1); visiting left first matches both (TP 2).
_G1, _G2, _WIDE, _LEFT = [0, 0, 10, 10], [4, 0, 14, 10], [1, 0, 11, 10], [-2, 0, 8, 10]


def _detection_greedy_order():
    """Predictions are visited by descending score, not in the order the model gave them."""
    return _b([_LEFT, _WIDE]), [0.1, 0.9], ["a", "a"], _b([_G1, _G2]), ["a", "a"]


def _detection_score_ties():
    """Equal scores keep the model's order."""
    return _b([_WIDE, _LEFT]), [0.5, 0.5], ["a", "a"], _b([_G1, _G2]), ["a", "a"]


def _detection_best_iou_same_label():
    """The prediction takes the same-label GT box of highest IoU even if another label overlaps more."""
    return _b([[0, 0, 10, 10]]), [0.5], ["a"], _b([[0, 0, 10, 10], [0, 0, 10, 19]]), ["b", "a"]


def _detection_other_label_ignored():
    """A perfect box of another label is no match; the same-label box overlaps too little."""
    return _b([[0, 0, 10, 10]]), [0.5], ["a"], _b([[0, 0, 10, 10], [0, 0, 10, 25]]), ["b", "a"]


DETECTION_RAW_CASES = (
    *(Case(f"random{s}", lambda s=s: _detection_raw_random(s)) for s in SEEDS),
    Case("greedy_by_score", _detection_greedy_order),
    Case("score_ties_keep_model_order", _detection_score_ties),
    Case("same_label_only", _detection_best_iou_same_label),
    Case("other_label_ignored", _detection_other_label_ignored),
    Case("iou_exactly_half", lambda: (_b([[0, 0, 2, 1]]), [1.0], ["a"], _b([[0, 0, 1, 1]]), ["a"])),
    Case(
        "numeric_labels_as_text",
        lambda: (_b([[0, 0, 10, 10], [1, 0, 11, 10]]), [0.5, 0.5], [3, "3"], _b([[1, 0, 11, 10]]), ["3"]),
    ),
    Case(
        "degenerate_boxes",
        lambda: (
            _b([[5, 5, 5, 9], [8, 8, 2, 2]]),
            [0.9, 0.8],
            ["a", "a"],
            _b([[5, 5, 5, 9], [2, 2, 8, 8]]),
            ["a", "a"],
        ),
    ),
    Case("both_empty", lambda: (_b([]), [], [], _b([]), [])),
    Case("no_predictions", lambda: (_b([]), [], [], _b([[0, 0, 4, 4]]), ["a"])),
    Case("no_ground_truth", lambda: (_b([[0, 0, 4, 4], [1, 1, 3, 3]]), [0.3, 0.4], ["a", "b"], _b([]), [])),
    Case("single_hit", lambda: (_b([[0, 0, 10, 10]]), [0.7], ["a"], _b([[1, 1, 10, 10]]), ["a"])),
    Case("single_miss", lambda: (_b([[0, 0, 10, 10]]), [0.7], ["a"], _b([[6, 6, 16, 16]]), ["a"])),
)


def _as_detection_objects(make: Callable[[], tuple]) -> Callable[[], tuple]:
    def build():
        boxes, scores, labels, gt_boxes, gt_labels = make()
        return (
            BoxPrediction(boxes, np.asarray(scores, np.float32), [str(v) for v in labels]),
            DetectionGroundTruth(gt_boxes, [str(v) for v in gt_labels]),
        )

    return build


def _grounding_raw_random(seed: int):
    rng = np.random.default_rng(seed)
    gt = _random_boxes(rng, 2)
    first = _jitter(rng, gt[rng.integers(0, 2)][None], 20.0)
    return np.concatenate([first, _random_boxes(rng, 3)]), gt


GROUNDING_RAW_CASES = (
    *(Case(f"random{s}", lambda s=s: _grounding_raw_random(s)) for s in SEEDS),
    Case("first_box_not_best", lambda: (_b([[50, 50, 60, 60], [0, 0, 10, 10]]), _b([[0, 0, 10, 10]]))),
    Case("iou_exactly_half", lambda: (_b([[0, 0, 2, 1]]), _b([[5, 5, 6, 6], [0, 0, 1, 1]]))),
    Case("degenerate_first_box", lambda: (_b([[3, 3, 3, 3]]), _b([[3, 3, 3, 3]]))),
    Case("both_empty", lambda: (_b([]), _b([]))),
    Case("no_predictions", lambda: (_b([]), _b([[0, 0, 4, 4]]))),
    Case("no_ground_truth", lambda: (_b([[0, 0, 4, 4]]), _b([]))),
    Case("single_box", lambda: (_b([[0, 0, 10, 10]]), _b([[2, 0, 10, 10]]))),
)


def _as_grounding_objects(make: Callable[[], tuple]) -> Callable[[], tuple]:
    def build():
        boxes, gt_boxes = make()
        scores = np.linspace(1.0, 0.5, len(boxes)).astype(np.float32)
        return BoxPrediction(boxes, scores), GroundingGroundTruth("the thing", gt_boxes)

    return build


# --------------------------------------------------------------------------------------------
# object_tracking: tracking_metrics
# --------------------------------------------------------------------------------------------


def ref_tracking_metrics(prediction: TrackletPrediction, ground_truth: TrackletGroundTruth):
    steps = max((len(track.boxes) for track in ground_truth.tracks), default=0)
    if steps == 0:
        return {"mota": 1.0, "idf1": 1.0, "fp": None, "fn": None, "idsw": None}
    fp = fn = idsw = total_gt = 0
    last_gt_of: dict[str, str] = {}
    for t in range(steps):
        gts = [(track.track_id, track.boxes[t]) for track in ground_truth.tracks if len(track.boxes) > t]
        preds = [(track.track_id, track.boxes[t]) for track in prediction.tracks if len(track.boxes) > t]
        total_gt += len(gts)
        if not preds:
            fn += len(gts)
            continue
        used = [False] * len(gts)
        matched = 0
        for pred_id, pred_box in preds:
            best, best_iou = None, -1.0
            for j, (_, gt_box) in enumerate(gts):
                if not used[j]:
                    iou = ref_box_iou(pred_box, gt_box)
                    if iou > best_iou:
                        best, best_iou = j, iou
            if best is None or best_iou < 0.5:
                continue
            used[best] = True
            matched += 1
            gt_id = gts[best][0]
            if pred_id in last_gt_of and last_gt_of[pred_id] != gt_id:
                idsw += 1
            last_gt_of[pred_id] = gt_id
        fn += len(gts) - matched
        fp += len(preds) - matched
    mota = min(max(1.0 - (fn + fp + idsw) / max(total_gt, 1), -1.0), 1.0)
    tp = total_gt - fn
    idf1 = min(max(2 * tp / max(2 * tp + fp + fn, 1), 0.0), 1.0)
    return {"mota": mota, "idf1": idf1, "fp": float(fp), "fn": float(fn), "idsw": float(idsw)}


def _tracks(cls, rows: dict[str, list]) -> Any:
    return cls([Tracklet(track_id, _b(boxes)) for track_id, boxes in rows.items()])


def _tracking(pred_rows: dict[str, list], gt_rows: dict[str, list]):
    return _tracks(TrackletPrediction, pred_rows), _tracks(TrackletGroundTruth, gt_rows)


def _tracking_random(seed: int):
    rng = np.random.default_rng(seed)
    steps = 12
    gt_tracks, pred_tracks = [], []
    for k in range(5):
        length = int(rng.integers(0, steps + 1))
        start = _random_boxes(rng, 1)[0]
        boxes = (start + np.cumsum(rng.normal(0, 4, (length, 4)), axis=0)).astype(np.float32).reshape(-1, 4)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 10)
        gt_tracks.append(Tracklet(f"g{k}", boxes))
        if length and rng.random() < 0.9:
            noisy = _jitter(rng, boxes, 3.0)
            noisy[rng.random(length) < 0.15] += 200.0  # some steps miss
            cut = int(rng.integers(0, length + 1))
            pred_tracks.append(Tracklet(f"p{k}", noisy[:cut], rng.uniform(0, 1, cut).astype(np.float32)))
            pred_tracks.append(Tracklet(f"p{k}b", noisy[cut:]))  # the rest under a new id
    # Two predicted tracks exchange their GT objects half way (ID switches), one spurious track
    # runs past the longest GT track (the extra steps are ignored).
    a, b = gt_tracks[0].boxes, gt_tracks[1].boxes
    half = min(len(a), len(b)) // 2
    if half:
        pred_tracks.append(Tracklet("swap1", np.concatenate([a[:half], b[half : 2 * half]])))
        pred_tracks.append(Tracklet("swap2", np.concatenate([b[:half], a[half : 2 * half]])))
    pred_tracks.append(Tracklet("ghost", _random_boxes(rng, steps + 4)))
    order = rng.permutation(len(pred_tracks))
    return TrackletPrediction([pred_tracks[i] for i in order]), TrackletGroundTruth(gt_tracks)


_BOX_A, _BOX_B = [0, 0, 10, 10], [20, 20, 30, 30]

TRACKING_CASES = (
    *(Case(f"random{s}", lambda s=s: _tracking_random(s)) for s in SEEDS),
    Case(
        "id_switch_then_back",
        lambda: _tracking(
            {"p": [_BOX_A, _BOX_B, _BOX_B, _BOX_A]},
            {"a": [_BOX_A, _BOX_A, _BOX_A, _BOX_A], "b": [_BOX_B, _BOX_B, _BOX_B, _BOX_B]},
        ),
    ),
    # In prediction order, "w" takes g1 and "l" finds nothing left (TP 1); the other way round TP would be 2.
    Case("greedy_in_prediction_order", lambda: _tracking({"w": [_WIDE], "l": [_LEFT]}, {"g1": [_G1], "g2": [_G2]})),
    Case("predictions_beyond_gt_ignored", lambda: _tracking({"p": [_BOX_A, _BOX_A, _BOX_A]}, {"a": [_BOX_A]})),
    Case("no_predictions", lambda: _tracking({}, {"a": [_BOX_A, _BOX_A], "b": [_BOX_B]})),
    Case("empty_prediction_tracks", lambda: _tracking({"p": []}, {"a": [_BOX_A]})),
    Case("no_ground_truth", lambda: _tracking({"p": [_BOX_A]}, {})),
    Case("ground_truth_tracks_all_empty", lambda: _tracking({"p": [_BOX_A]}, {"a": [], "b": []})),
    Case(
        "all_false_positives",
        lambda: _tracking({"p": [_BOX_B, _BOX_B], "q": [_BOX_B, _BOX_B], "r": [_BOX_B]}, {"a": [_BOX_A, _BOX_A]}),
    ),
    Case("single_match", lambda: _tracking({"p": [[1, 0, 10, 10]]}, {"a": [_BOX_A]})),
)


# --------------------------------------------------------------------------------------------
# The table and the shared test
# --------------------------------------------------------------------------------------------

TABLE: tuple[MetricRow, ...] = (
    MetricRow("depth:depth_metrics", ref_depth_metrics, DEPTH_CASES, info="depth:DEPTH_METRIC_INFO"),
    MetricRow("segmentation:mean_iou", ref_mean_iou, LABEL_CASES),
    MetricRow(
        "segmentation:segmentation_metrics",
        ref_segmentation_metrics,
        tuple(Case(c.id, _with_segmentation_gt(c.make), c.xfail) for c in LABEL_CASES),
        info="segmentation:SEGMENTATION_METRIC_INFO",
    ),
    MetricRow("segmentation:label_pair_score", ref_label_pair_score, LABEL_CASES),
    MetricRow(
        "sparse_depth:sparse_depth_metrics",
        ref_sparse_depth_metrics,
        SPARSE_CASES,
        info="sparse_depth:SPARSE_DEPTH_METRIC_INFO",
    ),
    MetricRow(
        "keypoints:keypoint_metrics", ref_keypoint_metrics, KEYPOINT_CASES, info="keypoints:KEYPOINT_METRIC_INFO"
    ),
    MetricRow("pose:pose_metrics", ref_pose_metrics, POSE_CASES, info="pose:POSE_METRIC_INFO"),
    MetricRow(
        "detection:detection_metrics",
        ref_detection_metrics,
        DETECTION_RAW_CASES,
        info="detection:DETECTION_METRIC_INFO",
    ),
    MetricRow(
        "detection:score_detections",
        ref_score_detections,
        tuple(Case(c.id, _as_detection_objects(c.make), c.xfail) for c in DETECTION_RAW_CASES),
        info="detection:DETECTION_METRIC_INFO",
    ),
    MetricRow(
        "detection:grounding_metrics",
        ref_grounding_metrics,
        GROUNDING_RAW_CASES,
        info="detection:GROUNDING_METRIC_INFO",
    ),
    MetricRow(
        "detection:score_grounding",
        ref_score_grounding,
        tuple(Case(c.id, _as_grounding_objects(c.make), c.xfail) for c in GROUNDING_RAW_CASES),
        info="detection:GROUNDING_METRIC_INFO",
    ),
    MetricRow(
        "tracking:tracking_metrics",
        ref_tracking_metrics,
        TRACKING_CASES,
        info="tracking:TRACKING_METRIC_INFO",
        exact=frozenset({"fp", "fn", "idsw"}),
    ),
)


def _params(rows=TABLE):
    for row in rows:
        for case in row.cases:
            marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
            yield pytest.param(row, case, id=f"{row.name}-{case.id}", marks=marks)


def assert_metrics_equal(actual: dict[str, Any], expected: dict[str, Any], exact: frozenset[str] = frozenset()):
    """Same keys; None, NaN and infinities where the reference has them; other values within 1e-9."""
    assert set(actual) == set(expected), f"keys differ: {sorted(actual)} vs reference {sorted(expected)}"
    for key, want in expected.items():
        got = actual[key]
        if want is None:
            assert got is None, f"{key}: {got!r}, reference None"
            continue
        assert isinstance(got, float), f"{key}: {got!r} is a {type(got).__name__}, not a float"
        if math.isnan(want):
            assert math.isnan(got), f"{key}: {got!r}, reference NaN"
        elif key in exact or math.isinf(want):
            assert got == want, f"{key}: {got!r}, reference {want!r}"
        else:
            assert math.isclose(got, want, rel_tol=TOLERANCE, abs_tol=TOLERANCE), f"{key}: {got!r}, reference {want!r}"


@pytest.mark.parametrize(("row", "case"), list(_params()))
def test_metric_matches_reference(row: MetricRow, case: Case):
    function = _load(row.function)
    actual = function(*case.make())
    expected = row.reference(*case.make())
    assert_metrics_equal(_as_dict(actual), _as_dict(expected), row.exact)


@pytest.mark.parametrize(("row", "case"), list(_params(row for row in TABLE if row.info)))
def test_metric_info_names_are_the_returned_keys(row: MetricRow, case: Case):
    names = [info.name for info in _load(row.info)]
    assert len(set(names)) == len(names), f"{row.info} declares a name twice: {names}"
    assert list(_load(row.function)(*case.make())) == names


def _metric_modules() -> list[Any]:
    return [
        importlib.import_module(f"rpx_tasks.metrics.{info.name}")
        for info in pkgutil.iter_modules(rpx_tasks.metrics.__path__)
        if not info.name.startswith("_")
    ]


def _is_metric_function(name: str) -> bool:
    return name.endswith("_metrics") or name.startswith("score_") or name in {"mean_iou", "label_pair_score"}


def test_table_covers_every_metric_function_and_metric_info():
    covered_functions = {row.function for row in TABLE}
    covered_infos = {row.info for row in TABLE if row.info}
    for module in _metric_modules():
        short = module.__name__.rsplit(".", 1)[-1]
        for name, value in vars(module).items():
            if inspect.isfunction(value) and value.__module__ == module.__name__ and _is_metric_function(name):
                assert f"{short}:{name}" in covered_functions, f"{module.__name__}.{name} has no reference in TABLE"
            if name.endswith("_METRIC_INFO"):
                assert f"{short}:{name}" in covered_infos, f"{module.__name__}.{name} is checked by no TABLE row"


def test_every_task_scores_with_a_metrics_function():
    from rpx_tasks.tasks import iter_tasks

    specs = iter_tasks()
    assert specs
    for spec in specs:
        function = spec.compute_metrics
        assert inspect.isfunction(function), f"{spec.name}: compute_metrics is {function!r}, not a plain function"
        assert function.__module__.startswith("rpx_tasks.metrics."), (
            f"{spec.name}: compute_metrics {function.__qualname__} is defined in {function.__module__}"
        )
        module = importlib.import_module(function.__module__)
        declared = [value for name, value in vars(module).items() if name.endswith("_METRIC_INFO")]
        assert any(spec.metrics == info for info in declared), (
            f"{spec.name}: its metrics are not a MetricInfo tuple of {function.__module__}"
        )
