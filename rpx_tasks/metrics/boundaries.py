"""Mask boundaries against depth edges, the per-sample part of Stack-level Geometric Coherence
(SGC, reference §8.4); ``rpx_tasks.readiness.coherence`` averages it over a run.

A boundary pixel is one whose label differs from the pixel below or to its right; a depth edge
is a pixel whose central-difference depth gradient exceeds ``SGC_DEPTH_EDGE_M``. Both are
widened by ``SGC_BOUNDARY_DILATION`` rounds of 4-neighbour dilation before they are compared.
"""

from __future__ import annotations

import numpy as np

from rpx_tasks.errors import MetricError

SGC_DEPTH_EDGE_M = 0.1
SGC_BOUNDARY_DILATION = 2


def _dilate(mask: np.ndarray, iterations: int) -> np.ndarray:
    """``iterations`` rounds of 4-neighbour binary dilation (pixels outside count as False)."""
    result = mask
    for _ in range(iterations):
        grown = result.copy()
        grown[1:, :] |= result[:-1, :]
        grown[:-1, :] |= result[1:, :]
        grown[:, 1:] |= result[:, :-1]
        grown[:, :-1] |= result[:, 1:]
        result = grown
    return result


def mask_boundary(labels: np.ndarray, dilation: int = SGC_BOUNDARY_DILATION) -> np.ndarray:
    """Boundary pixels of a label map (§8.4): a pixel whose label differs from the pixel below
    or to its right, then ``dilation`` rounds of 4-neighbour dilation. Returns (H, W) bool.
    Raises MetricError when ``labels`` is not 2-D."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise MetricError(f"Label map must have 2 dims; got {labels.ndim}.", hint="Pass an (H, W) mask.")
    boundary = np.zeros(labels.shape, bool)
    boundary[:-1, :] |= labels[:-1, :] != labels[1:, :]
    boundary[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    return _dilate(boundary, dilation)


def depth_edges(
    depth_m: np.ndarray, threshold_m: float = SGC_DEPTH_EDGE_M, dilation: int = SGC_BOUNDARY_DILATION
) -> np.ndarray:
    """Depth-discontinuity pixels (§8.4): central-difference gradient magnitude
    sqrt(gx^2 + gy^2) > ``threshold_m``, with gx = (d[x+1] - d[x-1]) / 2 (0 on the first and
    last column; gy likewise on rows), then ``dilation`` rounds of 4-neighbour dilation.
    The depth is taken as float32 and the gradient computed in float32. Invalid depth (0) is
    used as is, so dropouts make edges too, as upstream. Returns (H, W) bool. Raises
    MetricError when ``depth_m`` is not 2-D."""
    depth = np.asarray(depth_m, dtype=np.float32)
    if depth.ndim != 2:
        raise MetricError(f"Depth map must have 2 dims; got {depth.ndim}.", hint="Pass an (H, W) depth map in metres.")
    gx = np.zeros_like(depth)
    gy = np.zeros_like(depth)
    gx[:, 1:-1] = (depth[:, 2:] - depth[:, :-2]) / 2.0
    gy[1:-1, :] = (depth[2:, :] - depth[:-2, :]) / 2.0
    return _dilate(np.sqrt(gx * gx + gy * gy) > threshold_m, dilation)


def boundary_precision_recall(labels: np.ndarray, depth_m: np.ndarray) -> tuple[float, float]:
    """SGC precision and recall of one sample (§8.4): with M = ``mask_boundary(labels)`` and
    D = ``depth_edges(depth_m)``, p = |M and D| / |M| and r = |M and D| / |D|, each 1.0 when
    its denominator is 0. Raises MetricError when the maps differ in shape or are not 2-D."""
    labels, depth = np.asarray(labels), np.asarray(depth_m)
    if labels.shape != depth.shape:
        raise MetricError(
            f"SGC: mask shape {labels.shape} differs from depth shape {depth.shape}.",
            hint="the mask and the depth map of a sample must have the RGB frame's resolution",
        )
    m, d = mask_boundary(labels), depth_edges(depth)
    tp = int(np.count_nonzero(m & d))
    fp = int(np.count_nonzero(m)) - tp
    fn = int(np.count_nonzero(d)) - tp
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall


__all__ = [
    "SGC_BOUNDARY_DILATION",
    "SGC_DEPTH_EDGE_M",
    "boundary_precision_recall",
    "depth_edges",
    "mask_boundary",
]
