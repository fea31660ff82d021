"""References of ``rpx_tasks.metrics.boundaries``: mask boundaries, depth edges and the SGC
precision / recall of one sample (§8.4), pixel by pixel."""

from __future__ import annotations

import math

import numpy as np

from tests.support.metric_references.table import SEEDS, Case, MetricRow


def _dilated(grid: list[list[bool]], rounds: int) -> np.ndarray:
    """``rounds`` of 4-neighbour dilation: a pixel is set when it or a pixel above, below, left
    or right of it (inside the image) is set."""
    height, width = len(grid), len(grid[0]) if grid else 0
    for _ in range(rounds):
        grid = [
            [
                any(
                    grid[y + dy][x + dx]
                    for dy, dx in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))
                    if 0 <= y + dy < height and 0 <= x + dx < width
                )
                for x in range(width)
            ]
            for y in range(height)
        ]
    return np.array(grid, bool).reshape(height, width)


def ref_mask_boundary(labels, dilation=2) -> np.ndarray:
    rows = np.asarray(labels).tolist()
    height, width = len(rows), len(rows[0]) if rows else 0
    grid = [
        [
            (y + 1 < height and rows[y][x] != rows[y + 1][x]) or (x + 1 < width and rows[y][x] != rows[y][x + 1])
            for x in range(width)
        ]
        for y in range(height)
    ]
    return _dilated(grid, dilation).reshape(np.asarray(labels).shape)


def ref_depth_edges(depth_m, threshold_m=0.1, dilation=2) -> np.ndarray:
    # The depth is taken as float32 (documented); the arithmetic is float64.
    depth = np.asarray(depth_m, np.float32).astype(np.float64).tolist()
    height, width = len(depth), len(depth[0]) if depth else 0

    def edge(y: int, x: int) -> bool:
        gx = (depth[y][x + 1] - depth[y][x - 1]) / 2 if 0 < x < width - 1 else 0.0
        gy = (depth[y + 1][x] - depth[y - 1][x]) / 2 if 0 < y < height - 1 else 0.0
        return math.sqrt(gx * gx + gy * gy) > threshold_m  # False for NaN

    grid = [[edge(y, x) for x in range(width)] for y in range(height)]
    return _dilated(grid, dilation).reshape(np.asarray(depth_m).shape)


def ref_boundary_precision_recall(labels, depth_m) -> tuple[float, float]:
    mask = ref_mask_boundary(labels).ravel().tolist()
    edges = ref_depth_edges(depth_m).ravel().tolist()
    both = sum(1 for m, d in zip(mask, edges) if m and d)
    precision = both / sum(mask) if sum(mask) else 1.0
    recall = both / sum(edges) if sum(edges) else 1.0
    return precision, recall


def _scene(seed: int, shape=(24, 32)) -> tuple[np.ndarray, np.ndarray]:
    """A label map of a few rectangles on a background and its depth: each rectangle a tilted
    plane in front of a tilted background plane, with a few dropouts (0)."""
    rng = np.random.default_rng(seed)
    height, width = shape
    yy, xx = np.mgrid[0:height, 0:width]
    labels = np.zeros(shape, np.int32)
    depth = 3.0 + 0.01 * xx + 0.005 * yy
    for label in range(1, 4):
        y0, x0 = rng.integers(0, height - 4), rng.integers(0, width - 4)
        y1, x1 = y0 + rng.integers(3, 10), x0 + rng.integers(3, 12)
        labels[y0:y1, x0:x1] = label
        depth[y0:y1, x0:x1] = rng.uniform(0.8, 2.5) + rng.uniform(-0.03, 0.03) * xx[y0:y1, x0:x1]
    depth.reshape(-1)[rng.choice(depth.size, 6, replace=False)] = 0.0
    return labels, depth.astype(np.float32)


