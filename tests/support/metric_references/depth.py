"""References of ``rpx_tasks.metrics.depth``: ``depth_metrics`` (§1.4) and ``depth_pair_score`` (§8.3)."""

from __future__ import annotations

import math

import numpy as np

from tests.support.metric_references.table import SEEDS, Case, MetricRow

# --------------------------------------------------------------------------------------------
# depth_metrics
# --------------------------------------------------------------------------------------------


DEPTH_BINS = (("near", 0.3, 1.0), ("mid", 1.0, 2.5), ("far", 2.5, 5.0))


def _log_stats(e: np.ndarray) -> tuple[float, float]:
    """(rmselog, silog) of log errors e: sqrt(mean e^2) and 100 x population std (two passes)."""
    mean = math.fsum(e) / e.size
    rmselog = math.sqrt(math.fsum(e * e) / e.size)
    silog = 100.0 * math.sqrt(math.fsum((e - mean) ** 2) / e.size)
    return rmselog, silog


def ref_depth_metrics(pred, gt) -> dict[str, float | None]:
    p_all = np.asarray(pred, dtype=np.float64).ravel()
    g_all = np.asarray(gt, dtype=np.float64).ravel()
    out: dict[str, float | None] = {}

    valid = g_all > 0
    if not valid.any():
        out.update(absrel=0.0, rmse=0.0, delta1=1.0, delta2=1.0, delta3=1.0)
    else:
        g = g_all[valid]
        p = np.where(p_all[valid] < 1e-6, 1e-6, p_all[valid])  # clip below; NaN stays NaN
        out["absrel"] = math.fsum(np.abs(p - g) / g) / g.size
        out["rmse"] = math.sqrt(math.fsum((p - g) ** 2) / g.size)
        for k in (1, 2, 3):
            # max(p/g, g/p) < t  <=>  p/g < t and g/p < t (False for NaN, as a comparison with NaN is)
            within = (p / g < 1.25**k) & (g / p < 1.25**k)
            out[f"delta{k}"] = int(within.sum()) / g.size

    with np.errstate(invalid="ignore"):
        log_mask = np.isfinite(g_all) & (g_all > 0.3) & (g_all < 5.0) & np.isfinite(p_all) & (p_all > 0)
    if not log_mask.any():
        out["rmselog"], out["silog"] = 0.0, 0.0
    else:
        e = np.log(p_all[log_mask]) - np.log(g_all[log_mask])
        out["rmselog"], out["silog"] = _log_stats(e)

    for name, low, high in DEPTH_BINS:
        in_bin = log_mask & (g_all >= low) & (g_all < high)
        keys = [f"{m}_{name}" for m in ("absrel", "rmse", "rmselog", "silog", "delta1")]
        if in_bin.sum() < 100:
            out.update(dict.fromkeys(keys, None))
            continue
        g, p_raw = g_all[in_bin], p_all[in_bin]
        p = np.maximum(p_raw, 1e-6)
        rmselog, silog = _log_stats(np.log(p_raw) - np.log(g))
        within = (p / g < 1.25) & (g / p < 1.25)
        values = (
            math.fsum(np.abs(p - g) / g) / g.size,
            math.sqrt(math.fsum((p - g) ** 2) / g.size),
            rmselog,
            silog,
            int(within.sum()) / g.size,
        )
        out.update(zip(keys, values))
    return out


def _depth_random(seed: int, shape=(48, 64)):
    rng = np.random.default_rng(seed)
    gt = rng.uniform(0.1, 6.0, shape).astype(np.float32)
    gt[rng.random(shape) < 0.15] = 0.0
    pred = (gt * rng.uniform(0.7, 1.4, shape) + rng.normal(0.0, 0.05, shape)).astype(np.float32)
    flat = pred.reshape(-1)
    special = rng.choice(flat.size, 20, replace=False)
    flat[special[:5]] = 0.0
    flat[special[5:10]] = -0.5
    flat[special[10:15]] = 5e-7  # positive but below the 1e-6 floor
    flat[special[15:]] = rng.uniform(0.3, 5.0, 5)
    return pred, gt


