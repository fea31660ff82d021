"""Keypoint-matching types: ground-truth correspondences and predicted matches (pixels (x, y))."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class KeypointCorrespondences:
    """Ground truth: ``points0`` / ``points1`` (N, 2) float64 (x, y) pixels of the same points in
    frame A and B, ``visibility`` (N,) bool or None (all visible)."""

    points0: np.ndarray
    points1: np.ndarray
    visibility: np.ndarray | None = None


@dataclass(frozen=True)
class KeypointMatches:
    """A prediction: ``points0`` / ``points1`` (M, 2) float64 matched pixels in frame A and B,
    ``scores`` (M,) float64 or None."""

    points0: np.ndarray
    points1: np.ndarray
    scores: np.ndarray | None = None
