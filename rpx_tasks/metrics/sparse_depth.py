"""Sparse depth error at ground-truth pixels (reference §1.4 sparse_depth, SparseDepthError).

Memory stays O(N + M) for N ground-truth and M predicted points however dense the prediction
(a dense 640x480 one has M = 307,200): the nearest-prediction search never builds an N x M
table (see ``_matched_depths``).
"""

from __future__ import annotations

import numpy as np

from rpx_tasks.contracts.sparse_depth import SparseDepthGroundTruth, SparseDepthPrediction
from rpx_tasks.contracts.spec import MetricInfo
from rpx_tasks.errors import MetricError

MATCH_RADIUS_PX = 2.0
DEPTH_FLOOR_M = 1e-6
# (ground-truth point, candidate prediction) pairs whose distances are computed at once.
_PAIR_BLOCK = 262_144
# Half-width of the x window searched around a ground-truth point: the radius plus a margin, so
# that rounding in the window bounds can never drop a prediction within the radius.
_WINDOW_PX = MATCH_RADIUS_PX * (1 + 1e-9) + 1e-9

SPARSE_DEPTH_METRIC_INFO: tuple[MetricInfo, ...] = (
    MetricInfo(
        "sparse_absrel",
        False,
        "mean over ground-truth points of |pd - d| / max(d, 1e-6); pd = depth of the nearest predicted "
        f"pixel within {MATCH_RADIUS_PX:g} px, else 0",
    ),
    MetricInfo("sparse_rmse", False, "root mean squared pd - d in metres over ground-truth points"),
)


def _candidate_pairs(first: np.ndarray, stop: np.ndarray):
    """(point, position) index arrays of every pair ``first[point] <= position < stop[point]``,
    point by point, in blocks of at most ``_PAIR_BLOCK`` pairs."""
    counts = stop - first
    ends = np.cumsum(counts)
    total = int(ends[-1]) if len(ends) else 0
    for begin in range(0, total, _PAIR_BLOCK):
        pair = np.arange(begin, min(begin + _PAIR_BLOCK, total))
        point = np.searchsorted(ends, pair, side="right")
        yield point, first[point] + pair - (ends[point] - counts[point])


def _keep_nearest(point, index, distance, best_distance, best_index) -> None:
    """Fold one block of pairs (grouped by ``point``) into the running nearest prediction per point:
    the smallest distance, the lowest prediction index among equal distances."""
    starts = np.flatnonzero(np.r_[True, point[1:] != point[:-1]])
    group_distance = np.minimum.reduceat(distance, starts)
    sizes = np.diff(np.r_[starts, len(point)])
    at_minimum = distance == np.repeat(group_distance, sizes)
    group_index = np.minimum.reduceat(np.where(at_minimum, index, np.iinfo(np.intp).max), starts)
    owner = point[starts]
    better = (group_distance < best_distance[owner]) | (
        (group_distance == best_distance[owner]) & (group_index < best_index[owner])
    )
    best_distance[owner[better]] = group_distance[better]
    best_index[owner[better]] = group_index[better]


def _matched_depths(gt_xy: np.ndarray, pred_xy: np.ndarray, pred_depths: np.ndarray) -> np.ndarray:
    """Per ground-truth point, the depth of the nearest predicted point if it lies within the radius, else 0.

    Ties in distance go to the first prediction. Only a prediction whose x lies within the radius
    of a point's x can be within the radius, so predictions are sorted by x once and each point
    compares itself with its x window only (when the nearest prediction overall lies outside the
    window it is beyond the radius, and the point scores 0 either way). Pairs are visited in
    blocks of ``_PAIR_BLOCK``: memory O(N + M + block), time O(M log M + pairs), where pairs is
    about N * M * 4 px / width for predictions spread over the frame.
    """
    out = np.zeros(len(gt_xy), dtype=np.float64)
    if len(pred_xy) == 0 or len(gt_xy) == 0:
        return out
    gt_xy = np.asarray(gt_xy, np.float64).reshape(-1, 2)
    pred_xy = np.asarray(pred_xy, np.float64).reshape(-1, 2)
    order = np.argsort(pred_xy[:, 0], kind="stable")
    sorted_x = pred_xy[order, 0]
    first = np.searchsorted(sorted_x, gt_xy[:, 0] - _WINDOW_PX, side="left")
    stop = np.searchsorted(sorted_x, gt_xy[:, 0] + _WINDOW_PX, side="right")
    best_distance = np.full(len(gt_xy), np.inf)
    best_index = np.full(len(gt_xy), len(pred_xy), dtype=np.intp)
    for point, position in _candidate_pairs(first, stop):
        index = order[position]
        dx = gt_xy[point, 0] - pred_xy[index, 0]
        dy = gt_xy[point, 1] - pred_xy[index, 1]
        _keep_nearest(point, index, np.sqrt(dx * dx + dy * dy), best_distance, best_index)
    matched = best_distance <= MATCH_RADIUS_PX
    out[matched] = np.asarray(pred_depths, np.float64)[best_index[matched]]
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
