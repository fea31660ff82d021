"""References of ``rpx_tasks.metrics.segmentation``: mIoU (§1.4), the label-map Temporal
Stability pair score (§8.3) and the class IoUs and label sets both are built from."""

from __future__ import annotations

from typing import Callable

import numpy as np

from rpx_tasks.contracts.segmentation import SegmentationGroundTruth
from tests.support.metric_references.table import SEEDS, Case, MetricRow, mean

# --------------------------------------------------------------------------------------------
# mean_iou, segmentation_metrics, label_pair_score
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
    return mean(_class_iou(pred, gt, c) for c in classes)


def ref_segmentation_metrics(prediction, ground_truth: SegmentationGroundTruth) -> dict[str, float]:
    return {"miou": ref_mean_iou(prediction, ground_truth.mask)}


def ref_label_pair_score(labels_t, labels_next) -> float:
    first = [int(v) for v in np.asarray(labels_t).ravel()]
    second = [int(v) for v in np.asarray(labels_next).ravel()]
    classes = sorted({v for v in first + second if v >= 0})
    if not classes:
        return 1.0
    return mean(_class_iou(first, second, c) for c in classes)


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
# class_ious, labels_at_least_zero
# --------------------------------------------------------------------------------------------


def ref_class_ious(first, second, classes) -> np.ndarray:
    a = [int(v) for v in np.asarray(first).ravel()]
    b = [int(v) for v in np.asarray(second).ravel()]
    return np.array([_class_iou(a, b, int(c)) for c in np.asarray(classes).ravel()], np.float64)


def ref_labels_at_least_zero(*maps) -> np.ndarray:
    found = {int(v) for labels in maps for v in np.asarray(labels).ravel()}
    return np.array(sorted(v for v in found if v >= 0), np.int64)


def _with_classes(make: Callable[[], tuple], *extra: int) -> Callable[[], tuple]:
    """The two maps of ``make`` and, as the classes, every label >= 0 of either plus ``extra``."""

    def build():
        first, second = make()
        present = {int(v) for v in np.concatenate([first.ravel(), second.ravel()]) if v >= 0}
        return first, second, np.array(sorted(present | set(extra)), np.int64)

    return build


def _classes(first, second, classes) -> Callable[[], tuple]:
    return lambda: (np.asarray(first, np.int32), np.asarray(second, np.int32), np.asarray(classes, np.int64))


CLASS_IOU_CASES = (
    *(Case(f"random{s}_with_an_absent_class", _with_classes(lambda s=s: _labels_random(s), 99)) for s in SEEDS),
    Case("wide_label_range", _with_classes(_labels_wide)),
    Case("ignore_label_as_a_class", _classes([[-1, 0], [1, -1]], [[-1, -1], [1, 0]], [-1, 0, 1])),
    Case("no_classes", _classes([[1, 2]], [[1, 3]], np.zeros(0, np.int64))),
    Case("empty_maps", _classes(np.zeros((0, 0)), np.zeros((0, 0)), [0, 3])),
    Case("single_pixel_hit", _classes([[3]], [[3]], [3])),
    Case("single_pixel_miss", _classes([[4]], [[3]], [3, 4])),
)


def _random_maps(seed: int, count: int) -> Callable[[], tuple]:
    def build():
        rng = np.random.default_rng(seed)
        return tuple(rng.integers(-3, 9, (6, 7)).astype(np.int32) for _ in range(count))

    return build


LABEL_SET_CASES = (
    *(Case(f"random{s}_{n}_maps", _random_maps(s, n)) for s in SEEDS for n in (1, 2, 3)),
    Case("wide_label_range", _labels_wide),
    Case("int32_and_int64_maps", lambda: (np.array([[5, -1]], np.int32), np.array([[0, 2**40]], np.int64))),
    Case("all_negative", lambda: (np.full((2, 3), -1, np.int32),)),
    Case("empty_map", lambda: (np.zeros((0, 0), np.int32),)),
    Case("no_maps", lambda: ()),
    Case("single_pixel", lambda: (np.array([[7]], np.int32),)),
)

ROWS = (
    MetricRow("segmentation:mean_iou", ref_mean_iou, LABEL_CASES),
    MetricRow(
        "segmentation:segmentation_metrics",
        ref_segmentation_metrics,
        tuple(Case(c.id, _with_segmentation_gt(c.make), c.xfail) for c in LABEL_CASES),
        info="segmentation:SEGMENTATION_METRIC_INFO",
    ),
    MetricRow("segmentation:label_pair_score", ref_label_pair_score, LABEL_CASES),
    MetricRow("segmentation:class_ious", ref_class_ious, CLASS_IOU_CASES),
    MetricRow("segmentation:labels_at_least_zero", ref_labels_at_least_zero, LABEL_SET_CASES),
)
