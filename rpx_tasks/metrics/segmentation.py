"""Label-map overlap (reference §1.4 object_segmentation, §8.3 segmentation TS).

Both the per-frame mIoU and the temporal-stability pair score compare two integer label maps
class by class. ``class_ious`` counts every class in one pass (``np.bincount`` over the label
range when it is compact, a sorted lookup otherwise), so a 640x480 frame costs a few
milliseconds however many instances it holds.
"""

from __future__ import annotations

import numpy as np

from rpx_tasks.contracts.segmentation import SegmentationGroundTruth
from rpx_tasks.contracts.spec import MetricInfo
from rpx_tasks.errors import MetricError

SEGMENTATION_METRIC_INFO = (
    MetricInfo("miou", True, "mean IoU over the ground-truth labels >= 0, background included"),
)

# Label ranges up to this size are counted with bincount; wider ranges use a sorted lookup.
_BINCOUNT_RANGE = 1 << 20


def _check_pair(first: np.ndarray, second: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    first, second = np.asarray(first), np.asarray(second)
    if first.shape != second.shape:
        raise MetricError(
            f"{what}: label maps differ in shape: {first.shape} vs {second.shape}.",
            hint="the output adapter should resize masks back to the sample's RGB resolution",
        )
    for array in (first, second):
        if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
            raise MetricError(
                f"{what}: label maps must hold integers, got {array.dtype}.", hint="cast the mask to int32"
            )
    return first.ravel().astype(np.int64, copy=False), second.ravel().astype(np.int64, copy=False)


def _counts(values: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """How often each of the sorted ``classes`` occurs in ``values`` (others ignored)."""
    if classes.size == 0:
        return np.zeros(0, np.int64)
    lo, hi = int(classes[0]), int(classes[-1])
    if hi - lo < _BINCOUNT_RANGE:
        inside = values[(values >= lo) & (values <= hi)]
        return np.bincount(inside - lo, minlength=hi - lo + 1)[classes - lo]
    index = np.searchsorted(classes, values)
    found = index < classes.size
    found[found] = classes[index[found]] == values[found]
    return np.bincount(index[found], minlength=classes.size)


def class_ious(first: np.ndarray, second: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """IoU of each class of ``classes`` (sorted, unique ints) between two label maps of one shape.

    IoU_c = |first = c and second = c| / |first = c or second = c|, and 1.0 when that union
    is empty. Returns (len(classes),) float64. Raises MetricError when the maps differ in shape
    or are not integer.
    """
    a, b = _check_pair(first, second, "class IoU")
    classes = np.asarray(classes, dtype=np.int64)
    in_first, in_second = _counts(a, classes), _counts(b, classes)
    in_both = _counts(a[a == b], classes)
    union = in_first + in_second - in_both
    return np.where(union > 0, in_both / np.maximum(union, 1), 1.0)


def labels_at_least_zero(*maps: np.ndarray) -> np.ndarray:
    """The sorted unique labels >= 0 found in any of ``maps`` (negative labels mean "ignore")."""
    found = [np.unique(np.asarray(m)) for m in maps]
    labels = np.unique(np.concatenate(found)) if found else np.zeros(0, np.int64)
    return labels[labels >= 0].astype(np.int64)


def mean_iou(prediction: np.ndarray, ground_truth: np.ndarray) -> float:
    """mIoU of a predicted label map against the ground truth (reference §1.4).

    Classes are the GT labels >= 0 (background 0 counts, -1 is ignored); a predicted label
    absent from the GT contributes nothing except as a false positive of no class. Each class
    scores |P = c and G = c| / |P = c or G = c|; the result is their mean, or 1.0 when the GT
    has no class. Raises MetricError when the maps differ in shape or are not integer.
    """
    _check_pair(prediction, ground_truth, "mIoU")
    classes = labels_at_least_zero(ground_truth)
    if classes.size == 0:
        return 1.0
    return float(class_ious(prediction, ground_truth, classes).mean())


def label_pair_score(labels_t: np.ndarray, labels_next_aligned: np.ndarray) -> float:
    """Temporal-stability score of one pair of label maps (reference §8.3), in [0, 1].

    Classes are the labels >= 0 present in either map (-1, the warp's border, is ignored);
    the score is the mean class IoU between the two maps, 1.0 when there is no class. Raises
    MetricError when the maps differ in shape or are not integer.
    """
    _check_pair(labels_t, labels_next_aligned, "segmentation temporal stability")
    classes = labels_at_least_zero(labels_t, labels_next_aligned)
    if classes.size == 0:
        return 1.0
    return float(class_ious(labels_t, labels_next_aligned, classes).mean())


__all__ = ["class_ious", "label_pair_score", "labels_at_least_zero", "mean_iou"]


def segmentation_metrics(prediction: np.ndarray, ground_truth: SegmentationGroundTruth) -> dict[str, float | None]:
    """``{"miou": ...}`` of one frame (``mean_iou``). Raises MetricError for a ground truth that
    is not a SegmentationGroundTruth or a prediction of another shape."""
    if not isinstance(ground_truth, SegmentationGroundTruth):
        raise MetricError(
            f"object_segmentation expects a SegmentationGroundTruth, got {type(ground_truth).__name__}.",
            hint="load samples with the object_segmentation task spec",
        )
    return {"miou": mean_iou(prediction, ground_truth.mask)}
