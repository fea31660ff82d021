"""Sparse depth error at ground-truth pixels (reference §1.4 sparse_depth, SparseDepthError)."""

from __future__ import annotations

import numpy as np

from rpx_tasks.contracts.sparse_depth import SparseDepthGroundTruth, SparseDepthPrediction
from rpx_tasks.contracts.spec import MetricInfo
from rpx_tasks.errors import MetricError

MATCH_RADIUS_PX = 2.0
DEPTH_FLOOR_M = 1e-6
_CHUNK = 2048  # ground-truth points per block of the distance matrix

SPARSE_DEPTH_METRIC_INFO: tuple[MetricInfo, ...] = (
    MetricInfo(
        "sparse_absrel",
        False,
        "mean over ground-truth points of |pd - d| / max(d, 1e-6); pd = depth of the nearest predicted "
        f"pixel within {MATCH_RADIUS_PX:g} px, else 0",
    ),
    MetricInfo("sparse_rmse", False, "root mean squared pd - d in metres over ground-truth points"),
)


def _matched_depths(gt_xy: np.ndarray, pred_xy: np.ndarray, pred_depths: np.ndarray) -> np.ndarray:
    """Per ground-truth point, the depth of the nearest predicted pixel within the radius, else 0.

    Ties in distance go to the first prediction.
    """
    out = np.zeros(len(gt_xy), dtype=np.float64)
    if len(pred_xy) == 0:
        return out
    pred_xy = pred_xy.astype(np.float64)
    for start in range(0, len(gt_xy), _CHUNK):
        block = gt_xy[start : start + _CHUNK].astype(np.float64)
        diff = block[:, None, :] - pred_xy[None, :, :]
        dist = np.sqrt((diff * diff).sum(axis=2))
        nearest = dist.argmin(axis=1)
        within = dist[np.arange(len(block)), nearest] <= MATCH_RADIUS_PX
        out[start : start + len(block)] = np.where(within, pred_depths[nearest].astype(np.float64), 0.0)
    return out


def sparse_depth_metrics(prediction: SparseDepthPrediction, ground_truth: SparseDepthGroundTruth) -> dict[str, float]:
    """``sparse_absrel`` and ``sparse_rmse`` of one sample (reference §1.4, SparseDepthError).

    For each ground-truth point (x, y, d): pd = depth of the nearest predicted pixel if it lies
    within 2 px (Euclidean, inclusive), else 0; abs term |pd - d| / max(d, 1e-6), squared term
    (pd - d)^2. sparse_absrel = mean abs term, sparse_rmse = sqrt(mean squared term). No
    ground-truth point -> both 0. No prediction at all -> every pd is 0, so each point adds its
    relative error 1.0 (0 for d = 0) to AbsRel and d^2 to the squared term (upstream added the
    raw depth d instead; this project uses the relative error).
    Returns Python floats. Raises MetricError when an argument has the wrong type.
    """
    if not isinstance(ground_truth, SparseDepthGroundTruth):
        raise MetricError(
            f"sparse_depth metrics expect a SparseDepthGroundTruth, got {type(ground_truth).__name__}.",
            hint="load ground truth with rpx_tasks.tasks.sparse_depth.load_ground_truth",
        )
    if not isinstance(prediction, SparseDepthPrediction):
        raise MetricError(
            f"sparse_depth metrics expect a SparseDepthPrediction, got {type(prediction).__name__}.",
            hint="validate predictions with rpx_tasks.tasks.sparse_depth.validate_prediction first",
        )
    gt_depths = np.asarray(ground_truth.depths, dtype=np.float64)
    if gt_depths.size == 0:
        return {"sparse_absrel": 0.0, "sparse_rmse": 0.0}
    pd = _matched_depths(
        np.asarray(ground_truth.coordinates), np.asarray(prediction.coordinates), np.asarray(prediction.depths)
    )
    error = pd - gt_depths
    absrel = np.abs(error) / np.maximum(gt_depths, DEPTH_FLOOR_M)
    return {"sparse_absrel": float(absrel.mean()), "sparse_rmse": float(np.sqrt((error * error).mean()))}
