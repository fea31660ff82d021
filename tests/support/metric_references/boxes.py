"""References of ``rpx_tasks.metrics.boxes`` (``box_area``, ``box_iou_matrix``), and the box
helpers and cases the detection and tracking references share."""

from __future__ import annotations

import numpy as np

from tests.support.metric_references.table import SEEDS, Case, MetricRow

# --------------------------------------------------------------------------------------------
# Shared box geometry and case helpers
# --------------------------------------------------------------------------------------------


def ref_box_area(box) -> float:
    """Area of one [x1, y1, x2, y2] box: max(0, x2 - x1) * max(0, y2 - y1)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return max(0.0, x2 - x1) * max(0.0, y2 - y1)


def ref_box_iou(a, b) -> float:
    """IoU of two [x1, y1, x2, y2] boxes; area = max(0, x2 - x1) * max(0, y2 - y1); empty union -> 0."""
    ax1, ay1, ax2, ay2 = (float(v) for v in a)
    bx1, by1, bx2, by2 = (float(v) for v in b)
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = ref_box_area(a) + ref_box_area(b) - inter
    return inter / union if union > 0 else 0.0


def box_rows(rows) -> np.ndarray:
    """``rows`` as an (N, 4) float32 box array (N may be 0)."""
    return np.asarray(rows, np.float32).reshape(-1, 4)


def random_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random boxes of 8 to 120 px a side in a 640x480-ish frame, (n, 4) float32."""
    xy = rng.uniform(0, [600, 440], (n, 2))
    wh = rng.uniform(8, 120, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)


def jitter(rng: np.random.Generator, boxes: np.ndarray, sigma: float) -> np.ndarray:
    """``boxes`` with Gaussian noise of ``sigma`` px on every coordinate, float32."""
    return (boxes + rng.normal(0.0, sigma, boxes.shape)).astype(np.float32)


# Two GT boxes g1, g2 and two predictions: "wide" overlaps g1 (IoU 0.82) and g2 (0.54), "left" only g1
# (0.67). Visiting wide first leaves left unmatched (TP 1); visiting left first matches both (TP 2).
G1, G2, WIDE, LEFT = [0, 0, 10, 10], [4, 0, 14, 10], [1, 0, 11, 10], [-2, 0, 8, 10]

# --------------------------------------------------------------------------------------------
# box_area, box_iou_matrix
# --------------------------------------------------------------------------------------------


def ref_box_area_array(boxes) -> np.ndarray:
    return np.array([ref_box_area(box) for box in np.asarray(boxes).reshape(-1, 4)], np.float64)


def ref_box_iou_matrix(a, b) -> np.ndarray:
    first, second = np.asarray(a).reshape(-1, 4), np.asarray(b).reshape(-1, 4)
    ious = [[ref_box_iou(x, y) for y in second] for x in first]
    return np.array(ious, np.float64).reshape(len(first), len(second))


# Zero-width, inverted and point boxes: areas 0, and a union of 0 between two of them.
_DEGENERATE = [[5, 5, 5, 9], [8, 8, 2, 2], [3, 3, 3, 3]]


def _boxes_random(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, 12)
    boxes[:3] = boxes[:3, [2, 3, 0, 1]]  # three inverted boxes
    return boxes


def _iou_random(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Five boxes against four: jittered copies (IoU well above 0), strangers and a degenerate one."""
    rng = np.random.default_rng(seed)
    second = random_boxes(rng, 4)
    first = np.concatenate([jitter(rng, second[:3], 10.0), random_boxes(rng, 1), box_rows(_DEGENERATE[:1])])
    return first, second


BOX_AREA_CASES = (
    *(Case(f"random{s}", lambda s=s: (_boxes_random(s),)) for s in SEEDS),
    Case("degenerate", lambda: (box_rows(_DEGENERATE),)),
    Case("empty", lambda: (box_rows([]),)),
    Case("single_box", lambda: (box_rows([[1.5, 2.0, 4.0, 7.25]]),)),
)

BOX_IOU_CASES = (
    *(Case(f"random{s}", lambda s=s: _iou_random(s)) for s in SEEDS),
    Case("greedy_geometry", lambda: (box_rows([WIDE, LEFT]), box_rows([G1, G2]))),
    Case("degenerate_pairs", lambda: (box_rows(_DEGENERATE), box_rows(_DEGENERATE))),
    Case("identical", lambda: (box_rows([G1, G2]), box_rows([G1, G2]))),
    Case("no_first_boxes", lambda: (box_rows([]), box_rows([G1, G2, WIDE]))),
    Case("no_second_boxes", lambda: (box_rows([G1, G2]), box_rows([]))),
    Case("both_empty", lambda: (box_rows([]), box_rows([]))),
    Case("single_pair", lambda: (box_rows([G1]), box_rows([WIDE]))),
)

ROWS = (
    MetricRow("boxes:box_area", ref_box_area_array, BOX_AREA_CASES),
    MetricRow("boxes:box_iou_matrix", ref_box_iou_matrix, BOX_IOU_CASES),
)
