"""Temporal Stability (TS, reference §8.3) of per-frame depth maps and label maps.

``DepthTemporalStability`` and ``SegmentationTemporalStability`` are TemporalAccumulators
(``rpx_tasks.contracts.spec``): they pair only consecutive frames of the same (scene, phase)
clip, align the next frame to the previous one by their relative in-plane camera rotation,
and hold just the previous frame. With no pair the score is None ("not defined").
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

from rpx_tasks.aggregation import ExactSum
from rpx_tasks.errors import MetricError
from rpx_tasks.metrics.depth import depth_pair_score
from rpx_tasks.metrics.segmentation import label_pair_score
from rpx_tasks.readiness.rotation import ringed, rotate_ringed
from rpx_tasks.sample import Sample


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


class _ClipTemporalStability:
    """Temporal Stability of per-frame maps, one clip at a time (a TemporalAccumulator).

    Frames are paired only with the previous frame of the same (scene, phase) clip; samples
    must arrive sorted by (scene, phase, frame_idx). Only that previous frame (its map and
    pose) is held, next to one buffer for the incoming frame. Frames without a scene or phase
    are never paired, and a frame whose ``frame_idx`` does not increase starts the clip over
    instead of pairing. Subclasses say what a map is (``_what``, ``_dtype``), how it is
    rotated (``_resample``, with ``_border`` outside the image) and how a pair scores
    (``_pair_score``).
    """

    _what = "map"
    _dtype: Any = np.float32
    _border: float = 0.0
    _resample = Image.Resampling.BILINEAR

    def __init__(self) -> None:
        # Two ringed buffers take turns: one holds the previous frame, the spare receives the
        # next one, ready for the rotation without another copy.
        self._spare: np.ndarray | None = None
        self._prev: np.ndarray | None = None
        self._prev_pose: np.ndarray | None = None
        self._prev_clip: tuple[str | None, str | None] | None = None
        self._prev_frame_idx: int | None = None
        self._score_sum = ExactSum()  # exact, so the sums of a split's shards add up to the split's
        self._pairs = 0

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
        padded = self._copy_into_spare(prediction)
        current = padded[1:-1, 1:-1]
        pose = _usable_pose(sample.camera_pose)
        clip = sample.clip
        if self._pairs_with_previous(clip, sample.frame_idx):
            previous = self._prev[1:-1, 1:-1]
            angle = inplane_rotation_deg(self._prev_pose, pose)
            aligned = rotate_ringed(padded, angle, self._resample, self._border) if angle else current
            self._score_sum.add(self._pair_score(previous, aligned))
            self._pairs += 1
        self._spare, self._prev = self._prev, padded
        self._prev_pose = pose
        self._prev_clip = clip
        self._prev_frame_idx = sample.frame_idx

    def _copy_into_spare(self, prediction: Any) -> np.ndarray:
        """The spare ringed buffer (a new one when its shape does not fit) holding a copy of
        ``prediction``; callers may reuse their prediction buffers. Raises MetricError when
        the prediction is not 2-D."""
        array = np.asarray(prediction)
        if array.ndim != 2:
            raise MetricError(
                f"{self._what.capitalize()} must have 2 dims; got {array.ndim}.",
                hint="Check the shape your model returns: temporal stability needs (H, W) maps.",
            )
        padded = self._spare
        if padded is None or padded.shape != (array.shape[0] + 2, array.shape[1] + 2):
            padded = ringed(array.shape, self._dtype, self._border)
        np.copyto(padded[1:-1, 1:-1], array, casting="same_kind")
        return padded

    def _pairs_with_previous(self, clip: tuple[str | None, str | None], frame_idx: int | None) -> bool:
        if self._prev is None or None in clip or clip != self._prev_clip:
            return False
        return frame_idx is None or self._prev_frame_idx is None or frame_idx > self._prev_frame_idx

    def state_dict(self) -> dict[str, Any]:
        """Return what the next ``update`` needs: the running sum (``score_partials``: exact, see
        ``ExactSum``; ``score_sum``: its value) and count, and the previous frame (its ringed map, pose, clip
        and frame index); plain values and ndarrays. Raises nothing."""
        return {
            "score_sum": self._score_sum.value,
            "score_partials": self._score_sum.partials(),
            "pairs": self._pairs,
            "prev": self._prev,
            "prev_pose": self._prev_pose,
            "prev_clip": None if self._prev_clip is None else list(self._prev_clip),
            "prev_frame_idx": self._prev_frame_idx,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` (a ``state_dict()``; one without ``score_partials`` continues from its
        ``score_sum``); returns None. Raises KeyError for a missing entry."""
        partials = state.get("score_partials")
        self._score_sum = ExactSum([float(state["score_sum"])] if partials is None else partials)
        self._pairs = int(state["pairs"])
        self._prev = None if state["prev"] is None else np.asarray(state["prev"], dtype=self._dtype)
        self._prev_pose = None if state["prev_pose"] is None else np.asarray(state["prev_pose"], dtype=np.float64)
        self._prev_clip = None if state["prev_clip"] is None else tuple(state["prev_clip"])
        self._prev_frame_idx = state["prev_frame_idx"]
        self._spare = None

    def add_totals(self, state: dict[str, Any]) -> None:
        """Add the pair sum and count of another part of the split (a shard's ``state_dict()``; its previous
        frame is not used: shards hold whole clips); returns None. Raises KeyError for a missing entry."""
        self._score_sum.add_partials(state["score_partials"])
        self._pairs += int(state["pairs"])

    def result(self) -> dict[str, Any]:
        """Return ``{"score": mean pair score (the exact sum, rounded once), or None without pairs, "pairs": int}``.
        Raises nothing."""
        score = self._score_sum.value / self._pairs if self._pairs else None
        return {"score": score, "pairs": self._pairs}


class DepthTemporalStability(_ClipTemporalStability):
    """Temporal Stability of depth predictions (§8.3): each pair scores ``depth_pair_score``
    after a bilinear rotation with a 0 border (as ``rotate_about_centre``); see the base class
    for the clip pairing."""

    _what = "depth map"

    def _pair_score(self, previous: np.ndarray, aligned: np.ndarray) -> float:
        return depth_pair_score(previous, aligned)


class SegmentationTemporalStability(_ClipTemporalStability):
    """Temporal Stability of predicted label maps (§8.3): the next mask is rotated by the
    relative in-plane angle with nearest sampling and a -1 border
    (as ``rotate_labels_about_centre``), and each pair scores ``label_pair_score`` (mean IoU
    over the labels >= 0 in either map, 1.0 when none); see the base class for the clip pairing.
    Labels are held as int32."""

    _what = "label map"
    _dtype = np.int32
    _border = -1
    _resample = Image.Resampling.NEAREST

    def update(self, sample: Sample, prediction: Any) -> None:
        """As the base class; also raises MetricError when the prediction does not hold integers."""
        array = np.asarray(prediction)
        if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
            raise MetricError(
                f"Label map must hold integers for temporal stability; got {array.dtype}.",
                hint="return an (H, W) integer instance map",
            )
        super().update(sample, array)

    def _pair_score(self, previous: np.ndarray, aligned: np.ndarray) -> float:
        return label_pair_score(previous, aligned)
