"""References of ``rpx_tasks.metrics.video_depth`` (reference §1.4 video_depth): per-frame errors on the
mask 0.3 < GT < 5 with the prediction clipped to [0.3, 5], tgm / tgse of consecutive frames, the 5 cm
F-score of back-projected points (brute-force nearest neighbours), and a clip's metrics (means over frames
and pairs). Plain loops over Python floats."""

from __future__ import annotations

import math

import numpy as np

from tests.support.metric_references.table import SEEDS, Case, MetricRow, mean

LOW, HIGH = 0.3, 5.0


def _pixels(pred, gt):
    p = np.asarray(pred, np.float64).tolist()
    g = np.asarray(gt, np.float64).tolist()
    for v, (prow, grow) in enumerate(zip(p, g)):
        for u, (a, b) in enumerate(zip(prow, grow)):
            yield v, u, min(max(a, LOW), HIGH), b


def _in_mask(b: float) -> bool:
    return math.isfinite(b) and LOW < b < HIGH


def ref_frame_errors(pred, gt):
    pairs = [(a, b) for _, _, a, b in _pixels(pred, gt) if _in_mask(b)]
    if not pairs:
        return None
    logs = [math.log(a) - math.log(b) for a, b in pairs]
    ratios = [max(a / b, b / a) for a, b in pairs]
    m = mean(logs)
    return {
        "absrel": mean(abs(a - b) / b for a, b in pairs),
        "rmse": math.sqrt(mean((a - b) ** 2 for a, b in pairs)),
        "silog": 100.0 * math.sqrt(max(mean(e * e for e in logs) - m * m, 0.0)),
        "delta1": mean(1.0 if r < 1.25 else 0.0 for r in ratios),
        "delta2": mean(1.0 if r < 1.25**2 else 0.0 for r in ratios),
        "delta3": mean(1.0 if r < 1.25**3 else 0.0 for r in ratios),
    }


def ref_temporal_pair_errors(pred_prev, gt_prev, pred, gt):
    previous = list(_pixels(pred_prev, gt_prev))
    current = list(_pixels(pred, gt))
    deltas = [
        (a1 - a0, b1 - b0) for (_, _, a0, b0), (_, _, a1, b1) in zip(previous, current) if _in_mask(b0) and _in_mask(b1)
    ]
    if not deltas:
        return None, None
    static = [(dp, dg) for dp, dg in deltas if abs(dg) < 0.05]
    tgm = mean(abs(abs(dp) - abs(dg)) for dp, dg in static) if static else None
    return tgm, mean((dp - dg) ** 2 for dp, dg in deltas)


def _point(u, v, z):
    return ((u - 320.0) * z / 615.0, (v - 240.0) * z / 615.0, z)


def ref_frame_fscore(pred, gt):
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != (480, 640):
        return None
    pixels = [(v, u, a, b) for v, u, a, b in _pixels(pred, gt) if _in_mask(b)]
    if not pixels:
        return None
    p_points = [_point(u, v, a) for v, u, a, _ in pixels]
    g_points = [_point(u, v, b) for v, u, _, b in pixels]

    def share_within(points, others):
        return mean(1.0 if min(math.dist(x, y) for y in others) < 0.05 else 0.0 for x in points)

    precision, recall = share_within(p_points, g_points), share_within(g_points, p_points)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def ref_video_depth_metrics(pred_seq, gt_seq, *, fscore=False):
    frames = [ref_frame_errors(p, g) for p, g in zip(pred_seq, gt_seq)]
    frames = [f for f in frames if f is not None]
    metrics = {
        name: (mean(f[name] for f in frames) if frames else None)
        for name in ("absrel", "rmse", "silog", "delta1", "delta2", "delta3")
    }
    pairs = [
        ref_temporal_pair_errors(pred_seq[t - 1], gt_seq[t - 1], pred_seq[t], gt_seq[t]) for t in range(1, len(gt_seq))
    ]
    tgm = [a for a, _ in pairs if a is not None]
    tgse = [b for _, b in pairs if b is not None]
    metrics["tgm"] = mean(tgm) if tgm else None
    metrics["tgse"] = mean(tgse) if tgse else None
    scores = [s for s in (ref_frame_fscore(p, g) for p, g in zip(pred_seq, gt_seq)) if s is not None] if fscore else []
    metrics["fscore_5cm"] = mean(scores) if scores else None
    return metrics


