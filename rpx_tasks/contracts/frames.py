"""Resizing per-pixel maps back to the frame: what numpy adapters and HF fast paths both need."""

from __future__ import annotations

import numpy as np
from PIL import Image


def resize_depth(depth: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinearly resize a float depth map to (height, width); returned unchanged when it already fits."""
    if depth.shape == (height, width):
        return depth
    image = Image.fromarray(np.ascontiguousarray(depth, dtype=np.float32), mode="F")
    return np.asarray(image.resize((width, height), Image.BILINEAR), dtype=np.float32)


def resize_labels(labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of an int32 label map to (height, width); unchanged when it already fits."""
    if labels.shape == (height, width):
        return labels
    image = Image.fromarray(np.ascontiguousarray(labels, dtype=np.int32), mode="I")
    return np.asarray(image.resize((width, height), Image.NEAREST), dtype=np.int32)
