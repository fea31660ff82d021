"""Object-tracking metrics (reference §1.4, TrackletMetrics): a simplified MOTA / IDF1 per sample.

Boxes are ``[x1, y1, x2, y2]`` float pixels; IoU comes from ``metrics.boxes.box_iou_matrix``.
A prediction matches a ground-truth box at IoU >= :data:`IOU_THRESHOLD` (0.5), greedily per
time step (see :func:`tracking_metrics`).
"""

from __future__ import annotations

import numpy as np

from rpx_tasks.contracts.spec import MetricInfo
from rpx_tasks.contracts.tracking import Tracklet, TrackletGroundTruth, TrackletPrediction
from rpx_tasks.errors import MetricError
from rpx_tasks.metrics.boxes import IOU_BLOCK_ELEMENTS, box_iou_matrix

IOU_THRESHOLD = 0.5

TRACKING_METRIC_INFO: tuple[MetricInfo, ...] = (
    MetricInfo("mota", True, "clip(1 - (FN + FP + IDSW) / max(#GT boxes, 1), -1, 1); greedy IoU >= 0.5 per time step"),
    MetricInfo("idf1", True, "clip(2 TP / max(2 TP + FP + FN, 1), 0, 1) with TP = #GT boxes - FN"),
    MetricInfo("fp", False, "predicted boxes matched to no ground-truth box"),
    MetricInfo("fn", False, "ground-truth boxes matched by no prediction"),
    MetricInfo("idsw", False, "matches whose predicted track id was last matched to another ground-truth track"),
)


def _boxes_at(tracks: list[Tracklet], t: int) -> tuple[list[str], np.ndarray]:
    alive = [track for track in tracks if len(track.boxes) > t]
    boxes = np.array([track.boxes[t] for track in alive], dtype=np.float32).reshape(-1, 4)
    return [track.track_id for track in alive], boxes


def _match_step(
    pred_ids: list[str], pred_boxes: np.ndarray, gt_ids: list[str], gt_boxes: np.ndarray, last_gt_of: dict[str, str]
) -> tuple[int, int]:
    """Greedy matching of one time step (see :func:`tracking_metrics`); updates ``last_gt_of``.

    IoU rows are computed in blocks of predictions (``IOU_BLOCK_ELEMENTS``), so memory stays
    bounded however many tracks there are. Returns (matches, ID switches).
    """
    taken = np.zeros(len(gt_ids), dtype=bool)
    matched = switches = 0
    rows = max(1, IOU_BLOCK_ELEMENTS // max(1, len(gt_ids)))
    for start in range(0, len(pred_ids), rows):
        if taken.all():
            break
        iou = box_iou_matrix(pred_boxes[start : start + rows], gt_boxes)
        for pred_id, row in zip(pred_ids[start : start + rows], iou):
            candidates = np.where(taken, -1.0, row)
            j = int(candidates.argmax())
            if candidates[j] < IOU_THRESHOLD:
                continue
            taken[j] = True
            matched += 1
            previous = last_gt_of.get(pred_id)
            if previous is not None and previous != gt_ids[j]:
                switches += 1
            last_gt_of[pred_id] = gt_ids[j]
    return matched, switches


def tracking_metrics(prediction: TrackletPrediction, ground_truth: TrackletGroundTruth) -> dict[str, float | None]:
    """``mota``, ``idf1``, ``fp``, ``fn``, ``idsw`` of one sample (reference §1.4, TrackletMetrics).

    T = the longest ground-truth tracklet; T = 0 gives mota 1, idf1 1 and fp/fn/idsw null
    (undefined, not counted). For t in 0..T-1 the boxes at t are row t of every tracklet that
    long (predictions beyond T are ignored). Without predictions at t every ground-truth box
    is a miss; else each prediction, in order, takes the unmatched ground-truth box of highest
    IoU (first on ties) and matches it when IoU >= 0.5; a match is an ID switch when the
    prediction's track id was last matched to another ground-truth track id. FN += #GT_t -
    matches, FP += #pred_t - matches. MOTA = clip(1 - (FN + FP + IDSW) / max(sum #GT_t, 1), -1, 1),
    TP = sum #GT_t - FN, IDF1 = clip(2 TP / max(2 TP + FP + FN, 1), 0, 1).
    Returns floats (None as above). Raises MetricError when an argument has the wrong type.
    """
    if not isinstance(ground_truth, TrackletGroundTruth):
        raise MetricError(
            f"object_tracking metrics expect a TrackletGroundTruth, got {type(ground_truth).__name__}.",
            hint="load ground truth with rpx_tasks.tasks.object_tracking.load_ground_truth",
        )
    if not isinstance(prediction, TrackletPrediction):
        raise MetricError(
            f"object_tracking metrics expect a TrackletPrediction, got {type(prediction).__name__}.",
            hint="validate predictions with rpx_tasks.tasks.object_tracking.validate_prediction first",
        )
    steps = max((len(track.boxes) for track in ground_truth.tracks), default=0)
    if steps == 0:
        return {"mota": 1.0, "idf1": 1.0, "fp": None, "fn": None, "idsw": None}
    fp = fn = idsw = total_gt = 0
    last_gt_of: dict[str, str] = {}
    for t in range(steps):
        gt_ids, gt_boxes = _boxes_at(ground_truth.tracks, t)
        pred_ids, pred_boxes = _boxes_at(prediction.tracks, t)
        total_gt += len(gt_ids)
        if not pred_ids:
            fn += len(gt_ids)
            continue
        matched, switches = _match_step(pred_ids, pred_boxes, gt_ids, gt_boxes, last_gt_of)
        idsw += switches
        fn += len(gt_ids) - matched
        fp += len(pred_ids) - matched
    mota = min(max(1.0 - (fn + fp + idsw) / max(total_gt, 1), -1.0), 1.0)
    tp = total_gt - fn
    idf1 = min(max(2 * tp / max(2 * tp + fp + fn, 1), 0.0), 1.0)
    return {"mota": float(mota), "idf1": float(idf1), "fp": float(fp), "fn": float(fn), "idsw": float(idsw)}


__all__ = ["IOU_THRESHOLD", "TRACKING_METRIC_INFO", "tracking_metrics"]
