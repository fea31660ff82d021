"""Video depth metrics of one (scene, phase) clip (reference §1.4 ``video_depth``).

Per frame, on the metric mask (GT valid, finite and ``0.3 < GT < 5.0`` m) with the prediction
clipped to ``[0.3, 5.0]`` m: ``absrel``, ``rmse``, ``silog`` = 100 x sqrt(max(mean e^2 - (mean
e)^2, 0)) with e = ln(pred) - ln(gt), ``delta1..3``; the clip's value is the mean over frames
with at least one pixel in the mask. Optional ``fscore_5cm``: the F-score at 5 cm of the
back-projected prediction against the back-projected GT (fx = fy = 615, cx = 320, cy = 240,
640x480 frames only), bidirectional nearest neighbours, averaged over frames.

Temporal, over consecutive frames t-1, t of the clip (Δ = frame t minus frame t-1 of the
clipped prediction or of the GT), on the pixels in the metric mask of both frames:

- ``tgm`` = mean over pairs of mean | |Δpred| - |Δgt| | over the **static** pixels (|Δgt| < 0.05 m);
- ``tgse`` = mean over pairs of mean (Δpred - Δgt)^2 over every such pixel;

a pair without such pixels is skipped; None (null) when no pair has any.

``video_depth_metrics`` scores a whole clip from stacked arrays; ``ClipDepthScores`` computes the
same numbers streaming, one frame at a time, keeping only the previous frame (the benchmark loop
uses it so that a clip is never held). Both are float64 throughout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from rpx_tasks.contracts.spec import MetricInfo
from rpx_tasks.errors import MetricError

DEPTH_RANGE_M = (0.3, 5.0)
STATIC_THRESHOLD_M = 0.05
FSCORE_THRESHOLD_M = 0.05
# The paper-declared D435 intrinsics the F-score back-projects with (640x480 frames only).
FSCORE_INTRINSICS = (615.0, 615.0, 320.0, 240.0)
FSCORE_FRAME = (480, 640)

FRAME_METRICS: tuple[str, ...] = ("absrel", "rmse", "silog", "delta1", "delta2", "delta3")

VIDEO_DEPTH_METRIC_INFO: tuple[MetricInfo, ...] = (
    MetricInfo("absrel", False, "mean over frames of mean |pred - gt| / gt, 0.3 < gt < 5 m, pred clipped to [0.3, 5]"),
    MetricInfo("rmse", False, "mean over frames of the root mean squared error in metres (same pixels)"),
    MetricInfo("silog", False, "mean over frames of 100 x population std of ln(pred) - ln(gt)"),
    MetricInfo("delta1", True, "mean over frames of the fraction with max(pred/gt, gt/pred) < 1.25"),
    MetricInfo("delta2", True, "mean over frames of the fraction with max(pred/gt, gt/pred) < 1.25^2"),
    MetricInfo("delta3", True, "mean over frames of the fraction with max(pred/gt, gt/pred) < 1.25^3"),
    MetricInfo("tgm", False, "mean over frame pairs of | |Δpred| - |Δgt| | on static pixels (|Δgt| < 5 cm)"),
    MetricInfo("tgse", False, "mean over frame pairs of (Δpred - Δgt)^2 on pixels valid in both frames"),
    MetricInfo("fscore_5cm", True, "mean over frames of the 5 cm F-score of back-projected points (--fscore)"),
)


def _check_frame(pred: np.ndarray, gt: np.ndarray) -> None:
    if pred.shape != gt.shape or pred.ndim != 2:
        raise MetricError(
            f"Video depth frames must be two (H, W) arrays of one shape, got {pred.shape} and {gt.shape}.",
            hint="return one (H, W) depth map per frame at the frame's resolution",
        )


def _metric_mask(gt: np.ndarray) -> np.ndarray:
    """The pixels a frame is scored on: finite GT with ``0.3 < gt < 5.0`` m (0 = invalid is outside), compared
    in float64 as the image-depth metrics do (a float32 0.3 read from 300 mm is just above 0.3)."""
    low, high = DEPTH_RANGE_M
    gt = np.asarray(gt, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.isfinite(gt) & (gt > low) & (gt < high)


def _clipped(pred: np.ndarray) -> np.ndarray:
    """The prediction clipped to the scored range ``[0.3, 5.0]`` m, float64 (NaN stays NaN)."""
    return np.clip(np.asarray(pred, dtype=np.float64), *DEPTH_RANGE_M)


def frame_errors(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> dict[str, float] | None:
    """The per-frame errors (``FRAME_METRICS``) of one clipped prediction on the metric mask, or None
    when the frame has no pixel in the mask. ``mask`` defaults to ``_metric_mask(gt)``.

    Raises MetricError for frames of different shapes.
    """
    _check_frame(pred, gt)
    mask = _metric_mask(gt) if mask is None else mask
    if not mask.any():
        return None
    p = _clipped(pred[mask])
    g = np.asarray(gt[mask], dtype=np.float64)
    diff = p - g
    log_err = np.log(p) - np.log(g)
    ratio = np.maximum(p / g, g / p)
    mean_log = float(log_err.mean())
    return {
        "absrel": float((np.abs(diff) / g).mean()),
        "rmse": math.sqrt(float((diff * diff).mean())),
        "silog": 100.0 * math.sqrt(max(float((log_err * log_err).mean()) - mean_log * mean_log, 0.0)),
        "delta1": float((ratio < 1.25).mean()),
        "delta2": float((ratio < 1.25**2).mean()),
        "delta3": float((ratio < 1.25**3).mean()),
    }


def temporal_pair_errors(
    pred_prev: np.ndarray, gt_prev: np.ndarray, pred: np.ndarray, gt: np.ndarray
) -> tuple[float | None, float | None]:
    """``(tgm, tgse)`` of one pair of consecutive frames (see the module docstring); each None when the
    pair has no pixel to score it on. Predictions are clipped here. Raises MetricError for shape mismatches."""
    _check_frame(pred, gt)
    _check_frame(pred_prev, gt_prev)
    if pred.shape != pred_prev.shape:
        raise MetricError(
            f"Consecutive video depth frames differ in shape: {pred_prev.shape} then {pred.shape}.",
            hint="every frame of a clip has the clip's resolution",
        )
    both = _metric_mask(gt_prev) & _metric_mask(gt)
    if not both.any():
        return None, None
    d_pred = _clipped(pred[both]) - _clipped(pred_prev[both])
    d_gt = np.asarray(gt[both], dtype=np.float64) - np.asarray(gt_prev[both], dtype=np.float64)
    tgse = float(((d_pred - d_gt) ** 2).mean())
    static = np.abs(d_gt) < STATIC_THRESHOLD_M
    tgm = float(np.abs(np.abs(d_pred[static]) - np.abs(d_gt[static])).mean()) if static.any() else None
    return tgm, tgse


def _backproject(depth: np.ndarray, mask: np.ndarray) -> np.ndarray:
    fx, fy, cx, cy = FSCORE_INTRINSICS
    v, u = np.nonzero(mask)
    z = depth[mask]
    return np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], axis=1)


def frame_fscore(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float | None:
    """The 5 cm F-score of one frame: the clipped prediction and the GT on the metric mask, back-projected
    with the D435 intrinsics; precision = share of predicted points with a GT point within 5 cm,
    recall = the converse; F = 2PR / (P + R) (0 when both are 0). None for a frame that is not
    480x640 or has no pixel in the mask. Raises MetricError for frames of different shapes."""
    from scipy.spatial import cKDTree

    _check_frame(pred, gt)
    if pred.shape != FSCORE_FRAME:
        return None
    mask = _metric_mask(gt) if mask is None else mask
    if not mask.any():
        return None
    pred_points = _backproject(_clipped(pred), mask)
    gt_points = _backproject(np.asarray(gt, dtype=np.float64), mask)
    precision = float((cKDTree(gt_points).query(pred_points, k=1)[0] < FSCORE_THRESHOLD_M).mean())
    recall = float((cKDTree(pred_points).query(gt_points, k=1)[0] < FSCORE_THRESHOLD_M).mean())
    return 0.0 if precision + recall == 0 else 2.0 * precision * recall / (precision + recall)


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


@dataclass
class ClipDepthScores:
    """The clip's metrics, computed one frame at a time in clip order; only the previous frame is kept.

    ``add(pred, gt)`` per frame, then ``result()``; ``fscore`` adds ``fscore_5cm`` (else None).
    """

    fscore: bool = False
    _frames: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in FRAME_METRICS})
    _tgm: list[float] = field(default_factory=list)
    _tgse: list[float] = field(default_factory=list)
    _fscores: list[float] = field(default_factory=list)
    _previous: tuple[np.ndarray, np.ndarray] | None = None
    frames: int = 0

    def add(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Fold the next frame of the clip in. Raises MetricError for mismatched shapes."""
        mask = _metric_mask(gt)
        errors = frame_errors(pred, gt, mask)
        if errors is not None:
            for name, value in errors.items():
                self._frames[name].append(value)
        if self.fscore:
            value = frame_fscore(pred, gt, mask)
            if value is not None:
                self._fscores.append(value)
        if self._previous is not None:
            tgm, tgse = temporal_pair_errors(*self._previous, pred, gt)
            if tgm is not None:
                self._tgm.append(tgm)
            if tgse is not None:
                self._tgse.append(tgse)
        self._previous = (pred, gt)
        self.frames += 1

    def result(self) -> dict[str, float | None]:
        """Every metric of ``VIDEO_DEPTH_METRIC_INFO``: float, or None when undefined for the clip."""
        metrics: dict[str, float | None] = {name: _mean(values) for name, values in self._frames.items()}
        metrics["tgm"] = _mean(self._tgm)
        metrics["tgse"] = _mean(self._tgse)
        metrics["fscore_5cm"] = _mean(self._fscores) if self.fscore else None
        return metrics


def video_depth_metrics(pred_seq: np.ndarray, gt_seq: np.ndarray, *, fscore: bool = False) -> dict[str, float | None]:
    """Every video depth metric of one clip from its stacked (T, H, W) prediction and GT (metres, GT 0 =
    invalid). Raises MetricError when the two stacks differ in shape or are not (T, H, W)."""
    pred_seq = np.asarray(pred_seq)
    gt_seq = np.asarray(gt_seq)
    if pred_seq.shape != gt_seq.shape or pred_seq.ndim != 3:
        raise MetricError(
            f"A clip's prediction {pred_seq.shape} and GT {gt_seq.shape} must be two (T, H, W) stacks of one shape.",
            hint="return one depth map per frame of the clip, at the frame's resolution",
        )
    scores = ClipDepthScores(fscore=fscore)
    for pred, gt in zip(pred_seq, gt_seq):
        scores.add(pred, gt)
    return scores.result()
