"""Per-frame metric depth errors (reference §1.4): headline, log-space and range-binned; and
the Temporal Stability score of a pair of consecutive depth maps (``depth_pair_score``, §8.3).

``depth_metrics`` runs once per 640x480 frame in the benchmark loop, so it is written for
speed: the frame is walked in blocks of ``_BLOCK`` pixels and every temporary lives in a
per-thread set of preallocated buffers (fresh multi-megabyte temporaries cost more in page
faults than the arithmetic). Invalid pixels are overwritten with a zero-error stand-in
instead of being packed out (by arithmetic where the inputs allow), one logarithm is taken
per pixel, and the range bins are summed as dot products with their 0/1 masks (near and
far; mid is the log-mask total minus both, or summed directly where that difference cannot
be trusted), which are several times faster than masked reductions on scattered holes; a
non-finite sum is redone as a masked reduction. Per-block
sums and counts add exactly; per-bin means and second moments of the log error are merged
with Chan's pairwise update (a block where a bin is empty adds nothing), all in float64.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from rpx_tasks.contracts.spec import MetricInfo
from rpx_tasks.errors import MetricError

PRED_FLOOR = 1e-6
LOG_RANGE_M = (0.3, 5.0)
# Name and [low, high) GT range in metres of each bin; together they cover LOG_RANGE_M.
RANGE_BINS: tuple[tuple[str, float, float], ...] = (
    ("near", 0.3, 1.0),
    ("mid", 1.0, 2.5),
    ("far", 2.5, 5.0),
)
MIN_BIN_PIXELS = 100
BIN_METRICS: tuple[str, ...] = ("absrel", "rmse", "rmselog", "silog", "delta1")

_BIN_DESCRIPTIONS = {
    "absrel": "mean |pred - gt| / gt",
    "rmse": "root mean squared error in metres",
    "rmselog": "root mean squared ln(pred) - ln(gt)",
    "silog": "100 x population std of ln(pred) - ln(gt)",
    "delta1": "fraction of pixels with max(pred/gt, gt/pred) < 1.25",
}

DEPTH_METRIC_INFO: tuple[MetricInfo, ...] = (
    MetricInfo("absrel", False, "mean |pred - gt| / gt over pixels with gt > 0 (pred clipped at 1e-6)"),
    MetricInfo("rmse", False, "root mean squared error in metres over pixels with gt > 0"),
    MetricInfo("delta1", True, "fraction of gt > 0 pixels with max(pred/gt, gt/pred) < 1.25"),
    MetricInfo("delta2", True, "fraction of gt > 0 pixels with max(pred/gt, gt/pred) < 1.25^2"),
    MetricInfo("delta3", True, "fraction of gt > 0 pixels with max(pred/gt, gt/pred) < 1.25^3"),
    MetricInfo("rmselog", False, "root mean squared ln(pred) - ln(gt) over 0.3 < gt < 5 m, finite pred > 0"),
    MetricInfo("silog", False, "100 x population std of ln(pred) - ln(gt) over 0.3 < gt < 5 m, finite pred > 0"),
) + tuple(
    MetricInfo(
        f"{metric}_{name}",
        metric == "delta1",
        f"{_BIN_DESCRIPTIONS[metric]}, gt in [{low}, {high}) m; null below {MIN_BIN_PIXELS} pixels",
    )
    for name, low, high in RANGE_BINS
    for metric in BIN_METRICS
)

_BLOCK = 16384  # measured fastest on VGA frames: the block's buffers stay in the core's cache
# Relative spread below which a bin's one-pass second moment is recomputed in two passes.
_ONE_PASS_MIN_SPREAD = 1e-5
_N_BINS = len(RANGE_BINS)
_F64_BUFFERS = ("g", "p", "p_clip", "ratio", "ratio_clip", "rel", "sq", "max_ratio", "log_sq", "weights", "mask_f")
_BOOL_BUFFERS = ("valid", "within1", "log_mask", "near", "far", "tmp_a")
_workspaces = threading.local()


def _workspace() -> dict[str, np.ndarray]:
    ws = getattr(_workspaces, "buffers", None)
    if ws is None:
        ws = {name: np.empty(_BLOCK, np.float64) for name in _F64_BUFFERS}
        ws.update({name: np.empty(_BLOCK, np.bool_) for name in _BOOL_BUFFERS})
        _workspaces.buffers = ws
    return ws


class _Totals:
    """Running sums over the blocks of one frame."""

    def __init__(self) -> None:
        self.n_valid = 0
        self.rel = 0.0
        self.sq = 0.0
        self.within = [0, 0, 0]
        self.bin_n = np.zeros(_N_BINS)
        self.bin_rel = np.zeros(_N_BINS)
        self.bin_sq = np.zeros(_N_BINS)
        self.bin_within1 = np.zeros(_N_BINS)
        self.bin_log_mean = np.zeros(_N_BINS)
        self.bin_log_m2 = np.zeros(_N_BINS)

    def merge_log_moments(self, n: np.ndarray, mean: np.ndarray, m2: np.ndarray) -> None:
        total = self.bin_n + n
        safe = np.maximum(total, 1.0)
        delta = mean - self.bin_log_mean
        self.bin_log_mean = self.bin_log_mean + delta * n / safe
        self.bin_log_m2 = self.bin_log_m2 + m2 + delta * delta * self.bin_n * n / safe
        self.bin_n = total


def depth_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float | None]:
    """Score one predicted depth map against its ground truth.

    ``pred`` and ``gt`` are (H, W) depth maps in metres; ``gt == 0`` marks an invalid pixel.
    Returns a dict with every name of ``DEPTH_METRIC_INFO``:

    - ``absrel, rmse, delta1..3`` over ``gt > 0`` with the prediction clipped at 1e-6; a frame
      without such a pixel gets the sentinel (errors 0.0, deltas 1.0).
    - ``rmselog, silog`` over the log mask (finite gt in (0.3, 5.0) m, finite pred > 0);
      0.0 and 0.0 when the mask is empty.
    - ``<metric>_<near|mid|far>`` over the log mask restricted to gt in the bin's [low, high)
      range: the log terms use the prediction itself, absrel/rmse/delta1 the clipped one
      (identical unless 0 < pred < 1e-6). None when the bin holds fewer than 100 pixels.

    A non-finite prediction on a ``gt > 0`` pixel makes absrel and rmse NaN or inf (the
    aggregator counts those); the log and bin metrics never include such a pixel.

    Raises MetricError when either input is not 2-D or the shapes differ.
    """
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.shape != gt.shape:
        raise MetricError(
            f"Depth prediction shape {pred.shape} does not match ground truth shape {gt.shape}.",
            hint="The model's output adapter should resize predictions back to the sample RGB resolution.",
            details={"pred_shape": pred.shape, "gt_shape": gt.shape},
        )
    if gt.ndim != 2:
        raise MetricError(
            f"Depth maps must be 2-D (H, W); got shape {gt.shape}.",
            hint="Pass one (H, W) depth map in metres per sample, not a batch or an RGB image.",
            details={"pred_shape": pred.shape, "gt_shape": gt.shape},
        )

    gt_flat = np.ascontiguousarray(gt).reshape(-1)
    pred_flat = np.ascontiguousarray(pred).reshape(-1)
    ws = _workspace()
    totals = _Totals()
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for start in range(0, gt_flat.size, _BLOCK):
            _accumulate_block(gt_flat[start : start + _BLOCK], pred_flat[start : start + _BLOCK], ws, totals)
    return _finish(totals)


def _accumulate_block(gt: np.ndarray, pred: np.ndarray, ws: dict[str, np.ndarray], totals: _Totals) -> None:
    """Add one block of pixels to ``totals``.

    Longer than the house limit on purpose: this is the per-frame hot loop (in-place ufuncs into
    preallocated work buffers, no temporaries), and it is checked against the plain float64
    reference in tests/test_metric_references.py and tests/test_depth_metrics.py.
    """
    size = gt.size
    valid = np.greater(gt, 0, out=ws["valid"][:size])
    n_valid = int(np.count_nonzero(valid))
    if n_valid == 0:
        return
    g, p = ws["g"][:size], ws["p"][:size]
    np.copyto(g, gt)
    np.copyto(p, pred)
    tmp_a = ws["tmp_a"][:size]
    n_invalid = size - n_valid
    if n_invalid:
        # Invalid pixels become a perfect 1 m prediction of 1 m (zero error, ratio 1) and are
        # subtracted from the counts: no packing of the valid pixels.
        _neutralise_invalid(g, p, valid, ws["weights"][:size], tmp_a)

    ratio = np.divide(p, g, out=ws["ratio"][:size])
    if np.count_nonzero(np.less(p, PRED_FLOOR, out=tmp_a)):
        p_clip = np.maximum(p, PRED_FLOOR, out=ws["p_clip"][:size])
        ratio_clip = np.divide(p_clip, g, out=ws["ratio_clip"][:size])
    else:
        p_clip, ratio_clip = p, ratio

    rel = np.subtract(ratio_clip, 1.0, out=ws["rel"][:size])
    np.abs(rel, out=rel)
    sq = np.subtract(p_clip, g, out=ws["sq"][:size])
    np.multiply(sq, sq, out=sq)
    max_ratio = np.divide(g, p_clip, out=ws["max_ratio"][:size])
    np.maximum(max_ratio, ratio_clip, out=max_ratio)
    within1 = np.less(max_ratio, 1.25, out=ws["within1"][:size])
    totals_rel = float(rel.sum())
    totals_sq = float(sq.sum())
    within1_valid = int(np.count_nonzero(within1)) - n_invalid
    totals.n_valid += n_valid
    totals.rel += totals_rel
    totals.sq += totals_sq
    totals.within[0] += within1_valid
    totals.within[1] += int(np.count_nonzero(np.less(max_ratio, 1.25**2, out=tmp_a))) - n_invalid
    totals.within[2] += int(np.count_nonzero(np.less(max_ratio, 1.25**3, out=tmp_a))) - n_invalid

    log_mask = np.greater(g, LOG_RANGE_M[0], out=ws["log_mask"][:size])
    log_mask &= np.less(g, LOG_RANGE_M[1], out=tmp_a)
    log_mask &= np.greater(p, 0.0, out=tmp_a)
    log_mask &= np.less(p, np.inf, out=tmp_a)
    if n_invalid:
        log_mask &= valid
    n_log = int(np.count_nonzero(log_mask))
    if n_log == 0:
        return
    # ln p - ln g as one log of the unclipped ratio, in place: the ratio is no longer needed.
    log_err = np.log(ratio, out=ratio)
    log_sq = np.multiply(log_err, log_err, out=ws["log_sq"][:size])

    near = np.less(g, RANGE_BINS[0][2], out=ws["near"][:size])
    near &= log_mask
    far = np.greater_equal(g, RANGE_BINS[2][1], out=ws["far"][:size])
    far &= log_mask
    per_pixel = (rel, sq, log_err, log_sq)
    mask_f = ws["mask_f"][:size]
    if n_log == n_valid:
        # Every valid pixel is in the log mask and invalid ones were neutralised to zero
        # error, so plain sums over the block are the sums over the log mask.
        log_sums = [totals_rel, totals_sq, float(log_err.sum()), float(log_sq.sum())]
        log_within1 = within1_valid
    else:
        log_sums = _masked_sums(per_pixel, log_mask, n_log, mask_f)
        log_within1 = _masked_count(within1, log_mask, n_log, tmp_a)
    n_near, n_far = int(np.count_nonzero(near)), int(np.count_nonzero(far))
    near_sums = _masked_sums(per_pixel, near, n_near, mask_f)
    near_within1 = _masked_count(within1, near, n_near, tmp_a)
    far_sums = _masked_sums(per_pixel, far, n_far, mask_f)
    far_within1 = _masked_count(within1, far, n_far, tmp_a)
    n_mid = n_log - n_near - n_far
    mid_sums = _mid_sums(per_pixel, log_sums, near_sums, far_sums, n_mid, (log_mask, near, far), mask_f, tmp_a)
    stats = np.array(
        [
            [n_near, *near_sums, near_within1],
            [n_mid, *mid_sums, log_within1 - near_within1 - far_within1],
            [n_far, *far_sums, far_within1],
        ]
    )
    counts = stats[:, 0]
    safe_counts = np.maximum(counts, 1.0)
    means = stats[:, 3] / safe_counts
    m2 = stats[:, 4] - counts * means * means
    # One-pass second moments are exact enough unless the bin's spread is tiny next to the
    # block's log-error energy (e.g. a pure scale offset); redo those bins in two passes.
    for i in np.flatnonzero((counts > 0) & (m2 < _ONE_PASS_MIN_SPREAD * log_sums[3])):
        in_bin = (near, None, far)[i]
        if in_bin is None:
            in_bin = np.logical_xor(log_mask, near, out=tmp_a)
            in_bin ^= far
        dev = np.subtract(log_err, means[i], out=log_sq)
        np.multiply(dev, dev, out=dev)
        m2[i] = np.add.reduce(dev, where=in_bin)
    totals.bin_rel += stats[:, 1]
    totals.bin_sq += stats[:, 2]
    totals.bin_within1 += stats[:, 5]
    # An empty bin's derived sums are rounding residue, not a spread: it adds nothing.
    totals.merge_log_moments(counts, means, np.where(counts > 0, np.maximum(m2, 0.0), 0.0))


# Above this ratio of a block's total to the mid bin's share of it (rel, sq, log_sq: sums of non-negative
# terms), the difference total - near - far has lost more than ~1e-10 of its value to rounding.
_MAX_CANCELLATION = 1e6


def _mid_sums(
    per_pixel: tuple[np.ndarray, ...],
    log_sums: list[float],
    near_sums: list[float],
    far_sums: list[float],
    n_mid: int,
    masks: tuple[np.ndarray, np.ndarray, np.ndarray],
    mask_f: np.ndarray,
    scratch: np.ndarray,
) -> list[float]:
    """The mid bin's sums of ``per_pixel`` (rel, sq, log_err, log_sq): the bins partition the log mask, so
    mid is what near and far leave; summed directly where that difference cannot be trusted: a sum that is
    not finite (a squared error that overflows), or near and far dwarfing mid (a huge finite prediction
    there). An empty mid bin sums to zero, whatever the residue."""
    if n_mid == 0:
        return [0.0] * len(per_pixel)
    mid_sums = [a - b - c for a, b, c in zip(log_sums, near_sums, far_sums)]
    trusted = all(math.isfinite(x) for x in mid_sums) and all(
        mid_sums[i] > 0.0 and log_sums[i] <= _MAX_CANCELLATION * mid_sums[i] for i in (0, 1, 3)
    )
    if trusted:
        return mid_sums
    log_mask, near, far = masks
    mid = np.logical_xor(log_mask, near, out=scratch)
    mid ^= far
    return _masked_sums(per_pixel, mid, n_mid, mask_f)


def _neutralise_invalid(
    g: np.ndarray, p: np.ndarray, valid: np.ndarray, weights: np.ndarray, scratch: np.ndarray
) -> None:
    """Set ``g`` and ``p`` to 1.0 on the pixels where ``valid`` is False, in place.

    Where every invalid ground truth is a zero and every prediction is finite (decoded depth maps
    and real models' outputs), by arithmetic: g + 1 and p * 0 + 1 there, exactly 1.0 (masked
    copies are several times slower on scattered holes); otherwise by masked copies.
    """
    if g.min() >= 0.0 and np.isfinite(p.max()) and np.isfinite(p.min()):  # NaN anywhere fails these too
        np.copyto(weights, valid)  # 1.0 valid, 0.0 invalid
        np.multiply(p, weights, out=p)
        np.subtract(1.0, weights, out=weights)  # 1.0 invalid
        np.add(p, weights, out=p)
        np.add(g, weights, out=g)  # invalid ground truth is +-0 here
        return
    invalid = np.logical_not(valid, out=scratch)
    np.copyto(g, 1.0, where=invalid)
    np.copyto(p, 1.0, where=invalid)


def _masked_sums(per_pixel: tuple[np.ndarray, ...], mask: np.ndarray, count: int, mask_f: np.ndarray) -> list[float]:
    """The sum of each array of ``per_pixel`` over ``mask`` (``count`` pixels), in float64.

    A dot product with the mask as 0.0/1.0 when the array is finite everywhere (then exact: x * 0
    is 0); a non-finite result (NaN or infinity outside or inside the mask) is summed again by a
    masked reduction, which never reads the pixels outside the mask. The dot product is numpy's own
    ``einsum`` loop: ``np.dot`` calls OpenBLAS, which runs vectors over 10,000 elements on all cores
    and leaves its threads spinning, doubling the CPU time of the run beside the benchmark loop.
    """
    if count == 0:
        return [0.0] * len(per_pixel)
    np.copyto(mask_f, mask)
    sums = []
    for values in per_pixel:
        total = float(np.einsum("i,i->", values, mask_f))  # not np.dot: BLAS threads would spin beside the loop
        if not math.isfinite(total):
            total = float(np.add.reduce(values, where=mask))
        sums.append(total)
    return sums


def _masked_count(flags: np.ndarray, mask: np.ndarray, count: int, scratch: np.ndarray) -> int:
    """How many of the ``count`` pixels of ``mask`` have ``flags`` set."""
    return int(np.count_nonzero(np.logical_and(flags, mask, out=scratch))) if count else 0


def _finish(totals: _Totals) -> dict[str, float | None]:
    n = totals.n_valid
    if n == 0:
        result: dict[str, float | None] = {"absrel": 0.0, "rmse": 0.0, "delta1": 1.0, "delta2": 1.0, "delta3": 1.0}
    else:
        result = {
            "absrel": totals.rel / n,
            "rmse": math.sqrt(totals.sq / n),
            "delta1": totals.within[0] / n,
            "delta2": totals.within[1] / n,
            "delta3": totals.within[2] / n,
        }

    counts, means, m2 = totals.bin_n, totals.bin_log_mean, totals.bin_log_m2
    n_log = float(counts.sum())
    if n_log == 0:
        result["rmselog"] = 0.0
        result["silog"] = 0.0
    else:
        mean = float((counts * means).sum() / n_log)
        total_m2 = float(m2.sum() + (counts * (means - mean) ** 2).sum())
        result["rmselog"] = math.sqrt(total_m2 / n_log + mean * mean)
        result["silog"] = 100.0 * math.sqrt(total_m2 / n_log)

    for i, (name, _, _) in enumerate(RANGE_BINS):
        count = float(counts[i])
        if count < MIN_BIN_PIXELS:
            result.update({f"{metric}_{name}": None for metric in BIN_METRICS})
            continue
        result[f"absrel_{name}"] = float(totals.bin_rel[i] / count)
        result[f"rmse_{name}"] = math.sqrt(totals.bin_sq[i] / count)
        result[f"rmselog_{name}"] = math.sqrt(m2[i] / count + means[i] ** 2)
        result[f"silog_{name}"] = 100.0 * math.sqrt(m2[i] / count)
        result[f"delta1_{name}"] = float(totals.bin_within1[i] / count)
    return result


def depth_pair_score(depth_t: np.ndarray, depth_next_aligned: np.ndarray) -> float:
    """Return the TS score of one frame pair (reference §8.3), in [0, 1].

    ``depth_t`` and ``depth_next_aligned`` are (H, W) arrays. Valid pixels are finite and > 0
    in both maps; none valid gives 1.0. Otherwise max(0, 1 - L1 / range) with L1 the mean
    |d_t - d_next| over valid pixels (each difference in the maps' dtype, the sum in float64)
    and range = max(max d_t - min d_t over valid pixels, 1e-3). Raises MetricError when the
    shapes differ.

    Two float32 maps (temporal stability's, once per frame pair) take ``_float32_pair_sums``: the
    same sums in row blocks through reused buffers; other dtypes the plain masked reductions.
    """
    if depth_t.shape != depth_next_aligned.shape:
        raise MetricError(
            f"Consecutive depth maps differ in shape: {depth_t.shape} vs {depth_next_aligned.shape}.",
            hint="Every prediction of a clip must have the resolution of its sample's RGB frame.",
        )
    if _plain_float32_rows(depth_t) and _plain_float32_rows(depth_next_aligned):
        n, l1_sum, hi, lo = _float32_pair_sums(depth_t, depth_next_aligned)
    else:
        n, l1_sum, hi, lo = _masked_pair_sums(depth_t, depth_next_aligned)
    if n == 0:
        return 1.0
    return max(0.0, 1.0 - (l1_sum / n) / max(hi - lo, 1e-3))


def _plain_float32_rows(depth: np.ndarray) -> bool:
    """Whether ``depth`` is an (H, W) native float32 array whose rows are contiguous (its view as uint32 works)."""
    return depth.ndim == 2 and depth.dtype == np.float32 and depth.strides[1] == depth.itemsize


def _masked_pair_sums(depth_t: np.ndarray, depth_next: np.ndarray) -> tuple[int, float, float, float]:
    """(valid pixels, sum of |d_t - d_next| over them in float64, max and min of d_t over them)."""
    with np.errstate(invalid="ignore"):
        valid = (depth_t > 0) & (depth_t < np.inf) & (depth_next > 0) & (depth_next < np.inf)
        n = int(np.count_nonzero(valid))
        if n == 0:
            return 0, 0.0, 0.0, 0.0
        l1_sum = float(np.add.reduce(np.abs(depth_t - depth_next), axis=None, where=valid, dtype=np.float64))
    hi = float(np.maximum.reduce(depth_t, axis=None, where=valid, initial=-np.inf))
    lo = float(np.minimum.reduce(depth_t, axis=None, where=valid, initial=np.inf))
    return n, l1_sum, hi, lo


# A positive finite float32 is a uint32 bit pattern in [1, 0x7F7FFFFF], ordered as the floats: zero,
# negatives (sign bit), infinity and NaN all fall outside once 1 is subtracted (0 wraps around).
_F32_LAST_FINITE = np.uint32(0x7F7FFFFF - 1)
_PAIR_BLOCK_PIXELS = 65536
_pair_workspaces = threading.local()


def _pair_workspace(width: int) -> tuple[int, dict[str, np.ndarray]]:
    rows = max(1, _PAIR_BLOCK_PIXELS // max(width, 1))
    ws = getattr(_pair_workspaces, "buffers", None)
    if ws is None or ws["diff"].shape != (rows, width):
        ws = {
            "bits_t": np.empty((rows, width), np.uint32),
            "bits_next": np.empty((rows, width), np.uint32),
            "valid": np.empty((rows, width), np.bool_),
            "diff": np.empty((rows, width), np.float32),
        }
        _pair_workspaces.buffers = ws
    return rows, ws


def _float32_pair_sums(depth_t: np.ndarray, depth_next: np.ndarray) -> tuple[int, float, float, float]:
    """``_masked_pair_sums`` of two (H, W) float32 maps (views with strided rows too), a block of rows at a
    time: validity from the bit patterns (one comparison for both maps), the extremes of d_t as the largest
    and smallest valid bit pattern. Each block's float64 sum is added in order."""
    rows, ws = _pair_workspace(depth_t.shape[1])
    n, l1_sum, hi, lo = 0, 0.0, 0, 0xFFFFFFFF
    with np.errstate(invalid="ignore", over="ignore"):
        for start in range(0, depth_t.shape[0], rows):
            block_t, block_next = depth_t[start : start + rows], depth_next[start : start + rows]
            k = block_t.shape[0]
            bits_t, bits_next = ws["bits_t"][:k], ws["bits_next"][:k]
            np.subtract(block_t.view(np.uint32), 1, out=bits_t)
            np.subtract(block_next.view(np.uint32), 1, out=bits_next)
            np.maximum(bits_t, bits_next, out=bits_next)
            valid = np.less_equal(bits_next, _F32_LAST_FINITE, out=ws["valid"][:k])
            count = int(np.count_nonzero(valid))
            if count == 0:
                continue
            diff = np.subtract(block_t, block_next, out=ws["diff"][:k])
            np.abs(diff, out=diff)
            if count < valid.size:
                np.logical_not(valid, out=valid)
                np.copyto(diff, 0.0, where=valid)  # the invalid pixels
                np.copyto(bits_t, 0xFFFFFFFF, where=valid)  # never the smallest
                block_low = int(bits_t.min())
                np.copyto(bits_t, 0, where=valid)  # never the largest
                block_high = int(bits_t.max())
            else:
                block_low, block_high = int(bits_t.min()), int(bits_t.max())
            n += count
            l1_sum += float(np.add.reduce(diff, axis=None, dtype=np.float64))
            lo, hi = min(lo, block_low), max(hi, block_high)
    if n == 0:
        return 0, 0.0, 0.0, 0.0
    # bits_t held the bit patterns minus 1.
    extremes = np.array([hi + 1, lo + 1], np.uint32).view(np.float32)
    return n, l1_sum, float(extremes[0]), float(extremes[1])


__all__ = ["DEPTH_METRIC_INFO", "depth_metrics", "depth_pair_score"]
