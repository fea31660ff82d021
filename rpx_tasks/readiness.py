"""Deployment-readiness scores that stream over a run (reference §8.1-§8.3).

- ``PhaseScores``: Weighted Phase Score (WPS) and State-Transition Robustness (STR) of one
  metric, fed one per-sample value at a time.
- ``DepthTemporalStability``: Temporal Stability (TS) of depth predictions, pairing only
  consecutive frames of the same (scene, phase) clip and holding just the previous frame.

Where upstream counts a missing phase as 0.0, these return None ("not defined"), and
every delta is labelled "worse"/"better" by the metric's direction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

from rpx_tasks.constants import ESD_WEIGHTS, PHASES
from rpx_tasks.errors import MetricError
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


def _zero_ringed(shape: tuple[int, ...]) -> np.ndarray:
    h, w = shape
    return np.zeros((h + 2, w + 2), np.float32)


def _rotate_zero_ringed(padded: np.ndarray, angle_deg: float) -> np.ndarray:
    """Rotate the image inside a one-pixel ring of zeros; see ``rotate_about_centre``.

    Pillow clamps to the edge pixel within half a pixel of the border and fills beyond it;
    reading from inside a zero ring makes both of those OpenCV's zero border.
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
    warped = Image.fromarray(padded).transform(
        (w, h), Image.Transform.AFFINE, tuple(coeffs), resample=Image.Resampling.BILINEAR, fillcolor=0.0
    )
    return np.asarray(warped, dtype=np.float32)


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


class DepthTemporalStability:
    """Temporal Stability of depth predictions, one clip at a time (a TemporalAccumulator).

    Frames are paired only with the previous frame of the same (scene, phase) clip;
    samples must arrive sorted by (scene, phase, frame_idx). Only that previous frame (its
    depth map and pose) is held, next to one buffer for the incoming frame. Frames without
    a scene or phase are never paired, and a frame whose ``frame_idx`` does not increase
    starts the clip over instead of pairing.
    """

    def __init__(self) -> None:
        # Two zero-ringed float32 buffers take turns: one holds the previous frame, the
        # spare receives the next one, ready for the rotation without another copy.
        self._spare: np.ndarray | None = None
        self._prev: np.ndarray | None = None
        self._prev_pose: np.ndarray | None = None
        self._prev_clip: tuple[str | None, str | None] | None = None
        self._prev_frame_idx: int | None = None
        self._score_sum = 0.0
        self._pairs = 0

    def update(self, sample: Sample, prediction: Any) -> None:
        """Pair ``prediction`` (the (H, W) depth map of ``sample``) with the previous frame
        of the same clip, if any, and keep a copy of it as the new previous frame; returns None.

        When both frames have finite poses the new map is first rotated by their relative
        in-plane angle (``inplane_rotation_deg``, ``rotate_about_centre``); a zero angle
        skips the warp. Raises MetricError when the prediction is not 2-D, differs in shape
        from the previous frame of its clip, or a pose is not 4x4.
        """
        depth = np.asarray(prediction)
        if depth.ndim != 2:
            raise MetricError(
                f"Depth map must have 2 dims; got {depth.ndim}.",
                hint="Check the shape your model returns: temporal stability needs (H, W) maps.",
            )
        padded = self._spare
        if padded is None or padded.shape != (depth.shape[0] + 2, depth.shape[1] + 2):
            padded = _zero_ringed(depth.shape)
        current = padded[1:-1, 1:-1]
        np.copyto(current, depth)  # a copy: callers may reuse their prediction buffers
        pose = _usable_pose(sample.camera_pose)
        clip = sample.clip
        if self._pairs_with_previous(clip, sample.frame_idx):
            previous = self._prev[1:-1, 1:-1]
            angle = inplane_rotation_deg(self._prev_pose, pose)
            aligned = _rotate_zero_ringed(padded, angle) if angle else current
            self._score_sum += depth_pair_score(previous, aligned)
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


__all__ = [
    "DepthTemporalStability",
    "PhaseScores",
    "depth_pair_score",
    "esd_weighted_score",
    "inplane_rotation_deg",
    "rotate_about_centre",
]