def _depth_full_frame():
    """A 480x640 frame: invalid top band (whole blocks), mixed middle, all-in-log-range bottom."""
    rng = np.random.default_rng(7)
    gt = np.zeros((480, 640), np.float32)
    gt[160:320] = rng.uniform(0.05, 7.0, (160, 640))
    gt[160:320][rng.random((160, 640)) < 0.3] = 0.0
    gt[320:] = rng.uniform(0.35, 4.9, (160, 640))
    pred = (gt * rng.uniform(0.8, 1.25, gt.shape)).astype(np.float32)
    pred[:160] = rng.uniform(0.0, 3.0, (160, 640))
    return pred, gt


def _depth_scale():
    """A pure scale error: the log error is constant, so silog is ~0 (a cancellation trap)."""
    gt = np.random.default_rng(3).uniform(0.4, 4.5, (40, 50))
    return 1.1 * gt, gt


def _depth_nonfinite():
    pred, gt = _depth_random(4)
    gt[0, :4] = 2.0
    pred[0, :4] = [np.nan, np.inf, -np.inf, 1.0]
    return pred, gt


def _depth_bin_sizes():
    """Exactly 100 pixels in near (kept), 99 in mid (None), 150 in far, plus out-of-range ones."""
    gt = np.concatenate([np.full(100, 0.5), np.full(99, 1.5), np.full(150, 3.0), np.full(11, 5.5)])
    pred = gt * np.linspace(0.8, 1.3, gt.size)
    return pred.reshape(20, 18), gt.reshape(20, 18)


def _depth_bin_edges():
    """Float64 GT exactly on the bin edges 0.3 (excluded), 1.0, 2.5 (next bin) and 5.0 (excluded)."""
    rng = np.random.default_rng(5)
    gt = np.repeat([0.3, 0.6, 1.0, 2.0, 2.5, 4.0, 5.0], 120).astype(np.float64)
    pred = gt * rng.uniform(0.85, 1.2, gt.size)
    return pred.reshape(28, 30), gt.reshape(28, 30)


def _depth_all_invalid():
    return np.random.default_rng(0).uniform(0.5, 3.0, (8, 9)).astype(np.float32), np.zeros((8, 9), np.float32)


def _depth_log_empty():
    """Valid pixels, none in the log range (GT all beyond 5 m): rmselog = silog = 0, bins None."""
    gt = np.full((6, 6), 6.0, np.float32)
    return (gt * 1.2).astype(np.float32), gt


DEPTH_CASES = (
    *(Case(f"random{s}", lambda s=s: _depth_random(s)) for s in SEEDS),
    Case("full_frame_480x640", _depth_full_frame),
    Case("pure_scale", _depth_scale),
    Case("nonfinite_prediction", _depth_nonfinite),
    Case("bin_min_pixels", _depth_bin_sizes),
    Case("bin_edges", _depth_bin_edges),
    Case("perfect", lambda: (np.full((12, 12), 2.0, np.float32), np.full((12, 12), 2.0, np.float32))),
    Case("empty", lambda: (np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32))),
    Case("all_invalid", _depth_all_invalid),
    Case("no_log_pixels", _depth_log_empty),
    Case("single_pixel", lambda: (np.array([[2.5]], np.float32), np.array([[2.0]], np.float32))),
    Case("single_pixel_zero_prediction", lambda: (np.array([[0.0]], np.float32), np.array([[1.5]], np.float32))),
)


# --------------------------------------------------------------------------------------------
# depth_pair_score: the Temporal Stability score of two consecutive depth maps
# --------------------------------------------------------------------------------------------


