"""References of ``rpx_tasks.metrics.sparse_depth``: ``sparse_depth_metrics`` (§1.4)."""

from __future__ import annotations

import math

import numpy as np

from rpx_tasks.contracts.sparse_depth import SparseDepthGroundTruth, SparseDepthPrediction
from tests.support.metric_references.table import INF, SEEDS, Case, MetricRow, mean


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
    return {"sparse_absrel": mean(abs_terms), "sparse_rmse": math.sqrt(mean(sq_terms))}


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


def _sparse_dense_grid():
    """A prediction at every pixel of a 64x48 frame; GT points on pixel corners and edges tie with
    up to four predictions (the first wins)."""
    rng = np.random.default_rng(5)
    ys, xs = np.mgrid[0:48, 0:64]
    pred_xy = np.stack([xs.ravel(), ys.ravel()], axis=1)
    gt_xy = rng.integers(0, [64, 48], (40, 2)) + rng.choice([0.0, 0.5], (40, 2))
    gt_xy[:5] = [[-2.0, 10], [-2.5, 10], [65.0, 47], [66.5, 3], [10, 49.5]]  # at, just past the radius
    return _sparse(gt_xy, rng.uniform(0.5, 4.0, 40), pred_xy, rng.uniform(0.5, 4.0, len(pred_xy)))


def _sparse_one_column():
    """Every prediction on one column: each GT point's x window holds all of them (several blocks of pairs)."""
    rng = np.random.default_rng(6)
    pred_xy = np.stack([np.full(5000, 30.0), rng.uniform(0, 480, 5000)], axis=1)
    gt_xy = np.stack([30.0 + rng.uniform(-3, 3, 60), rng.uniform(0, 480, 60)], axis=1)
    return _sparse(gt_xy, rng.uniform(0.5, 4.0, 60), pred_xy, rng.uniform(0.5, 4.0, 5000))


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
    Case("dense_grid_prediction", _sparse_dense_grid),
    Case("one_column_many_blocks", _sparse_one_column),
)

ROWS = (
    MetricRow(
        "sparse_depth:sparse_depth_metrics",
        ref_sparse_depth_metrics,
        SPARSE_CASES,
        info="sparse_depth:SPARSE_DEPTH_METRIC_INFO",
    ),
)
