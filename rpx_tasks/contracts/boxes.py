"""Box types shared by the box tasks, their metrics and the HF detection fast paths.

Boxes are ``[x1, y1, x2, y2]`` float pixels everywhere, stored as (N, 4) float32 arrays; labels
are strings (JSON numbers such as COCO category ids become their decimal text, so a model's ``3``
matches a ground-truth ``3``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class DetectionGroundTruth:
    """Labelled boxes of one frame; ``vocabulary`` is the class list an open-vocabulary model gets."""

    boxes: np.ndarray
    labels: list[str]
    vocabulary: list[str] | None = None


@dataclass(frozen=True)
class GroundingGroundTruth:
    """A referring expression and the box(es) it refers to (``labels`` optional, unused by the metrics)."""

    text: str
    boxes: np.ndarray
    labels: list[str] | None = None


@dataclass(frozen=True)
class BoxPrediction:
    """Predicted boxes (N, 4) float32, their scores (N,) float32 and labels (N strings; None for grounding)."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: list[str] | None = None


def label_text(value: Any) -> str | None:
    """A label as text: strings as they are, integers (incl. numpy) as decimal text; None otherwise."""
    if isinstance(value, (str, np.str_)):
        return str(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return str(int(value))
    return None


def clip_boxes(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Boxes (N, 4) clipped to the frame [0, width] x [0, height]."""
    clipped = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
    clipped[:, 0::2] = np.clip(clipped[:, 0::2], 0, width)
    clipped[:, 1::2] = np.clip(clipped[:, 1::2], 0, height)
    return clipped