def ref_depth_pair_score(depth_t, depth_next_aligned) -> float:
    first = np.asarray(depth_t, np.float64).ravel().tolist()
    second = np.asarray(depth_next_aligned, np.float64).ravel().tolist()
    valid = [i for i in range(len(first)) if 0 < first[i] < math.inf and 0 < second[i] < math.inf]  # NaN: False
    if not valid:
        return 1.0
    l1 = math.fsum(abs(first[i] - second[i]) for i in valid) / len(valid)
    spread = max(first[i] for i in valid) - min(first[i] for i in valid)
    return max(0.0, 1.0 - l1 / max(spread, 1e-3))


def _pair_random(seed: int, shape=(24, 32)):
    """float64 maps: the implementation subtracts in the maps' dtype, so float64 inputs make the
    float64 reference exact (float32 ones are covered by ``_pair_float32_dyadic``)."""
    rng = np.random.default_rng(seed)
    depth_t = rng.uniform(0.3, 4.0, shape)
    depth_next = depth_t + rng.normal(0.0, 0.05, shape)
    for depth in (depth_t, depth_next):
        flat = depth.reshape(-1)
        special = rng.choice(flat.size, 12, replace=False)
        flat[special[:4]] = 0.0
        flat[special[4:7]] = -0.5
        flat[special[7:9]] = np.nan
        flat[special[9:11]] = np.inf
        flat[special[11]] = -np.inf
    return depth_t, depth_next


def _pair_float32_dyadic():
    """float32 maps of multiples of 1/4: every difference is exact in float32 too."""
    rng = np.random.default_rng(8)
    depth_t = (rng.integers(1, 20, (16, 20)) / 4).astype(np.float32)
    depth_next = (depth_t + rng.integers(-2, 3, depth_t.shape) / 4).astype(np.float32)
    return depth_t, depth_next


def _pair_float32_blocks(seed: int):
    """float32 maps larger than one block of rows (the float32 path's), as strided views into ringed arrays,
    with zeros, negatives, NaN, infinities and subnormals in both; the next map is the first
    times a factor in [0.6, 1.6], so every float32 difference is exact (Sterbenz) and the reference exact."""
    rng = np.random.default_rng(seed)
    ringed_t = rng.uniform(0.2, 6.0, (262, 302)).astype(np.float32)
    ringed_next = (ringed_t * rng.uniform(0.6, 1.6, ringed_t.shape)).astype(np.float32)
    specials = np.array([0.0, -0.0, -1.0, np.nan, np.inf, -np.inf, 1e-45], np.float32)
    for depth in (ringed_t, ringed_next):
        flat = depth.reshape(-1)
        where = rng.choice(flat.size, flat.size // 20, replace=False)
        flat[where] = rng.choice(specials, where.size)
    return ringed_t[1:-1, 1:-1], ringed_next[1:-1, 1:-1]


def _pair_flat(offset: float):
    flat = np.full((3, 4), 2.0)
    return flat, flat + offset


DEPTH_PAIR_CASES = (
    *(Case(f"random{s}", lambda s=s: _pair_random(s)) for s in SEEDS),
    Case("float32_dyadic", _pair_float32_dyadic),
    *(Case(f"float32_blocks{s}", lambda s=s: _pair_float32_blocks(s)) for s in (1, 2)),
    Case("identical", lambda: (np.linspace(0.5, 3.0, 20).reshape(4, 5),) * 2),
    Case("range_floor_halves_the_score", lambda: _pair_flat(0.0005)),  # range 0 -> 1e-3: 1 - 0.5
    Case("clipped_at_zero", lambda: _pair_flat(1.0)),
    Case("empty", lambda: (np.zeros((0, 0)), np.zeros((0, 0)))),
    Case("all_invalid", lambda: (np.zeros((3, 3)), np.full((3, 3), 2.0))),
    Case("single_pixel", lambda: (np.array([[2.0]]), np.array([[2.0004]]))),
)

ROWS = (
    MetricRow("depth:depth_metrics", ref_depth_metrics, DEPTH_CASES, info="depth:DEPTH_METRIC_INFO"),
    MetricRow("depth:depth_pair_score", ref_depth_pair_score, DEPTH_PAIR_CASES),
)
