"""Segmentation ground truth: an instance mask, plus the frame's depth when SGC needs it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass
class SegmentationGroundTruth:
    """The labels of one frame: ``mask`` (H, W) int32 instance ids, and the frame's depth for SGC.

    Depth is optional and decoded only when SGC asks for it (``depth()``): either given as
    ``depth_m`` or produced once by ``load_depth`` (which the task's loader sets; it returns
    None when the sample has no depth file).
    """

    mask: np.ndarray
    load_depth: Callable[[], np.ndarray | None] | None = None
    depth_m: np.ndarray | None = None

    def depth(self) -> np.ndarray | None:
        """The (H, W) float32 depth in metres (0 = invalid), or None when the sample has no depth.

        Decoded once, then kept; raises what ``load_depth`` raises (ManifestError naming the file).
        """
        if self.depth_m is None and self.load_depth is not None:
            self.depth_m = self.load_depth()
        return self.depth_m
