"""Every metric's temporaries stay O(frame): bounded peak memory on frame-sized and crowded inputs.

Peak memory is measured with ``tracemalloc``, which numpy reports its array allocations to:
tracing starts after the inputs are built, so the figure is what the metric call itself
allocated at its peak (its temporaries and its result). Correctness on these inputs is checked
too; the reference table (tests/test_metric_references.py) checks every formula on smaller
inputs, including ones that span several of the metrics' blocks.
"""

from __future__ import annotations

import tracemalloc
from typing import Any, Callable

import numpy as np
import pytest

from rpx_tasks.contracts.keypoints import KeypointCorrespondences, KeypointMatches
from rpx_tasks.contracts.segmentation import SegmentationGroundTruth
from rpx_tasks.contracts.sparse_depth import SparseDepthGroundTruth, SparseDepthPrediction
from rpx_tasks.contracts.tracking import Tracklet, TrackletGroundTruth, TrackletPrediction
from rpx_tasks.metrics.boundaries import boundary_precision_recall
from rpx_tasks.metrics.depth import depth_metrics
from rpx_tasks.metrics.detection import detection_metrics
from rpx_tasks.metrics.keypoints import keypoint_metrics
from rpx_tasks.metrics.segmentation import segmentation_metrics
from rpx_tasks.metrics.sparse_depth import sparse_depth_metrics
from rpx_tasks.metrics.tracking import tracking_metrics

MB = 1_000_000
HEIGHT, WIDTH = 480, 640


def peak_extra_bytes(function: Callable[..., Any], *args: Any) -> tuple[int, Any]:
    """(peak bytes allocated during ``function(*args)`` above what was allocated before, its result)."""
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        result = function(*args)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before, result


def test_tracemalloc_sees_numpy_allocations():
    extra, _ = peak_extra_bytes(lambda: np.ones(5_000_000).sum())  # a 40 MB temporary
    assert 39 * MB < extra < 42 * MB


def _pixel_grid() -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    return xs, ys


def test_dense_sparse_depth_prediction_stays_under_200_mb():
    xs, ys = _pixel_grid()
    depth = (1.0 + xs / WIDTH + ys / HEIGHT).astype(np.float32)
    dense = SparseDepthPrediction(np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32), depth.ravel())
    assert len(dense.depths) == 307_200
    pixels = np.random.default_rng(0).integers(0, [WIDTH, HEIGHT], (1000, 2))
    on_pixels = SparseDepthGroundTruth(pixels.astype(np.float32), depth[pixels[:, 1], pixels[:, 0]])
    extra, metrics = peak_extra_bytes(sparse_depth_metrics, dense, on_pixels)
    assert extra < 200 * MB, f"{extra / MB:.0f} MB"
    assert metrics == {"sparse_absrel": 0.0, "sparse_rmse": 0.0}  # every point finds its own pixel
    # Off the pixel grid by 2.5 px in x: no prediction within 2 px, every point scores 0 (relative error 1).
    beside = SparseDepthGroundTruth(np.array([[-2.5, 10.0], [WIDTH + 1.5, 20.0]], np.float32), np.ones(2, np.float32))
    extra, metrics = peak_extra_bytes(sparse_depth_metrics, dense, beside)
    assert extra < 200 * MB and metrics == {"sparse_absrel": 1.0, "sparse_rmse": 1.0}


def test_dense_keypoint_matches_stay_under_200_mb():
    xs, ys = _pixel_grid()
    grid = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
    truth = np.random.default_rng(1).integers(0, [WIDTH, HEIGHT], (300, 2)).astype(np.float32)
    matches = KeypointMatches(grid, grid + np.float32(1.0))  # every pixel matched 1 px to the right
    extra, metrics = peak_extra_bytes(keypoint_metrics, matches, KeypointCorrespondences(truth, truth + 1.0))
    assert extra < 200 * MB, f"{extra / MB:.0f} MB"
    assert metrics == {"keypoint_acc": 1.0, "mean_match_error": 0.0}


def _crowded_boxes(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    corner = rng.uniform(0, [WIDTH - 60, HEIGHT - 60], (count, 2))
    return np.concatenate([corner, corner + rng.uniform(10, 60, (count, 2))], axis=1).astype(np.float32)


def test_detection_with_20000_boxes_stays_under_50_mb():
    truth = _crowded_boxes(1000, 2)
    predicted = np.concatenate([truth, _crowded_boxes(19_000, 3) + 1000.0])  # 19,000 boxes off the frame
    scores = np.linspace(1.0, 0.0, len(predicted))
    labels = ["cup"] * len(predicted)
    extra, metrics = peak_extra_bytes(detection_metrics, predicted, scores, labels, truth, ["cup"] * len(truth))
    assert extra < 50 * MB, f"{extra / MB:.0f} MB"  # one 20,000 x 1,000 IoU table at once took 1.3 GB
    assert metrics["recall"] == 1.0 and metrics["precision"] == pytest.approx(1000 / 20_000)


def test_tracking_with_5000_tracks_stays_under_50_mb():
    truth = _crowded_boxes(1000, 4)
    gt = TrackletGroundTruth([Tracklet(f"g{k}", truth[k : k + 1]) for k in range(len(truth))])
    far = _crowded_boxes(4000, 5) + 1000.0
    tracks = [Tracklet(f"p{k}", truth[k : k + 1]) for k in range(len(truth))]
    tracks += [Tracklet(f"q{k}", far[k : k + 1]) for k in range(len(far))]
    extra, metrics = peak_extra_bytes(tracking_metrics, TrackletPrediction(tracks), gt)
    assert extra < 50 * MB, f"{extra / MB:.0f} MB"  # one 5,000 x 1,000 IoU table at once took 325 MB
    assert metrics["fn"] == 0.0 and metrics["fp"] == 4000.0 and metrics["idsw"] == 0.0


def test_frame_metrics_stay_within_a_few_frames():
    """Depth, segmentation (with instance ids far apart) and SGC boundaries on one 640x480 frame."""
    xs, ys = _pixel_grid()
    depth = (1.0 + xs / WIDTH + ys / HEIGHT).astype(np.float32)
    labels = ((xs // 40) + 16 * (ys // 40)).astype(np.int64) * (1 << 40)  # 192 instances, ids far apart
    frame_bytes = HEIGHT * WIDTH * 8  # one float64 frame, 2.5 MB
    for function, args in (
        (depth_metrics, (depth * 1.1, depth)),
        (segmentation_metrics, (labels, SegmentationGroundTruth(labels))),
        (boundary_precision_recall, (labels, depth)),
    ):
        extra, _ = peak_extra_bytes(function, *args)
        assert extra < 16 * frame_bytes, f"{function.__name__}: {extra / MB:.0f} MB"
