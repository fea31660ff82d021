"""Depth metrics: hand-computed values, edge cases and a slow reference implementation."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from rpx_tasks.errors import MetricError
from rpx_tasks.metrics.depth import DEPTH_METRIC_INFO, depth_metrics

BINS = (("near", 0.3, 1.0), ("mid", 1.0, 2.5), ("far", 2.5, 5.0))
BIN_METRICS = ("absrel", "rmse", "rmselog", "silog", "delta1")
ALL_KEYS = {"absrel", "rmse", "delta1", "delta2", "delta3", "rmselog", "silog"} | {
    f"{m}_{b}" for b, _, _ in BINS for m in BIN_METRICS
}


def reference_depth_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float | None]:
    """Reference §1.4 written out literally, one mask and one formula at a time, in float64."""
    with np.errstate(all="ignore"):  # inf/NaN inputs are part of the tests
        return _reference(pred, gt)


def _reference(pred: np.ndarray, gt: np.ndarray) -> dict[str, float | None]:
    pred = pred.astype(np.float64)
    gt = gt.astype(np.float64)
    out: dict[str, float | None] = {}
    valid = gt > 0
    if not valid.any():
        out.update(absrel=0.0, rmse=0.0, delta1=1.0, delta2=1.0, delta3=1.0)
    else:
        p = np.clip(pred[valid], 1e-6, None)
        g = gt[valid]
        out["rmse"] = float(np.sqrt(np.mean((p - g) ** 2)))
        out["absrel"] = float(np.mean(np.abs(p - g) / g))
        r = np.maximum(p / g, g / p)
        for k in (1, 2, 3):
            out[f"delta{k}"] = float(np.mean(r < 1.25**k))
    log_mask = np.isfinite(gt) & (gt > 0.3) & (gt < 5.0) & np.isfinite(pred) & (pred > 0)
    e = np.log(pred[log_mask]) - np.log(gt[log_mask])
    out["rmselog"] = float(np.sqrt(np.mean(e**2))) if e.size else 0.0
    out["silog"] = float(100 * np.std(e)) if e.size else 0.0
    for name, low, high in BINS:
        in_bin = log_mask & (gt >= low) & (gt < high)
        if in_bin.sum() < 100:
            out.update({f"{m}_{name}": None for m in BIN_METRICS})
            continue
        p_raw, g = pred[in_bin], gt[in_bin]
        p = np.clip(p_raw, 1e-6, None)
        e = np.log(p_raw) - np.log(g)
        out[f"absrel_{name}"] = float(np.mean(np.abs(p - g) / g))
        out[f"rmse_{name}"] = float(np.sqrt(np.mean((p - g) ** 2)))
        out[f"rmselog_{name}"] = float(np.sqrt(np.mean(e**2)))
        out[f"silog_{name}"] = float(100 * np.std(e))
        out[f"delta1_{name}"] = float(np.mean(np.maximum(p / g, g / p) < 1.25))
    return out


def assert_matches_reference(pred: np.ndarray, gt: np.ndarray, tol: float = 1e-6) -> None:
    got = depth_metrics(pred, gt)
    want = reference_depth_metrics(pred, gt)
    assert set(got) == set(want) == ALL_KEYS
    for key, expected in want.items():
        value = got[key]
        if expected is None:
            assert value is None, key
        elif math.isnan(expected):
            assert math.isnan(value), key
        else:
            assert value == pytest.approx(expected, rel=tol, abs=tol), key


def random_frame(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    gt = rng.uniform(0.1, 6.0, shape).astype(np.float32)
    gt[rng.random(shape) < 0.15] = 0.0
    pred = (gt * rng.lognormal(0.0, 0.2, shape) + rng.normal(0.0, 0.05, shape)).astype(np.float32)
    pred[rng.random(shape) < 0.05] = rng.uniform(0.2, 5.0)
    return pred, gt


# ---------------------------------------------------------------- hand-computed values


def test_perfect_prediction():
    gt = np.full((20, 20), 2.0, np.float32)
    m = depth_metrics(gt.copy(), gt)
    assert m["absrel"] == 0.0 and m["rmse"] == 0.0
    assert m["delta1"] == m["delta2"] == m["delta3"] == 1.0
    assert m["rmselog"] == 0.0 and m["silog"] == 0.0
    assert (m["absrel_mid"], m["rmse_mid"], m["rmselog_mid"], m["silog_mid"], m["delta1_mid"]) == (0, 0, 0, 0, 1)
    assert all(m[f"{k}_{b}"] is None for k in BIN_METRICS for b in ("near", "far"))


def test_constant_offset():
    gt = np.full((20, 20), 2.0, np.float32)
    m = depth_metrics(np.full_like(gt, 2.5), gt)
    assert m["absrel"] == pytest.approx(0.25, abs=1e-12)
    assert m["rmse"] == pytest.approx(0.5, abs=1e-12)
    # max(2.5/2, 2/2.5) = 1.25 exactly, and delta1 counts r < 1.25 strictly.
    assert (m["delta1"], m["delta2"], m["delta3"]) == (0.0, 1.0, 1.0)
    assert m["rmselog"] == pytest.approx(math.log(1.25), abs=1e-12)
    assert m["silog"] == pytest.approx(0.0, abs=1e-9)  # a pure scale offset has no spread
    assert m["absrel_mid"] == pytest.approx(0.25, abs=1e-12)
    assert m["silog_mid"] == pytest.approx(0.0, abs=1e-9)
    assert m["delta1_mid"] == 0.0


def test_small_mixed_frame():
    gt = np.array([[1.0, 2.0], [0.0, 4.0]], np.float32)
    pred = np.array([[1.5, 2.0], [7.0, 3.0]], np.float32)
    m = depth_metrics(pred, gt)
    # valid pixels: p = 1.5, 2, 3 against g = 1, 2, 4
    assert m["absrel"] == pytest.approx((0.5 + 0.0 + 0.25) / 3, abs=1e-12)
    assert m["rmse"] == pytest.approx(math.sqrt((0.25 + 0.0 + 1.0) / 3), abs=1e-12)
    assert m["delta1"] == pytest.approx(1 / 3)  # ratios 1.5, 1, 4/3
    assert m["delta2"] == 1.0 and m["delta3"] == 1.0
    e = [math.log(1.5), 0.0, math.log(0.75)]
    mean = sum(e) / 3
    assert m["rmselog"] == pytest.approx(math.sqrt(sum(x * x for x in e) / 3), abs=1e-12)
    assert m["silog"] == pytest.approx(100 * math.sqrt(sum((x - mean) ** 2 for x in e) / 3), abs=1e-10)
    assert all(m[f"{k}_{b}"] is None for k in BIN_METRICS for b, _, _ in BINS)  # < 100 pixels each


def test_all_invalid_frame_gives_sentinel():
    m = depth_metrics(np.ones((8, 8), np.float32), np.zeros((8, 8), np.float32))
    assert {k: m[k] for k in ("rmse", "absrel", "delta1", "delta2", "delta3")} == {
        "rmse": 0.0,
        "absrel": 0.0,
        "delta1": 1.0,
        "delta2": 1.0,
        "delta3": 1.0,
    }
    assert m["rmselog"] == 0.0 and m["silog"] == 0.0
    assert all(m[f"{k}_{b}"] is None for k in BIN_METRICS for b, _, _ in BINS)


def test_empty_log_mask():
    gt = np.full((12, 12), 6.0, np.float32)  # valid, but beyond the 5 m log range
    m = depth_metrics(gt * 1.1, gt)
    assert m["absrel"] == pytest.approx(0.1, rel=1e-6)
    assert m["rmselog"] == 0.0 and m["silog"] == 0.0
    assert all(m[f"{k}_{b}"] is None for k in BIN_METRICS for b, _, _ in BINS)


def test_bin_needs_100_pixels():
    gt = np.full((10, 10), 0.5, np.float32)
    pred = np.full_like(gt, 0.6)
    m = depth_metrics(pred, gt)
    assert m["absrel_near"] == pytest.approx(0.2, rel=1e-6)
    assert m["rmse_near"] == pytest.approx(0.1, rel=1e-6)
    assert m["rmselog_near"] == pytest.approx(math.log(1.2), rel=1e-6)
    assert m["silog_near"] == pytest.approx(0.0, abs=1e-9)
    assert m["delta1_near"] == 1.0
    gt[3, 4] = 0.0
    m = depth_metrics(pred, gt)
    assert all(m[f"{k}_near"] is None for k in BIN_METRICS)
    assert m["absrel"] == pytest.approx(0.2, rel=1e-6)  # headline metrics still defined


def test_bin_edges_are_half_open():
    for value, expected_bin in ((1.0, "mid"), (2.5, "far"), (0.31, "near")):
        gt = np.full((10, 10), value, np.float32)
        m = depth_metrics(gt * 1.1, gt)
        for name, _, _ in BINS:
            assert (m[f"absrel_{name}"] is not None) == (name == expected_bin), (value, name)
    # 0.3 and 5.0 themselves are outside the log mask (float64: float32(0.3) is above 0.3).
    for value in (0.3, 5.0):
        gt = np.full((10, 10), value, np.float64)
        m = depth_metrics(gt * 1.1, gt)
        assert m["rmselog"] == 0.0
        assert all(m[f"absrel_{b}"] is None for b, _, _ in BINS)


def test_non_finite_prediction_poisons_headline_only():
    gt = np.full((20, 20), 2.0, np.float32)
    pred = np.full_like(gt, 2.2)
    pred[0, 0] = np.nan
    pred[0, 1] = np.inf
    pred[0, 2] = -1.0
    m = depth_metrics(pred, gt)
    assert math.isnan(m["absrel"]) and math.isnan(m["rmse"])
    assert m["rmselog"] == pytest.approx(math.log(1.1), rel=1e-6)
    assert m["absrel_mid"] == pytest.approx(0.1, rel=1e-5)  # 397 clean pixels
    assert_matches_reference(pred, gt)


def test_prediction_clipped_at_1e_6():
    gt = np.array([[2.0, 1.0]], np.float32)
    pred = np.array([[0.0, 1.0]], np.float32)
    m = depth_metrics(pred, gt)
    assert m["absrel"] == pytest.approx(((2.0 - 1e-6) / 2.0) / 2, rel=1e-9)
    assert m["delta3"] == 0.5
    assert m["rmselog"] == 0.0  # pred 0 is outside the log mask, the other pixel is exact


def test_shape_mismatch_raises_metric_error_with_hint():
    with pytest.raises(MetricError) as info:
        depth_metrics(np.ones((4, 5), np.float32), np.ones((5, 4), np.float32))
    assert info.value.hint and "resize" in info.value.hint
    with pytest.raises(MetricError):
        depth_metrics(np.ones(20, np.float32), np.ones(20, np.float32))


# ---------------------------------------------------------------- against the reference


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("shape", [(480, 640), (37, 53), (300, 301)])
def test_matches_reference_on_random_frames(seed, shape):
    pred, gt = random_frame(np.random.default_rng(seed), shape)
    assert_matches_reference(pred, gt)


@pytest.mark.parametrize("hole_fraction", [0.0, 0.1])
def test_matches_reference_when_every_valid_pixel_is_in_log_range(hole_fraction):
    # Exercises the unmasked-sum path (log mask == valid mask) with and without holes.
    rng = np.random.default_rng(11)
    gt = rng.uniform(0.35, 4.9, (480, 640)).astype(np.float32)
    gt[rng.random(gt.shape) < hole_fraction] = 0.0
    pred = (gt * rng.lognormal(0.0, 0.2, gt.shape)).astype(np.float32)
    assert_matches_reference(pred, gt)


def test_matches_reference_with_nasty_values():
    rng = np.random.default_rng(42)
    pred, gt = random_frame(rng, (480, 640))
    flat = pred.reshape(-1)
    picks = rng.choice(flat.size, 400, replace=False)
    flat[picks[:100]] = np.nan
    flat[picks[100:200]] = -np.inf
    flat[picks[200:300]] = 0.0
    flat[picks[300:]] = 1e-8  # in the log mask, but clipped for absrel/rmse/delta
    gt.reshape(-1)[rng.choice(flat.size, 100, replace=False)] = np.inf
    gt.reshape(-1)[rng.choice(flat.size, 100, replace=False)] = np.nan
    assert_matches_reference(pred, gt)


def test_matches_reference_for_accurate_and_scaled_predictions():
    rng = np.random.default_rng(7)
    _, gt = random_frame(rng, (480, 640))
    assert_matches_reference(gt * np.float32(1.1), gt)  # zero spread: two-pass path
    assert_matches_reference((gt * (1 + 1e-4 * rng.standard_normal(gt.shape))).astype(np.float32), gt)


def test_a_bin_in_few_blocks_gets_no_residue_from_the_others():
    # The mid bin holds pixels in one block of many; a pure scale makes its true spread tiny (float32 rounding
    # only), so the rounding residue of the other blocks' derived (empty) mid sums once dominated silog_mid.
    rng = np.random.default_rng(5)
    gt = rng.uniform(2.6, 4.9, (480, 640)).astype(np.float32)
    gt[300:302, :300] = rng.uniform(1.1, 2.4, (2, 300))
    gt[rng.random(gt.shape) < 0.1] = 0.0
    pred = gt * np.float32(0.93)
    got, want = depth_metrics(pred, gt), reference_depth_metrics(pred, gt)
    assert want["silog_mid"] < 1e-5
    assert got["silog_mid"] == pytest.approx(want["silog_mid"], rel=1e-6, abs=1e-12)
    assert got["silog"] == pytest.approx(want["silog"], rel=1e-6, abs=1e-12)


def test_an_overflowing_squared_error_in_one_bin_leaves_the_other_bins_finite():
    rng = np.random.default_rng(6)
    gt = rng.uniform(0.5, 4.5, (96, 128))
    pred = gt * 1.05
    far_pixel = np.flatnonzero(gt.reshape(-1) >= 2.5)[0]
    pred.reshape(-1)[far_pixel] = 1e300  # finite, in the log mask; its squared error is inf
    got = depth_metrics(pred, gt)
    assert got["rmse_far"] == math.inf and got["rmse"] == math.inf
    assert math.isfinite(got["rmse_mid"]) and math.isfinite(got["rmse_near"])
    assert_matches_reference(pred, gt)


def test_a_huge_finite_prediction_in_one_bin_leaves_the_mid_bin_exact():
    # near's sums dwarf mid's: mid derived as total - near - far would lose them to cancellation (or go negative).
    gt = np.full((1, 300), 2.0)
    pred = gt * 1.1
    gt[0, 0] = 0.5
    pred[0, 0] = 1e150
    got = depth_metrics(pred, gt)
    assert got["absrel_mid"] == pytest.approx(0.1, rel=1e-12) and got["rmse_mid"] == pytest.approx(0.2, rel=1e-12)
    for huge in (3.4e38, 1e30):  # float32 near its largest value on a near pixel: no math domain error
        pred32 = (gt * 1.1).astype(np.float32)
        pred32[0, 0] = huge
        assert depth_metrics(pred32, gt.astype(np.float32))["rmse_mid"] == pytest.approx(0.2, rel=1e-6)


def test_a_block_without_mid_pixels_adds_nothing_to_mid_even_when_its_sums_overflow():
    from rpx_tasks.metrics import depth

    block = depth._BLOCK
    gt = np.full(2 * block, 0.5)
    pred = gt * 1.1
    pred[0] = 1e200  # the first block: near pixels only, one squared error overflows
    gt[block:], pred[block:] = 2.0, 2.2  # the second block: mid only
    got = depth_metrics(pred.reshape(2, block), gt.reshape(2, block))
    assert got["rmse_near"] == math.inf and got["rmse_mid"] == pytest.approx(0.2, rel=1e-12)
    assert_matches_reference(pred.reshape(2, block), gt.reshape(2, block))


def test_accepts_float64_and_non_contiguous_inputs():
    pred, gt = random_frame(np.random.default_rng(3), (200, 160))
    assert_matches_reference(pred.astype(np.float64).T, gt.astype(np.float64).T)
    assert_matches_reference(pred[::2, ::3], gt[::2, ::3])


def test_threads_get_their_own_buffers():
    frames = [random_frame(np.random.default_rng(s), (480, 640)) for s in range(4)]
    expected = [depth_metrics(p, g) for p, g in frames]
    results: dict[int, list] = {}

    def work(i: int) -> None:
        results[i] = [depth_metrics(*frames[(i + k) % 4]) for k in range(8)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, got in results.items():
        assert got == [expected[(i + k) % 4] for k in range(8)]


def test_metric_info_covers_every_key_once():
    names = [info.name for info in DEPTH_METRIC_INFO]
    assert len(names) == len(set(names))
    assert set(names) == ALL_KEYS
    for info in DEPTH_METRIC_INFO:
        assert info.higher_is_better == info.name.startswith("delta"), info.name
        assert info.description
    assert names[:2] == ["absrel", "rmse"]
