"""Keypoint-matching accuracy (reference ``KeypointAccuracy``, §1.4, threshold 3 px).

Rules per sample, in the order the reference lists them:

1. no ground-truth points -> ``keypoint_acc`` 1, ``mean_match_error`` 0;
2. no predicted matches -> ``keypoint_acc`` 0, ``mean_match_error`` +inf;
3. the visibility mask is applied; nothing left -> 1 and 0;
4. for every remaining ground-truth pair, the predicted match whose ``points0`` is nearest
   (Euclidean; the first one on a tie) to the true point in A; its error is the distance of
   its ``points1`` to the true point in B. ``keypoint_acc = mean(error < 3)`` (strictly
   below), ``mean_match_error = mean(error)``.

So a sample whose points are all invisible scores 0 / +inf when the model matched nothing,
1 / 0 otherwise.

Why +inf stays +inf: "no matches at all" is an infinitely bad match error, not an undefined
one (None would mean "no value", and the sample would silently drop out of the mean). The
reports never average it in: aggregates and cell means count it under ``inf_count`` and average
the finite values, ``per_sample_metrics.parquet`` stores inf and ``result.json`` writes null.
``keypoint_acc`` (the primary metric, higher is better) is always finite.
"""

from __future__ import annotations

import numpy as np

from rpx_tasks.contracts.keypoints import KeypointCorrespondences, KeypointMatches
from rpx_tasks.contracts.spec import MetricInfo
from rpx_tasks.errors import MetricError

PIXEL_THRESHOLD = 3.0
# Distances computed at once in the nearest-neighbour search: small enough to stay in cache.
_CHUNK_ELEMENTS = 262_144

KEYPOINT_METRIC_INFO: tuple[MetricInfo, ...] = (
    MetricInfo("keypoint_acc", True, "fraction of ground-truth points matched within 3 px in frame B"),
    MetricInfo(
        "mean_match_error", False, "mean distance (px) in frame B of the match nearest to each ground-truth point"
    ),
)


def match_errors(pred0: np.ndarray, pred1: np.ndarray, true0: np.ndarray, true1: np.ndarray) -> np.ndarray:
    """For each true pair, the frame-B error of the predicted match nearest in frame A.

    ``pred0``/``pred1`` (M, 2) with M >= 1, ``true0``/``true1`` (N, 2). Nearest is by Euclidean
    distance in frame A, the lowest index on a tie. Returns (N,) float64; raises nothing.
    Memory is bounded by searching in chunks of ground-truth rows.
    """
    pred0 = np.asarray(pred0, np.float64)
    pred1 = np.asarray(pred1, np.float64)
    true0 = np.asarray(true0, np.float64)
    true1 = np.asarray(true1, np.float64)
    pred_x, pred_y = np.ascontiguousarray(pred0[:, 0]), np.ascontiguousarray(pred0[:, 1])
    rows = max(1, _CHUNK_ELEMENTS // max(1, len(pred0)))
    nearest = np.empty(len(true0), np.intp)
    for start in range(0, len(true0), rows):
        block = true0[start : start + rows]
        distance = np.subtract.outer(block[:, 0], pred_x)
        distance *= distance
        dy = np.subtract.outer(block[:, 1], pred_y)
        dy *= dy
        distance += dy
        np.sqrt(distance, out=distance)
        nearest[start : start + rows] = np.argmin(distance, axis=1)
    diff = pred1[nearest] - true1
    return np.sqrt(diff[:, 0] * diff[:, 0] + diff[:, 1] * diff[:, 1])


def keypoint_metrics(prediction: KeypointMatches, ground_truth: KeypointCorrespondences) -> dict[str, float | None]:
    """``{keypoint_acc, mean_match_error}`` of one sample (rules in the module docstring).

    ``mean_match_error`` is +inf when the model returned no matches for a sample with ground
    truth. Raises MetricError when an argument has the wrong type.
    """
    if not isinstance(prediction, KeypointMatches):
        raise MetricError(
            f"keypoint_matching expects a KeypointMatches prediction, got {type(prediction).__name__}.",
            hint="pass predictions through SPEC.validate_prediction",
        )
    if not isinstance(ground_truth, KeypointCorrespondences):
        raise MetricError(
            f"keypoint_matching expects KeypointCorrespondences ground truth, got {type(ground_truth).__name__}.",
            hint="load ground truth with SPEC.load_ground_truth",
        )
    true0, true1 = ground_truth.points0, ground_truth.points1
    if len(true0) == 0:
        return {"keypoint_acc": 1.0, "mean_match_error": 0.0}
    if len(prediction.points0) == 0:
        return {"keypoint_acc": 0.0, "mean_match_error": float("inf")}
    if ground_truth.visibility is not None:
        visible = np.asarray(ground_truth.visibility, bool)
        true0, true1 = true0[visible], true1[visible]
        if len(true0) == 0:
            return {"keypoint_acc": 1.0, "mean_match_error": 0.0}
    errors = match_errors(prediction.points0, prediction.points1, true0, true1)
    return {"keypoint_acc": float(np.mean(errors < PIXEL_THRESHOLD)), "mean_match_error": float(np.mean(errors))}


__all__ = ["KEYPOINT_METRIC_INFO", "PIXEL_THRESHOLD", "keypoint_metrics", "match_errors"]
