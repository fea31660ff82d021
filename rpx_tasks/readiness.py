"""Deployment-readiness scores that stream over a run (reference §8.1-§8.3).

- ``PhaseScores``: Weighted Phase Score (WPS) and State-Transition Robustness (STR) of one
  metric, fed one per-sample value at a time.
- ``DepthTemporalStability`` / ``SegmentationTemporalStability``: Temporal Stability (TS) of
  depth maps / label maps, pairing only consecutive frames of the same (scene, phase) clip and
  holding just the previous frame (§8.3).
- ``GeometricCoherence``: Stack-level Geometric Coherence (SGC, §8.4), the boundary F-score
  of predicted masks against depth edges, streamed one sample at a time.

Where upstream counts a missing phase as 0.0, these return None ("not defined"), and
every delta is labelled "worse"/"better" by the metric's direction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Callable

import numpy as np
from PIL import Image

from rpx_tasks.constants import ESD_WEIGHTS, PHASES
from rpx_tasks.errors import MetricError
from rpx_tasks.metrics.segmentation import label_pair_score
from rpx_tasks.sample import Sample

# ----------------------------------------------------------------------------- WPS / STR


def esd_weighted_score(difficulty_means: Mapping[str, float | None]) -> float | None:
    """Return the ESD-weighted mean of per-difficulty means (reference §8.1).

    ``difficulty_means`` maps ``easy|medium|hard`` to that bucket's mean, or None when the
    bucket is empty. Result: sum(w_d * M_d) / sum(w_d) over the present buckets, with
    w = ``ESD_WEIGHTS``; None when no bucket is present. Raises MetricError for a
    difficulty that is not one of ``ESD_WEIGHTS``.
    """
    weighted, weights = 0.0, 0.0
    for difficulty, mean in difficulty_means.items():
        weight = _esd_weight(difficulty)
        if mean is not None:
            weighted += weight * mean
            weights += weight
    return weighted / weights if weights else None


def _esd_weight(difficulty: str) -> float:
    try:
        return ESD_WEIGHTS[difficulty]
    except (KeyError, TypeError):
        raise MetricError(
            f"Unknown difficulty {difficulty!r}.",
            hint=f"Difficulties are {', '.join(ESD_WEIGHTS)}; check the manifest's 'difficulty' field.",
        ) from None


def _effect(delta: float | None, higher_is_better: bool) -> str | None:
    if delta is None:
        return None
    if delta == 0:
        return "unchanged"
    return "better" if (delta > 0) == higher_is_better else "worse"


def _direction(higher_is_better: bool) -> str:
    return "higher_is_better" if higher_is_better else "lower_is_better"


def _difference(later: float | None, earlier: float | None) -> float | None:
    return None if later is None or earlier is None else later - earlier


class PhaseScores:
    """Streams the per-sample values of one metric and reduces them to WPS and STR.

    Only a running sum and count per (phase, difficulty) are kept. Attributes:
    ``count`` (values used) and ``non_finite`` (NaN/inf values seen on samples with a phase
    and difficulty; they are left out of every mean, never averaged in).
    """

    def __init__(self) -> None:
        self._sums: dict[tuple[str, str], float] = {}
        self._counts: dict[tuple[str, str], int] = {}
        self.count = 0
        self.non_finite = 0

    def add(self, phase: str | None, difficulty: str | None, value: float | None) -> None:
        """Record one sample's value; returns None.

        Samples without a phase, a difficulty or a value are skipped; a NaN/inf value is
        skipped and counted in ``non_finite``. Raises MetricError for a phase that is not
        ``clutter|interaction|clean`` or a difficulty that is not ``easy|medium|hard``.
        """
        if phase is None or difficulty is None or value is None:
            return
        if phase not in PHASES:
            raise MetricError(
                f"Unknown phase {phase!r}.",
                hint=f"Phases are {', '.join(PHASES)}; check the manifest's 'phase' field.",
            )
        _esd_weight(difficulty)
        value = float(value)
        if not math.isfinite(value):
            self.non_finite += 1
            return
        key = (phase, difficulty)
        self._sums[key] = self._sums.get(key, 0.0) + value
        self._counts[key] = self._counts.get(key, 0) + 1
        self.count += 1

    def phase_scores(self) -> dict[str, float | None]:
        """Return ``{phase: S_p}`` for the three phases: the ESD-weighted mean of the
        per-difficulty means, None for a phase without samples. Raises nothing."""
        scores: dict[str, float | None] = {}
        for phase in PHASES:
            means = {
                difficulty: self._sums[(phase, difficulty)] / self._counts[(phase, difficulty)]
                for difficulty in ESD_WEIGHTS
                if (phase, difficulty) in self._counts
            }
            scores[phase] = esd_weighted_score(means)
        return scores

    def wps(self, higher_is_better: bool) -> dict[str, Any]:
        """Return the Weighted Phase Score block of this metric (reference §8.1).

        Keys: ``s_clutter, s_interaction, s_clean`` (None for a phase without samples),
        ``s_overall`` (mean over the phases that have samples; None if none),
        ``delta_int`` = S_I - S_C and ``delta_rec`` = S_L - S_I (None when a phase they need
        is missing), ``direction`` (``higher_is_better`` or ``lower_is_better``) and
        ``interaction_effect`` / ``recovery_effect`` ("worse", "better", "unchanged", or
        None with the delta), judged by the metric's direction. Raises nothing.
        """
        scores = self.phase_scores()
        clutter, interaction, clean = (scores[p] for p in PHASES)
        present = [s for s in scores.values() if s is not None]
        delta_int = _difference(interaction, clutter)
        delta_rec = _difference(clean, interaction)
        return {
            "s_clutter": clutter,
            "s_interaction": interaction,
            "s_clean": clean,
            "s_overall": sum(present) / len(present) if present else None,
            "delta_int": delta_int,
            "delta_rec": delta_rec,
            "direction": _direction(higher_is_better),
            "interaction_effect": _effect(delta_int, higher_is_better),
            "recovery_effect": _effect(delta_rec, higher_is_better),
        }

    def str_block(self, higher_is_better: bool | None = None) -> dict[str, Any]:
        """Return the State-Transition Robustness block (reference §8.2) from the WPS
        phase scores: ``str_c_to_i`` = M_I - M_C, ``str_i_to_l`` = M_L - M_I and
        ``metric_clutter|interaction|clean``; a missing phase and the deltas that need it
        are None, not 0.0. Given the metric's direction, the block also carries
        ``direction``, ``c_to_i_effect`` and ``i_to_l_effect`` (words as in ``wps``).
        Raises nothing."""
        scores = self.phase_scores()
        clutter, interaction, clean = (scores[p] for p in PHASES)
        block: dict[str, Any] = {
            "str_c_to_i": _difference(interaction, clutter),
            "str_i_to_l": _difference(clean, interaction),
            "metric_clutter": clutter,
            "metric_interaction": interaction,
            "metric_clean": clean,
        }
        if higher_is_better is not None:
            block["direction"] = _direction(higher_is_better)
            block["c_to_i_effect"] = _effect(block["str_c_to_i"], higher_is_better)
            block["i_to_l_effect"] = _effect(block["str_i_to_l"], higher_is_better)
        return block


# ----------------------------------------------------------------------------- TS (depth)


def inplane_rotation_deg(pose_t: np.ndarray | None, pose_next: np.ndarray | None) -> float | None:
    """Return the in-plane rotation between two camera-to-world poses, in degrees.

    With R the rotation block of inv(pose_t) @ pose_next, the angle is
    atan2(R[1, 0], R[0, 0]) (reference §8.3). Returns None when either pose is missing,
    has a non-finite entry or is singular. Raises MetricError when a pose is not 4x4.
    """
    first, second = _usable_pose(pose_t), _usable_pose(pose_next)
    if first is None or second is None:
        return None
    try:
        relative = np.linalg.solve(first, second)  # inv(P_t) @ P_next
    except np.linalg.LinAlgError:
        return None
    return math.degrees(math.atan2(relative[1, 0], relative[0, 0]))


def _usable_pose(pose: np.ndarray | None) -> np.ndarray | None:
    """The pose as a float64 4x4 matrix, or None when missing or not finite."""
    if pose is None:
        return None
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape != (4, 4):
        raise MetricError(
            f"Camera pose must be a 4x4 matrix; got shape {pose.shape}.",
            hint="Poses are camera-to-world homogeneous transforms; check the pose loader.",
        )
    return pose if np.isfinite(pose).all() else None


def rotate_about_centre(depth: np.ndarray, angle_deg: float) -> np.ndarray:
    """Return ``depth`` rotated by ``angle_deg`` about (w/2, h/2), as float32 (H, W).

    Same mapping as OpenCV's ``warpAffine(depth, getRotationMatrix2D((w/2, h/2), angle, 1),
    (w, h))`` with bilinear interpolation and a constant 0 border: a positive angle turns
    the content counter-clockwise on screen, and neighbours outside the image count as 0
    (OpenCV's 1/32-pixel quantisation of sample positions is not reproduced). Raises
    MetricError when ``depth`` is not 2-D.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise MetricError(f"Depth map must have 2 dims; got {depth.ndim}.", hint="Pass an (H, W) depth map.")
    padded = _zero_ringed(depth.shape)
    padded[1:-1, 1:-1] = depth
    return _rotate_zero_ringed(padded, angle_deg)


def rotate_labels_about_centre(labels: np.ndarray, angle_deg: float) -> np.ndarray:
    """Return the label map ``labels`` rotated by ``angle_deg`` about (w/2, h/2), as int32 (H, W).

    Same mapping as ``rotate_about_centre`` but nearest-neighbour with a constant -1 border,
    like OpenCV's ``warpAffine(..., flags=INTER_NEAREST, borderValue=-1)`` (up to OpenCV's
    1/1024-pixel quantisation of sample positions). Raises MetricError when ``labels`` is not 2-D.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise MetricError(f"Label map must have 2 dims; got {labels.ndim}.", hint="Pass an (H, W) mask.")
    padded = _ringed(labels.shape, np.int32, -1)
    padded[1:-1, 1:-1] = labels
    return np.array(_rotate_ringed(padded, angle_deg, Image.Resampling.NEAREST, -1))  # writable


def _ringed(shape: tuple[int, ...], dtype, ring_value) -> np.ndarray:
    """An (H + 2, W + 2) buffer whose one-pixel ring holds ``ring_value`` (the warp's border)."""
    h, w = shape
    return np.full((h + 2, w + 2), ring_value, dtype)


def _zero_ringed(shape: tuple[int, ...]) -> np.ndarray:
    return _ringed(shape, np.float32, 0.0)


def _rotate_zero_ringed(padded: np.ndarray, angle_deg: float) -> np.ndarray:
    return _rotate_ringed(padded, angle_deg, Image.Resampling.BILINEAR, 0.0)


def _rotate_ringed(padded: np.ndarray, angle_deg: float, resample, border) -> np.ndarray:
    """Rotate the image inside its one-pixel ring of ``border``; see ``rotate_about_centre``.

    Pillow clamps to the edge pixel within half a pixel of the border and fills beyond it;
    reading from inside a ring of the border value makes both of those OpenCV's constant border
    (for nearest sampling too: Pillow floors the position, so the ring stands for the half
    pixel OpenCV rounds out of the image).
    """
    h, w = padded.shape[0] - 2, padded.shape[1] - 2
    # OpenCV: forward M = [[c, s, (1-c)cx - s cy], [-s, c, s cx + (1-c)cy]]; warpAffine
    # samples the source at inv(M) applied to integer output pixel centres.
    radians = math.radians(angle_deg)
    c, s = math.cos(radians), math.sin(radians)
    cx, cy = w / 2.0, h / 2.0
    tx, ty = (1 - c) * cx - s * cy, s * cx + (1 - c) * cy
    inverse = ((c, -s, -(c * tx - s * ty)), (s, c, -(s * tx + c * ty)))
    # Pillow maps output pixel (x, y) through (x + 0.5, y + 0.5) and reads the input at a
    # continuous coordinate whose pixel centres sit at i + 0.5; the ring shifts by 1 more.
    coeffs: list[float] = []
    for a, b, t in inverse:
        coeffs += [a, b, t + 1.5 - 0.5 * (a + b)]
    warped = Image.fromarray(padded).transform((w, h), Image.Transform.AFFINE, tuple(coeffs), resample=resample, fillcolor=border)
    return np.asarray(warped, dtype=padded.dtype)


def depth_pair_score(depth_t: np.ndarray, depth_next_aligned: np.ndarray) -> float:
    """Return the TS score of one frame pair (reference §8.3), in [0, 1].

    Valid pixels are finite and > 0 in both maps; none valid gives 1.0. Otherwise
    max(0, 1 - L1 / range) with L1 the mean |d_t - d_next| over valid pixels and range =
    max(max d_t - min d_t over valid pixels, 1e-3). Raises MetricError when the shapes differ.
    """
    if depth_t.shape != depth_next_aligned.shape:
        raise MetricError(
            f"Consecutive depth maps differ in shape: {depth_t.shape} vs {depth_next_aligned.shape}.",
            hint="Every prediction of a clip must have the resolution of its sample's RGB frame.",
        )
    with np.errstate(invalid="ignore"):
        valid = (depth_t > 0) & (depth_t < np.inf) & (depth_next_aligned > 0) & (depth_next_aligned < np.inf)
        n = int(np.count_nonzero(valid))
        if n == 0:
            return 1.0
        l1 = float(np.add.reduce(np.abs(depth_t - depth_next_aligned), axis=None, where=valid, dtype=np.float64)) / n
    hi = float(np.maximum.reduce(depth_t, axis=None, where=valid, initial=-np.inf))
    lo = float(np.minimum.reduce(depth_t, axis=None, where=valid, initial=np.inf))
    return max(0.0, 1.0 - l1 / max(hi - lo, 1e-3))


class _ClipTemporalStability:
    """Temporal Stability of per-frame maps, one clip at a time (a TemporalAccumulator).

    Frames are paired only with the previous frame of the same (scene, phase) clip; samples
    must arrive sorted by (scene, phase, frame_idx). Only that previous frame (its map and
    pose) is held, next to one buffer for the incoming frame. Frames without a scene or phase
    are never paired, and a frame whose ``frame_idx`` does not increase starts the clip over
    instead of pairing. Subclasses say what a map is (``_what``, ``_dtype``), how it is
    rotated (``_rotate``, with ``_border`` outside the image) and how a pair scores
    (``_pair_score``).
    """

    _what = "map"
    _dtype = np.float32
    _border = 0.0

    def __init__(self) -> None:
        # Two ringed buffers take turns: one holds the previous frame, the spare receives the
        # next one, ready for the rotation without another copy.
        self._spare: np.ndarray | None = None
        self._prev: np.ndarray | None = None
        self._prev_pose: np.ndarray | None = None
        self._prev_clip: tuple[str | None, str | None] | None = None
        self._prev_frame_idx: int | None = None
        self._score_sum = 0.0
        self._pairs = 0

    def _rotate(self, padded: np.ndarray, angle_deg: float) -> np.ndarray:
        raise NotImplementedError

    def _pair_score(self, previous: np.ndarray, aligned: np.ndarray) -> float:
        raise NotImplementedError

    def update(self, sample: Sample, prediction: Any) -> None:
        """Pair ``prediction`` (the (H, W) map of ``sample``) with the previous frame of the
        same clip, if any, and keep a copy of it as the new previous frame; returns None.

        When both frames have finite poses the new map is first rotated by their relative
        in-plane angle (``inplane_rotation_deg``); a zero angle skips the warp. Raises
        MetricError when the prediction is not 2-D, differs in shape from the previous frame
        of its clip, or a pose is not 4x4.
        """
        array = np.asarray(prediction)
        if array.ndim != 2:
            raise MetricError(
                f"{self._what.capitalize()} must have 2 dims; got {array.ndim}.",
                hint="Check the shape your model returns: temporal stability needs (H, W) maps.",
            )
        padded = self._spare
        if padded is None or padded.shape != (array.shape[0] + 2, array.shape[1] + 2):
            padded = _ringed(array.shape, self._dtype, self._border)
        current = padded[1:-1, 1:-1]
        np.copyto(current, array, casting="same_kind")  # a copy: callers may reuse their prediction buffers
        pose = _usable_pose(sample.camera_pose)
        clip = sample.clip
        if self._pairs_with_previous(clip, sample.frame_idx):
            previous = self._prev[1:-1, 1:-1]
            angle = inplane_rotation_deg(self._prev_pose, pose)
            aligned = self._rotate(padded, angle) if angle else current
            self._score_sum += self._pair_score(previous, aligned)
            self._pairs += 1
        self._spare, self._prev = self._prev, padded
        self._prev_pose = pose
        self._prev_clip = clip
        self._prev_frame_idx = sample.frame_idx

    def _pairs_with_previous(self, clip: tuple[str | None, str | None], frame_idx: int | None) -> bool:
        if self._prev is None or None in clip or clip != self._prev_clip:
            return False
        if frame_idx is not None and self._prev_frame_idx is not None and frame_idx <= self._prev_frame_idx:
            return False
        return True

    def result(self) -> dict[str, Any]:
        """Return ``{"score": mean pair score, or None without pairs, "pairs": int}``.
        Raises nothing."""
        score = self._score_sum / self._pairs if self._pairs else None
        return {"score": score, "pairs": self._pairs}


class DepthTemporalStability(_ClipTemporalStability):
    """Temporal Stability of depth predictions (§8.3): each pair scores ``depth_pair_score``
    after a bilinear rotation with a 0 border (``rotate_about_centre``); see the base class for
    the clip pairing."""

    _what = "depth map"

    def _rotate(self, padded: np.ndarray, angle_deg: float) -> np.ndarray:
        return _rotate_zero_ringed(padded, angle_deg)

    def _pair_score(self, previous: np.ndarray, aligned: np.ndarray) -> float:
        return depth_pair_score(previous, aligned)


class SegmentationTemporalStability(_ClipTemporalStability):
    """Temporal Stability of predicted label maps (§8.3): the next mask is rotated by the
    relative in-plane angle with nearest sampling and a -1 border
    (``rotate_labels_about_centre``), and each pair scores ``label_pair_score`` (mean IoU
    over the labels >= 0 in either map, 1.0 when none); see the base class for the clip pairing.
    Labels are held as int32."""

    _what = "label map"
    _dtype = np.int32
    _border = -1

    def update(self, sample: Sample, prediction: Any) -> None:
        """As the base class; also raises MetricError when the prediction does not hold integers."""
        array = np.asarray(prediction)
        if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
            raise MetricError(
                f"Label map must hold integers for temporal stability; got {array.dtype}.",
                hint="return an (H, W) integer instance map",
            )
        super().update(sample, array)

    def _rotate(self, padded: np.ndarray, angle_deg: float) -> np.ndarray:
        return _rotate_ringed(padded, angle_deg, Image.Resampling.NEAREST, -1)

    def _pair_score(self, previous: np.ndarray, aligned: np.ndarray) -> float:
        return label_pair_score(previous, aligned)


# ----------------------------------------------------------------------------- SGC

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


def depth_edges(depth_m: np.ndarray, threshold_m: float = SGC_DEPTH_EDGE_M, dilation: int = SGC_BOUNDARY_DILATION) -> np.ndarray:
    """Depth-discontinuity pixels (§8.4): central-difference gradient magnitude
    sqrt(gx^2 + gy^2) > ``threshold_m``, with gx = (d[x+1] - d[x-1]) / 2 (0 on the first and
    last column; gy likewise on rows), then ``dilation`` rounds of 4-neighbour dilation.
    Invalid depth (0) is used as is, so dropouts make edges too, as upstream. Returns (H, W)
    bool. Raises MetricError when ``depth_m`` is not 2-D."""
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


class GeometricCoherence:
    """Stack-level Geometric Coherence (§8.4), streamed: one ``update(sample, mask)`` per sample.

    ``depth_of(sample)`` returns the sample's (H, W) depth in metres, or None when it has none;
    such samples are skipped and counted. Only running sums are kept.
    """

    def __init__(self, depth_of: Callable[[Sample], np.ndarray | None]):
        self._depth_of = depth_of
        self._precision_sum = 0.0
        self._recall_sum = 0.0
        self._samples = 0
        self._skipped = 0

    def update(self, sample: Sample, prediction: Any) -> None:
        """Score the predicted mask of ``sample`` against its depth edges; returns None.

        Raises MetricError when mask and depth differ in shape; whatever ``depth_of`` raises
        (e.g. ManifestError for an unreadable depth file) propagates.
        """
        depth = self._depth_of(sample)
        if depth is None:
            self._skipped += 1
            return
        precision, recall = boundary_precision_recall(prediction, depth)
        self._precision_sum += precision
        self._recall_sum += recall
        self._samples += 1

    def result(self) -> dict[str, Any]:
        """Return ``{"score", "precision", "recall", "samples", "skipped_no_depth"}``.

        precision and recall are means over the scored samples and score is their harmonic
        mean (0.0 when both are 0); with no scored sample all three are 0.0, as upstream.
        Raises nothing.
        """
        if not self._samples:
            precision = recall = score = 0.0
        else:
            precision = self._precision_sum / self._samples
            recall = self._recall_sum / self._samples
            score = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        return {
            "score": score,
            "precision": precision,
            "recall": recall,
            "samples": self._samples,
            "skipped_no_depth": self._skipped,
        }


__all__ = [
    "DepthTemporalStability",
    "GeometricCoherence",
    "PhaseScores",
    "SegmentationTemporalStability",
    "boundary_precision_recall",
    "depth_edges",
    "depth_pair_score",
    "esd_weighted_score",
    "inplane_rotation_deg",
    "mask_boundary",
    "rotate_about_centre",
    "rotate_labels_about_centre",
]
