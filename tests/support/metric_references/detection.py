"""References of ``rpx_tasks.metrics.detection``: detection precision / recall / F1 and
grounding top-1 IoU (§1.4), and the greedy ``count_true_positives`` detection is built from."""

from __future__ import annotations

from typing import Callable

import numpy as np

from rpx_tasks.contracts.boxes import BoxPrediction, DetectionGroundTruth, GroundingGroundTruth
from tests.support.metric_references.boxes import G1, G2, LEFT, WIDE, box_rows, jitter, random_boxes, ref_box_iou
from tests.support.metric_references.table import SEEDS, Case, MetricRow


def ref_count_true_positives(pred_boxes, pred_scores, pred_labels, gt_boxes, gt_labels, iou_threshold=0.5) -> int:
    pred = np.asarray(pred_boxes, np.float64).reshape(-1, 4).tolist()
    gt = np.asarray(gt_boxes, np.float64).reshape(-1, 4).tolist()
    scores = [float(s) for s in np.asarray(pred_scores, np.float64).ravel()]
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
        if best is not None and best_iou >= iou_threshold:
            used[best] = True
            tp += 1
    return tp


def ref_detection_metrics(pred_boxes, pred_scores, pred_labels, gt_boxes, gt_labels):
    pred = np.asarray(pred_boxes, np.float64).reshape(-1, 4).tolist()
    gt = np.asarray(gt_boxes, np.float64).reshape(-1, 4).tolist()
    if not pred and not gt:
        return {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    if not pred:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    tp = ref_count_true_positives(pred_boxes, pred_scores, pred_labels, gt_boxes, gt_labels)
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


def _detection_raw_random(seed: int):
    rng = np.random.default_rng(seed)
    vocabulary = ["cup", "box", "can"]
    gt = random_boxes(rng, 8)
    gt_labels = [vocabulary[i] for i in rng.integers(0, 3, 8)]
    picked = rng.choice(8, 6, replace=False)
    pred = np.concatenate([jitter(rng, gt[picked], 6.0), jitter(rng, gt[picked[:2]], 15.0), random_boxes(rng, 3)])
    labels = [gt_labels[i] for i in picked] + [gt_labels[i] for i in picked[:2]] + ["cup", "can", "box"]
    labels[1] = "mug"  # one wrong label
    scores = np.round(rng.uniform(0, 1, len(pred)), 1).astype(np.float32)  # rounded: some ties
    order = rng.permutation(len(pred))
    return pred[order], scores[order], [labels[i] for i in order], gt, gt_labels


def _detection_greedy_order():
    """Predictions are visited by descending score, not in the order the model gave them."""
    return box_rows([LEFT, WIDE]), [0.1, 0.9], ["a", "a"], box_rows([G1, G2]), ["a", "a"]


def _detection_score_ties():
    """Equal scores keep the model's order."""
    return box_rows([WIDE, LEFT]), [0.5, 0.5], ["a", "a"], box_rows([G1, G2]), ["a", "a"]


def _detection_best_iou_same_label():
    """The prediction takes the same-label GT box of highest IoU even if another label overlaps more."""
    return box_rows([[0, 0, 10, 10]]), [0.5], ["a"], box_rows([[0, 0, 10, 10], [0, 0, 10, 19]]), ["b", "a"]


def _detection_other_label_ignored():
    """A perfect box of another label is no match; the same-label box overlaps too little."""
    return box_rows([[0, 0, 10, 10]]), [0.5], ["a"], box_rows([[0, 0, 10, 10], [0, 0, 10, 25]]), ["b", "a"]


def _detection_many_boxes():
    """600 crowded GT boxes and 300 predictions: several IoU blocks of rows (metrics.boxes.IOU_BLOCK_ELEMENTS)."""
    rng = np.random.default_rng(7)
    gt = random_boxes(rng, 600)
    gt_labels = [("cup", "box", "can")[i] for i in rng.integers(0, 3, 600)]
    picked = rng.integers(0, 600, 300)
    scores = np.round(rng.uniform(0, 1, 300), 1)  # ties across block edges
    return jitter(rng, gt[picked], 8.0), scores, [gt_labels[i] for i in picked], gt, gt_labels


DETECTION_RAW_CASES = (
    *(Case(f"random{s}", lambda s=s: _detection_raw_random(s)) for s in SEEDS),
    Case("greedy_by_score", _detection_greedy_order),
    Case("score_ties_keep_model_order", _detection_score_ties),
    Case("same_label_only", _detection_best_iou_same_label),
    Case("other_label_ignored", _detection_other_label_ignored),
    Case("iou_exactly_half", lambda: (box_rows([[0, 0, 2, 1]]), [1.0], ["a"], box_rows([[0, 0, 1, 1]]), ["a"])),
    Case(
        "numeric_labels_as_text",
        lambda: (box_rows([[0, 0, 10, 10], [1, 0, 11, 10]]), [0.5, 0.5], [3, "3"], box_rows([[1, 0, 11, 10]]), ["3"]),
    ),
    Case(
        "degenerate_boxes",
        lambda: (
            box_rows([[5, 5, 5, 9], [8, 8, 2, 2]]),
            [0.9, 0.8],
            ["a", "a"],
            box_rows([[5, 5, 5, 9], [2, 2, 8, 8]]),
            ["a", "a"],
        ),
    ),
    Case("many_boxes_several_blocks", _detection_many_boxes),
    Case("both_empty", lambda: (box_rows([]), [], [], box_rows([]), [])),
    Case("no_predictions", lambda: (box_rows([]), [], [], box_rows([[0, 0, 4, 4]]), ["a"])),
    Case("no_ground_truth", lambda: (box_rows([[0, 0, 4, 4], [1, 1, 3, 3]]), [0.3, 0.4], ["a", "b"], box_rows([]), [])),
    Case("single_hit", lambda: (box_rows([[0, 0, 10, 10]]), [0.7], ["a"], box_rows([[1, 1, 10, 10]]), ["a"])),
    Case("single_miss", lambda: (box_rows([[0, 0, 10, 10]]), [0.7], ["a"], box_rows([[6, 6, 16, 16]]), ["a"])),
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
    gt = random_boxes(rng, 2)
    first = jitter(rng, gt[rng.integers(0, 2)][None], 20.0)
    return np.concatenate([first, random_boxes(rng, 3)]), gt


GROUNDING_RAW_CASES = (
    *(Case(f"random{s}", lambda s=s: _grounding_raw_random(s)) for s in SEEDS),
    Case("first_box_not_best", lambda: (box_rows([[50, 50, 60, 60], [0, 0, 10, 10]]), box_rows([[0, 0, 10, 10]]))),
    Case("iou_exactly_half", lambda: (box_rows([[0, 0, 2, 1]]), box_rows([[5, 5, 6, 6], [0, 0, 1, 1]]))),
    Case("degenerate_first_box", lambda: (box_rows([[3, 3, 3, 3]]), box_rows([[3, 3, 3, 3]]))),
    Case("both_empty", lambda: (box_rows([]), box_rows([]))),
    Case("no_predictions", lambda: (box_rows([]), box_rows([[0, 0, 4, 4]]))),
    Case("no_ground_truth", lambda: (box_rows([[0, 0, 4, 4]]), box_rows([]))),
    Case("single_box", lambda: (box_rows([[0, 0, 10, 10]]), box_rows([[2, 0, 10, 10]]))),
)


def _as_grounding_objects(make: Callable[[], tuple]) -> Callable[[], tuple]:
    def build():
        boxes, gt_boxes = make()
        scores = np.linspace(1.0, 0.5, len(boxes)).astype(np.float32)
        return BoxPrediction(boxes, scores), GroundingGroundTruth("the thing", gt_boxes)

    return build


COUNT_TRUE_POSITIVE_CASES = (
    *DETECTION_RAW_CASES,
    *(Case(f"random{s}_threshold_0.3", lambda s=s: (*_detection_raw_random(s), 0.3)) for s in SEEDS),
    Case("threshold_0.9_misses", lambda: (*_detection_best_iou_same_label(), 0.9)),
)

ROWS = (
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
    MetricRow("detection:count_true_positives", ref_count_true_positives, COUNT_TRUE_POSITIVE_CASES),
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
)
