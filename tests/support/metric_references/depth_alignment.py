"""References of ``rpx_tasks.metrics.depth_alignment``: ``fit_alignment`` and ``apply_alignment`` (§1.4).

The fit is written as the textbook normal equations of ``y ~ s x + t``, solved with exactly rounded
sums (``math.fsum``) in a loop over the valid pixels: ``s = (n Σxy - Σx Σy) / (n Σx² - (Σx)²)``,
``t = (Σy - s Σx) / n``; degenerate (None) below 2 valid pixels or for a constant prediction.
"""

from __future__ import annotations

import math

import numpy as np

from tests.support.metric_references.table import SEEDS, Case, MetricRow


def ref_fit_alignment(pred, gt, mode) -> dict[str, float | None]:
    none = {"scale": None, "shift": None}
    if mode == "none":
        return none
    xs, ys = [], []
    for p, g in zip(np.asarray(pred, np.float64).ravel().tolist(), np.asarray(gt, np.float64).ravel().tolist()):
        if math.isfinite(g) and g > 0 and math.isfinite(p):
            xs.append(p)
            ys.append(1.0 / g if mode == "ls_disparity" else g)
    n = len(xs)
    if n < 2 or max(xs) == min(xs):
        return none
    sx, sy = math.fsum(xs), math.fsum(ys)
    sxy = math.fsum(x * y for x, y in zip(xs, ys))
    sxx = math.fsum(x * x for x in xs)
    scale = (n * sxy - sx * sy) / (n * sxx - sx * sx)
    return {"scale": scale, "shift": (sy - scale * sx) / n}


def ref_apply_alignment(pred, scale, shift, mode) -> np.ndarray:
    out = []
    for p in np.asarray(pred, np.float64).ravel().tolist():
        if mode == "none":
            out.append(p)
        elif mode == "ls_affine":
            out.append(scale * p + shift)
        else:
            out.append(1.0 / max(scale * p + shift, 1e-3))
    return np.array(out, np.float32).reshape(np.shape(pred))


def _random(seed: int, mode: str, shape=(24, 32)):
    rng = np.random.default_rng(seed)
    gt = rng.uniform(0.3, 6.0, shape).astype(np.float32)
    gt[rng.random(shape) < 0.2] = 0.0
    pred = rng.uniform(0.1, 3.0, shape).astype(np.float32)
    return pred, gt, mode


def _exact_affine():
    """pred = (gt - 0.5) / 2 on valid pixels: s = 2, t = 0.5 exactly."""
    gt = np.array([[1.0, 2.0, 0.0], [3.0, 4.5, 0.0]], np.float32)
    return (gt - 0.5) / 2, gt, "ls_affine"


def _exact_disparity_stacked():
    """Stacked (T, H, W) frames, pred = 0.25 / gt + 0.1 (one fit for the clip): s = 4, t = -0.4."""
    gt = np.random.default_rng(9).uniform(0.5, 4.0, (3, 5, 6))
    gt[1, 2, :] = 0.0
    return np.where(gt > 0, 0.25 / np.where(gt > 0, gt, 1.0) + 0.1, 7.0), gt, "ls_disparity"


def _hand_two_pixels():
    """Two valid pixels: (1, 2) and (3, 8): s = 3, t = -1."""
    return np.array([1.0, 3.0, 5.0]), np.array([2.0, 8.0, 0.0]), "ls_affine"


def _one_valid():
    return np.array([[1.0, 2.0]]), np.array([[3.0, 0.0]]), "ls_affine"


def _all_invalid():
    return np.ones((4, 4)), np.zeros((4, 4)), "ls_disparity"


def _constant_prediction():
    """A constant prediction: singular normal equations, no fit."""
    return np.full((3, 3), 2.0), np.arange(1.0, 10.0).reshape(3, 3), "ls_affine"


def _nonfinite():
    pred, gt, _ = _random(4, "ls_affine")
    gt[0, :3] = [np.inf, np.nan, 2.0]
    pred[0, 2] = np.nan
    return pred, gt, "ls_affine"


def _empty():
    return np.zeros((0, 3)), np.zeros((0, 3)), "ls_affine"


def _mode_none():
    pred, gt, _ = _random(1, "none")
    return pred, gt, "none"


FIT_CASES = (
    *(Case(f"affine_random{s}", lambda s=s: _random(s, "ls_affine")) for s in SEEDS),
    *(Case(f"disparity_random{s}", lambda s=s: _random(s, "ls_disparity")) for s in SEEDS),
    Case("exact_affine", _exact_affine),
    Case("exact_disparity_stacked", _exact_disparity_stacked),
    Case("hand_two_pixels", _hand_two_pixels),
    Case("one_valid_pixel", _one_valid),
    Case("all_invalid", _all_invalid),
    Case("constant_prediction", _constant_prediction),
    Case("nonfinite", _nonfinite),
    Case("empty", _empty),
    Case("mode_none", _mode_none),
)


def _apply(seed: int, mode: str, scale: float, shift: float):
    pred = np.random.default_rng(seed).uniform(0.0, 3.0, (2, 6, 7)).astype(np.float32)
    return pred, scale, shift, mode


APPLY_CASES = (
    *(Case(f"affine{s}", lambda s=s: _apply(s, "ls_affine", 1.7, -0.3)) for s in SEEDS),
    *(Case(f"disparity{s}", lambda s=s: _apply(s, "ls_disparity", 0.8, 0.05)) for s in SEEDS),
    # Fitted disparities <= 0 (and below the floor) become 1 / 1e-3 = 1000 m.
    Case("disparity_nonpositive", lambda: (np.array([-2.0, 0.0, 0.5, 1.0, 4.0]), 1.0, -1.0, "ls_disparity")),
    Case("none", lambda: _apply(0, "none", 2.0, 1.0)),
    Case("empty", lambda: (np.zeros((0,)), 2.0, 1.0, "ls_affine")),
)

ROWS = (
    MetricRow("depth_alignment:fit_alignment", ref_fit_alignment, FIT_CASES),
    MetricRow("depth_alignment:apply_alignment", ref_apply_alignment, APPLY_CASES),
)
