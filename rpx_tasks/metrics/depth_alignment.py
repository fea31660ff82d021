"""Least-squares alignment of a relative depth prediction to the ground truth (reference §1.4).

A relative-depth model (MiDaS / DPT style) predicts depth, or inverse depth, only up to an
unknown scale and shift. Before the depth metrics score it, a scale ``s`` and shift ``t`` are
fitted by ordinary least squares over the valid ground-truth pixels (finite, > 0):

- ``ls_affine``: ``s * pred + t ~ gt`` (depth); the aligned depth is ``s * pred + t``.
- ``ls_disparity``: ``s * pred + t ~ 1 / gt`` (inverse depth: the prediction is read as a
  disparity-like output, as MiDaS / DPT / Depth Anything relative heads emit); the aligned
  depth is ``1 / max(s * pred + t, DISPARITY_FLOOR)``: a non-positive or tiny fitted disparity
  becomes the farthest depth, ``1 / DISPARITY_FLOOR`` metres, instead of a negative or infinite one.

Both functions take arrays of any shape: one (H, W) frame (image depth: one fit per frame) or
stacked (T, H, W) frames (video depth: one fit per clip). A fit is degenerate (no alignment)
when fewer than 2 pixels are valid or the valid predictions are constant (singular normal
equations); the caller then scores the raw prediction and counts the frame as unfitted.
"""

from __future__ import annotations

import numpy as np

from rpx_tasks.errors import MetricError

ALIGNMENT_MODES: tuple[str, ...] = ("none", "ls_affine", "ls_disparity")
# Smallest fitted disparity (1/m) turned back into depth: 1 / DISPARITY_FLOOR = 1000 m.
DISPARITY_FLOOR = 1e-3
# The prediction's spread about its mean, relative to its energy, below which the fit is singular.
_SINGULAR_SPREAD = 1e-12


def _check(pred: np.ndarray, gt: np.ndarray, mode: str) -> None:
    if mode not in ALIGNMENT_MODES:
        raise MetricError(
            f"Unknown depth alignment {mode!r}.",
            hint=f"use one of {list(ALIGNMENT_MODES)}",
            details={"mode": mode},
        )
    if pred.shape != gt.shape:
        raise MetricError(
            f"Depth prediction shape {pred.shape} does not match ground truth shape {gt.shape}.",
            hint="align a prediction resized to its sample's RGB resolution (stacked frames: same T, H, W)",
            details={"pred_shape": pred.shape, "gt_shape": gt.shape},
        )


def fit_alignment(pred: np.ndarray, gt: np.ndarray, mode: str) -> dict[str, float | None]:
    """Fit the scale and shift of ``mode`` that map ``pred`` onto ``gt`` over the valid GT pixels.

    ``pred`` and ``gt`` have the same shape ((H, W) or stacked (T, H, W)); ``gt`` is depth in
    metres, 0 (or non-finite) = invalid; pixels with a non-finite prediction are left out too.
    The least-squares target is ``gt`` for ``ls_affine`` and ``1 / gt`` for ``ls_disparity``;
    the fit is computed in float64 with centred sums: ``s = Σ(x-x̄)(y-ȳ) / Σ(x-x̄)²``, ``t = ȳ - s x̄``.

    Returns ``{"scale": s, "shift": t}``; both None for mode ``none`` and for a degenerate fit
    (fewer than 2 valid pixels, or ``Σ(x-x̄)² <= 1e-12 Σx²``: a constant prediction).
    Raises MetricError for an unknown mode or shapes that differ.
    """
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    _check(pred, gt, mode)
    none: dict[str, float | None] = {"scale": None, "shift": None}
    if mode == "none":
        return none
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(gt) & (gt > 0) & np.isfinite(pred)
    n = int(np.count_nonzero(valid))
    if n < 2:
        return none
    x = pred[valid].astype(np.float64)
    y = gt[valid].astype(np.float64)
    if mode == "ls_disparity":
        y = 1.0 / y
    x_mean = float(x.mean())
    y_mean = float(y.mean())
    dx = x - x_mean
    sxx = float(np.dot(dx, dx))
    if sxx <= _SINGULAR_SPREAD * float(np.dot(x, x)) or sxx == 0.0:
        return none
    scale = float(np.dot(dx, y - y_mean)) / sxx
    return {"scale": scale, "shift": y_mean - scale * x_mean}


def apply_alignment(pred: np.ndarray, scale: float, shift: float, mode: str) -> np.ndarray:
    """The aligned float32 depth in metres of ``pred`` (any shape) for a fitted ``scale`` and ``shift``.

    ``ls_affine``: ``scale * pred + shift``. ``ls_disparity``: ``1 / max(scale * pred + shift,
    DISPARITY_FLOOR)`` (non-positive fitted disparities become ``1 / DISPARITY_FLOOR`` m).
    ``none``: ``pred`` as float32. Computed in float64, returned as float32.
    Raises MetricError for an unknown mode.
    """
    pred = np.asarray(pred)
    _check(pred, pred, mode)
    if mode == "none":
        return pred.astype(np.float32, copy=False)
    aligned = scale * pred.astype(np.float64) + shift
    if mode == "ls_disparity":
        aligned = 1.0 / np.maximum(aligned, DISPARITY_FLOOR)
    return aligned.astype(np.float32)


__all__ = ["ALIGNMENT_MODES", "DISPARITY_FLOOR", "apply_alignment", "fit_alignment"]
