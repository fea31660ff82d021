"""Sparse-depth types: depths at pixel coordinates (x, y)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SparseDepthGroundTruth:
    """Depths ``depths`` (N,) float32 metres at pixels ``coordinates`` (N, 2) float32 (x, y)."""

    coordinates: np.ndarray
    depths: np.ndarray


@dataclass
class SparseDepthPrediction:
    """Predicted depths ``depths`` (M,) metres at pixels ``coordinates`` (M, 2) (x, y)."""

    coordinates: np.ndarray
    depths: np.ndarray
