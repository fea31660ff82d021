"""Box-set metrics (reference §1.4): detection precision/recall/F1 and grounding top-1 IoU.

Boxes are ``[x1, y1, x2, y2]`` float pixels; IoU comes from ``metrics.boxes.box_iou_matrix``
(area = max(0, x2 - x1) * max(0, y2 - y1); an empty union gives IoU 0).

Detection (object_detection, open_vocab_detection), IoU threshold 0.5:

- no predictions and no ground truth -> precision = recall = f1 = 1;
- no predictions (ground truth present) -> all 0;
- otherwise predictions are visited by descending score (ties keep the order the model gave
  them); each takes the not yet matched ground-truth box **with the same label** that has
  the highest IoU (the lowest index on a tie) and is a true positive when that IoU >= 0.5,
  consuming the box; FP = #pred - TP, FN = #gt - TP; P = TP / (TP + FP),
  R = TP / (TP + FN), F1 = 2PR / (P + R), each 0 when its denominator is 0.

Grounding (visual_grounding), IoU threshold 0.5: no predicted box -> iou 0, acc 0; else no
ground-truth box -> 1, 1; else the **first** predicted box (the model's top box; no sorting)
is compared with every ground-truth box, ``grounding_iou`` = the highest IoU and
``grounding_acc`` = 1 when it is >= 0.5, else 0.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rpx_tasks.contracts.boxes import BoxPrediction, DetectionGroundTruth, GroundingGroundTruth
from rpx_tasks.contracts.spec import MetricInfo
from rpx_tasks.errors import MetricError
from rpx_tasks.metrics.boxes import IOU_BLOCK_ELEMENTS, box_iou_matrix

IOU_THRESHOLD = 0.5

DETECTION_METRIC_INFO: tuple[MetricInfo, ...] = (
    MetricInfo("precision", True, "TP / #predictions; greedy same-label matching by score at IoU >= 0.5"),
    MetricInfo("recall", True, "TP / #ground-truth boxes; greedy same-label matching by score at IoU >= 0.5"),
    MetricInfo("f1", True, "2PR / (P + R); 1 when the frame has neither predictions nor ground truth"),
)

GROUNDING_METRIC_INFO: tuple[MetricInfo, ...] = (
    MetricInfo("grounding_iou", True, "highest IoU of the first predicted box with any ground-truth box"),
    MetricInfo("grounding_acc", True, "1 when grounding_iou >= 0.5, else 0"),
)


def _boxes(value, what: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.size == 0:
        return array.reshape(0, 4)
    if array.ndim != 2 or array.shape[1] != 4:
        raise MetricError(
            f"{what} must have shape (N, 4), got {array.shape}.",
            hint="boxes are [x1, y1, x2, y2] pixel rows; validate predictions before scoring them",
        )
    return array


def count_true_positives(
    pred_boxes: np.ndarray,
    pred_scores: Sequence[float],
    pred_labels: Sequence[str],
    gt_boxes: np.ndarray,
    gt_labels: Sequence[str],
    iou_threshold: float = IOU_THRESHOLD,
) -> int:
    """Greedy same-label matching of predictions to ground truth (see the module docstring).

    IoU rows are computed for blocks of predictions in score order (``boxes.IOU_BLOCK_ELEMENTS``),
    so memory stays bounded however many boxes there are. Returns the number of true positives.
    Raises MetricError when the box arrays are not (N, 4) or the scores/labels do not have one
    entry per box.
    """
    pred = _boxes(pred_boxes, "predicted boxes")
    gt = _boxes(gt_boxes, "ground-truth boxes")
    scores = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
    if not (len(pred) == len(scores) == len(pred_labels)) or len(gt) != len(gt_labels):
        raise MetricError(
            f"Box/score/label counts differ: {len(pred)} predicted boxes, {len(scores)} scores, "
            f"{len(pred_labels)} labels; {len(gt)} ground-truth boxes, {len(gt_labels)} labels.",
            hint="every box needs one score and one label",
        )
    if len(pred) == 0 or len(gt) == 0:
        return 0
    # Labels compare as strings, here as integer codes of those strings.
    codes: dict[str, int] = {}
    pred_codes = np.array([codes.setdefault(str(label), len(codes)) for label in pred_labels], np.int64)
    gt_codes = np.array([codes.setdefault(str(label), len(codes)) for label in gt_labels], np.int64)
    visit = np.argsort(-scores, kind="stable")
    rows = max(1, IOU_BLOCK_ELEMENTS // len(gt))  # IoU rows per block: bounded memory
    unmatched = np.ones(len(gt), dtype=bool)
    tp = 0
    for start in range(0, len(visit), rows):
        block = visit[start : start + rows]
        same_label = pred_codes[block, None] == gt_codes[None, :]
        for candidates in np.where(same_label, box_iou_matrix(pred[block], gt), -1.0):
            row = np.where(unmatched, candidates, -1.0)
            best = int(np.argmax(row))
            if row[best] >= iou_threshold:
                unmatched[best] = False
                tp += 1
        if not unmatched.any():
            break
    return tp


def detection_metrics(
    pred_boxes: np.ndarray,
    pred_scores: Sequence[float],
    pred_labels: Sequence[str],
    gt_boxes: np.ndarray,
    gt_labels: Sequence[str],
    iou_threshold: float = IOU_THRESHOLD,
) -> dict[str, float]:
    """Precision, recall and F1 of one frame's detections (see the module docstring).

    Returns ``{"precision", "recall", "f1"}`` as floats. Raises MetricError on malformed inputs.
    """
    n_pred = len(_boxes(pred_boxes, "predicted boxes"))
    n_gt = len(_boxes(gt_boxes, "ground-truth boxes"))
    if n_pred == 0 and n_gt == 0:
        return {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    if n_pred == 0:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    tp = count_true_positives(pred_boxes, pred_scores, pred_labels, gt_boxes, gt_labels, iou_threshold)
    fp, fn = n_pred - tp, n_gt - tp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1)}


def grounding_metrics(
    pred_boxes: np.ndarray, gt_boxes: np.ndarray, iou_threshold: float = IOU_THRESHOLD
) -> dict[str, float]:
    """Top-1 grounding IoU and accuracy of one frame (see the module docstring).

    Returns ``{"grounding_iou", "grounding_acc"}`` as floats. Raises MetricError when the box
    arrays are not (N, 4).
    """
    pred = _boxes(pred_boxes, "predicted boxes")
    gt = _boxes(gt_boxes, "ground-truth boxes")
    if len(pred) == 0:
        return {"grounding_iou": 0.0, "grounding_acc": 0.0}
    if len(gt) == 0:
        return {"grounding_iou": 1.0, "grounding_acc": 1.0}
    best = float(box_iou_matrix(pred[:1], gt).max())
    return {"grounding_iou": best, "grounding_acc": 1.0 if best >= iou_threshold else 0.0}


def score_detections(prediction: BoxPrediction, ground_truth: DetectionGroundTruth) -> dict[str, float]:
    """precision, recall and f1 of one frame (:func:`detection_metrics`): the ``compute_metrics`` of
    object_detection and open_vocab_detection. Raises MetricError on malformed inputs."""
    return detection_metrics(
        prediction.boxes, prediction.scores, prediction.labels or [], ground_truth.boxes, ground_truth.labels
    )


def score_grounding(prediction: BoxPrediction, ground_truth: GroundingGroundTruth) -> dict[str, float]:
    """grounding_iou and grounding_acc of one frame (:func:`grounding_metrics`): the ``compute_metrics``
    of visual_grounding. Raises MetricError when the box arrays are not (N, 4)."""
    return grounding_metrics(prediction.boxes, ground_truth.boxes)


__all__ = [
    "DETECTION_METRIC_INFO",
    "GROUNDING_METRIC_INFO",
    "IOU_THRESHOLD",
    "count_true_positives",
    "detection_metrics",
    "grounding_metrics",
    "score_detections",
    "score_grounding",
]