def _noisy_labels(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The scene with a tenth of its labels changed: boundaries that no depth edge explains."""
    labels, depth = _scene(seed)
    rng = np.random.default_rng(seed + 100)
    noisy = rng.random(labels.shape) < 0.1
    labels[noisy] = rng.integers(0, 5, int(noisy.sum()))
    return labels, depth


_STEP = np.repeat([[0, 0, 0, 1, 1, 1]], 4, axis=0)

MASK_BOUNDARY_CASES = (
    *(Case(f"random{s}", lambda s=s: (_scene(s)[0],)) for s in SEEDS),
    *(Case(f"noisy{s}_dilation{d}", lambda s=s, d=d: (_noisy_labels(s)[0], d)) for s in SEEDS for d in (0, 1)),
    Case("uniform", lambda: (np.full((5, 6), 3, np.int32),)),
    Case("checkerboard", lambda: (np.indices((5, 6)).sum(axis=0) % 2, 0)),
    Case("step_dilation1", lambda: (_STEP, 1)),
    Case("empty", lambda: (np.zeros((0, 0), np.int32),)),
    Case("single_pixel", lambda: (np.array([[4]], np.int32),)),
    Case("single_row", lambda: (np.array([[0, 0, 1, 1, 2]], np.int32), 1)),
    Case("single_column", lambda: (np.array([[0], [1], [1], [1]], np.int32),)),
)


def _nonfinite_depth() -> np.ndarray:
    depth = _scene(5)[1]
    depth[3, 4], depth[10, 12], depth[20, 20] = np.nan, np.inf, -np.inf
    return depth


DEPTH_EDGE_CASES = (
    *(Case(f"random{s}", lambda s=s: (_scene(s)[1],)) for s in SEEDS),
    *(Case(f"random{s}_dilation0", lambda s=s: (_scene(s)[1], 0.1, 0)) for s in SEEDS),
    Case("float64_input_threshold_0.05", lambda: (_scene(4)[1].astype(np.float64), 0.05, 1)),
    Case("nonfinite", lambda: (_nonfinite_depth(),)),
    Case("threshold_is_strict", lambda: (np.array([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.5]]), 0.25, 0)),
    Case("just_above_threshold", lambda: (np.array([[0.0, 0.0, 0.5, 0.5 + 2**-10]] * 3), 0.25, 0)),
    Case("flat", lambda: (np.full((4, 5), 2.0, np.float32),)),
    Case("empty", lambda: (np.zeros((0, 0), np.float32),)),
    Case("single_pixel", lambda: (np.array([[1.5]], np.float32),)),
    Case("single_row", lambda: (np.array([[1.0, 1.0, 2.0, 2.0, 2.0]], np.float32), 0.1, 0)),
)

BOUNDARY_PRECISION_RECALL_CASES = (
    *(Case(f"random{s}", lambda s=s: _scene(s)) for s in SEEDS),
    *(Case(f"noisy_labels{s}", lambda s=s: _noisy_labels(s)) for s in SEEDS),
    Case("aligned_step", lambda: (_STEP, np.where(_STEP == 1, 2.0, 1.0))),
    Case("mask_edges_flat_depth", lambda: (_STEP, np.ones(_STEP.shape))),
    Case("no_mask_edges", lambda: (np.zeros(_STEP.shape, np.int32), np.where(_STEP == 1, 2.0, 1.0))),
    Case("no_edges_at_all", lambda: (np.zeros((4, 5), np.int32), np.ones((4, 5)))),
    Case("empty", lambda: (np.zeros((0, 0), np.int32), np.zeros((0, 0)))),
    Case("single_pixel", lambda: (np.array([[1]], np.int32), np.array([[0.0]]))),
)

ROWS = (
    MetricRow("boundaries:mask_boundary", ref_mask_boundary, MASK_BOUNDARY_CASES),
    MetricRow("boundaries:depth_edges", ref_depth_edges, DEPTH_EDGE_CASES),
    MetricRow("boundaries:boundary_precision_recall", ref_boundary_precision_recall, BOUNDARY_PRECISION_RECALL_CASES),
)
