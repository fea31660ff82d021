"""Axis-aligned box geometry shared by the box tasks (detection, grounding, tracking).

Boxes are ``[x1, y1, x2, y2]`` float pixels; area = max(0, x2 - x1) * max(0, y2 - y1).
"""

from __future__ import annotations

import numpy as np

# IoU entries computed at once by the box metrics (detection, tracking): they score predictions in
# blocks of max(1, IOU_BLOCK_ELEMENTS // #ground-truth boxes) rows, so the temporaries of
# ``box_iou_matrix`` (about ten arrays of the block's size) stay near 5 MB however many boxes a
# model returns.
IOU_BLOCK_ELEMENTS = 65_536


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Areas of (N, 4) boxes, (N,) float64; inverted boxes have area 0."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def box_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (N, 4) with every box of ``b`` (M, 4): (N, M) float64.

    A pair whose union is empty has IoU 0.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