def _clip(seed: int, frames: int = 4, shape=(9, 11)):
    """A clip whose GT has invalid (0), out-of-range and static pixels, and a prediction with noise."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.2, 5.5, shape)
    gt = np.stack([base + (rng.uniform(-0.2, 0.2, shape) * (rng.random(shape) < 0.4)) for _ in range(frames)])
    gt[rng.random(gt.shape) < 0.15] = 0.0
    pred = (gt * rng.uniform(0.8, 1.25, gt.shape) + rng.normal(0, 0.05, gt.shape)).astype(np.float32)
    pred[rng.random(gt.shape) < 0.05] = 7.0  # clipped to 5
    return pred, gt.astype(np.float32)


def _sparse_vga(seed: int, offset: float):
    """A 480x640 frame with ~150 valid GT pixels and a prediction ``offset`` metres further."""
    rng = np.random.default_rng(seed)
    gt = np.zeros((480, 640), np.float32)
    rows, cols = rng.integers(0, 480, 150), rng.integers(0, 640, 150)
    gt[rows, cols] = rng.uniform(0.5, 4.0, 150)
    pred = np.where(gt > 0, gt + offset, 1.0).astype(np.float32)
    pred[rows[:20], cols[:20]] += rng.uniform(0.0, 0.1, 20).astype(np.float32)
    return pred, gt


FRAME_CASES = (
    *(Case(f"random{s}", lambda s=s: tuple(a[0] for a in _clip(s))) for s in SEEDS),
    Case("no_valid_pixel", lambda: (np.ones((3, 4), np.float32), np.zeros((3, 4), np.float32))),
    Case("single_pixel", lambda: (np.full((1, 1), 9.0, np.float32), np.full((1, 1), 4.9, np.float32))),
    # float32 GT at the range ends: 0.3 (300 mm) is just above 0.3 in float64, so it counts; 5.0 does not
    Case("gt_at_the_range_ends", lambda: (np.ones((1, 2), np.float32), np.array([[0.3, 5.0]], np.float32))),
)


def _pair_case(seed: int):
    pred, gt = _clip(seed)
    return pred[0], gt[0], pred[1], gt[1]


def _static_and_moving():
    # one static pixel (GT unchanged), one moving 1 m, one invalid in the second frame
    gt_prev = np.array([[2.0, 2.0, 2.0]], np.float32)
    gt = np.array([[2.0, 3.0, 0.0]], np.float32)
    pred_prev = np.array([[2.0, 2.0, 2.0]], np.float32)
    pred = np.array([[2.1, 2.5, 2.0]], np.float32)
    return pred_prev, gt_prev, pred, gt


PAIR_CASES = (
    *(Case(f"random{s}", lambda s=s: _pair_case(s)) for s in SEEDS),
    Case("static_and_moving", _static_and_moving),
    Case(
        "no_common_pixel",
        lambda: (
            np.ones((2, 2), np.float32),
            np.eye(2, dtype=np.float32),
            np.ones((2, 2), np.float32),
            1 - np.eye(2, dtype=np.float32),
        ),
    ),
    Case(
        "no_static_pixel",
        lambda: (
            np.ones((1, 2), np.float32),
            np.full((1, 2), 1.0, np.float32),
            np.ones((1, 2), np.float32),
            np.full((1, 2), 2.0, np.float32),
        ),
    ),
)

FSCORE_CASES = (
    Case("exact", lambda: _sparse_vga(0, 0.0)),
    Case("offset_3cm", lambda: _sparse_vga(1, 0.03)),
    Case("offset_20cm", lambda: _sparse_vga(2, 0.2)),
    Case("not_vga", lambda: _clip(0)),
    Case("no_valid_pixel", lambda: (np.ones((480, 640), np.float32), np.zeros((480, 640), np.float32))),
)


def _fscore_frame_case(case: Case) -> Case:
    def make(make=case.make):
        pred, gt = make()
        return (pred[0], gt[0]) if pred.ndim == 3 else (pred, gt)

    return Case(case.id, make)


CLIP_CASES = (
    *(Case(f"random{s}", lambda s=s: _clip(s)) for s in SEEDS),
    Case("single_frame", lambda: _clip(4, frames=1)),
    Case("all_invalid", lambda: (np.ones((3, 2, 2), np.float32), np.zeros((3, 2, 2), np.float32))),
)

ROWS = (
    MetricRow("video_depth:frame_errors", ref_frame_errors, FRAME_CASES),
    MetricRow("video_depth:temporal_pair_errors", ref_temporal_pair_errors, PAIR_CASES),
    MetricRow("video_depth:frame_fscore", ref_frame_fscore, tuple(_fscore_frame_case(c) for c in FSCORE_CASES)),
    MetricRow(
        "video_depth:video_depth_metrics",
        ref_video_depth_metrics,
        CLIP_CASES,
        info="video_depth:VIDEO_DEPTH_METRIC_INFO",
    ),
)
