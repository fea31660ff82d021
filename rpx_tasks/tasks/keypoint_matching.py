"""RPX task ``keypoint_matching``: find where points of frame A lie in frame B.

Ground truth (reference §1.4, §4.2). A manifest entry gives ``points0`` and ``points1``
((N, 2) pixel coordinates (x, y) of the same N scene points in frame A and frame B) and
optionally ``visibility`` ((N,), true where the point is visible in frame B), each inline, as
a ``.npy`` path or as a JSON file path; ``rgb_b`` is frame B. Coordinates are kept in float64
(exact for float32 files), so no precision is lost before scoring.

Prediction: :class:`KeypointMatches` -- ``points0`` (M, 2) in frame A, ``points1`` (M, 2) in
frame B (float64), ``scores`` (M,) or None (not used by the metrics).

Metrics per sample (reference ``KeypointAccuracy``, threshold 3 px): ``keypoint_acc`` (primary,
higher is better) and ``mean_match_error`` (+inf when the model matched nothing), computed by
``rpx_tasks.metrics.keypoints``, whose docstring gives the rules and their order.

Models: ``fn(rgb_a, rgb_b) -> {"points0", "points1"[, "scores"]}`` or a 2/3-tuple, points
reshaped to (-1, 2); the ``--hf-checkpoint`` fast path runs any transformers
keypoint-matching checkpoint (SuperGlue, LightGlue, EfficientLoFTR; ``models.hf_keypoints``).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from rpx_tasks.contracts.keypoints import KeypointCorrespondences, KeypointMatches
from rpx_tasks.contracts.sample_frame import SampleFrame
from rpx_tasks.contracts.spec import ModelEntry, PathResolver, TaskSpec
from rpx_tasks.decoding import load_array
from rpx_tasks.entry_checks import ImageSize, check_points_in_frame, field_error, second_frame_size
from rpx_tasks.errors import AdapterError, ManifestError, ModelError, RPXError
from rpx_tasks.metrics.keypoints import KEYPOINT_METRIC_INFO, keypoint_metrics
from rpx_tasks.sample import Sample, second_frame
from rpx_tasks.tasks._pairs import pair_entry

NAME = "keypoint_matching"

_SIGNATURE = (
    "fn(rgb_a: (H, W, 3) uint8, rgb_b: (H, W, 3) uint8) -> {'points0': (M, 2), 'points1': (M, 2)"
    "[, 'scores': (M,)]} or a (points0, points1[, scores]) tuple; points are (x, y) pixels in frame A "
    "and frame B"
)


# --------------------------------------------------------------------------- ground truth


def load_ground_truth(entry: dict, resolve: PathResolver) -> KeypointCorrespondences:
    """The correspondences of a manifest entry (``points0``, ``points1``, optional ``visibility``).

    Each key is an inline list, a ``.npy`` path or a JSON file path. Raises ManifestError
    naming the sample (and file) when a file is missing or unreadable, an array has the wrong
    shape, the arrays disagree in length, a visibility flag is not true/false (1/0), or a
    visible point is not finite.
    """
    sample_id = entry["id"]
    points0 = load_array(entry["points0"], resolve, sample_id, "points0", dtype=np.float64, columns=2)
    points1 = load_array(entry["points1"], resolve, sample_id, "points1", dtype=np.float64, columns=2)
    if len(points0) != len(points1):
        raise ManifestError(
            f"Sample {sample_id!r}: points0 has {len(points0)} points but points1 has {len(points1)} "
            f"({entry['points0'] if isinstance(entry['points0'], str) else 'inline'}, "
            f"{entry['points1'] if isinstance(entry['points1'], str) else 'inline'}).",
            hint="points0[i] and points1[i] are the same scene point in frame A and frame B",
            details={"sample": sample_id, "points0": len(points0), "points1": len(points1)},
        )
    visibility = None
    if entry.get("visibility") is not None:
        visibility = _visibility_flags(entry, resolve)
        if len(visibility) != len(points0):
            raise ManifestError(
                f"Sample {sample_id!r}: visibility has {len(visibility)} values for {len(points0)} points.",
                hint="give one visibility flag per point pair",
                details={"sample": sample_id, "key": "visibility"},
            )
    for key, points in (("points0", points0), ("points1", points1)):
        not_finite = ~np.isfinite(points).all(axis=1) & (visibility if visibility is not None else True)
        if not_finite.any():
            index = int(np.flatnonzero(not_finite)[0])
            raise field_error(
                sample_id,
                key,
                points[index].tolist(),
                f"(point {index}) is a visible keypoint with a NaN or infinite coordinate",
                hint="mark points without a valid position as invisible (visibility false) or drop them",
            )
    return KeypointCorrespondences(points0=points0, points1=points1, visibility=visibility)


def _visibility_flags(entry: dict, resolve: PathResolver) -> np.ndarray:
    """The entry's ``visibility`` as (N,) bool. Raises ManifestError naming the sample and the first
    value that is not a flag (true/false or 1/0)."""
    values = load_array(entry["visibility"], resolve, entry["id"], "visibility", dtype=np.float64)
    not_flags = (values != 0) & (values != 1)
    if not_flags.any():
        index = int(np.flatnonzero(not_flags)[0])
        raise field_error(
            entry["id"],
            "visibility",
            float(values[index]),
            f"(point {index}) is not a visibility flag",
            hint="visibility holds one true/false (or 1/0) per point pair",
        )
    return values.astype(bool)


def check_entry(entry: dict, resolve: PathResolver, rgb_size: ImageSize) -> None:
    """Check an entry when the split is opened: its correspondences load (see ``load_ground_truth``),
    the second frame ``rgb_b`` is there (header only), and every visible point lies in its frame
    (points0 in frame A, points1 in frame B). Raises ManifestError naming the sample, field and value."""
    truth = load_ground_truth(entry, resolve)
    size_b = second_frame_size(entry, resolve)
    check_points_in_frame(entry["id"], "points0", truth.points0, rgb_size, used=truth.visibility)
    check_points_in_frame(entry["id"], "points1", truth.points1, size_b, used=truth.visibility)


# --------------------------------------------------------------------------- predictions


def _points(value: Any, key: str, error: type[RPXError], where: str, hint: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise error(f"{where}: '{key}' is not an array of numbers ({exc}).", hint=hint) from exc
    if array.size % 2:
        raise error(f"{where}: '{key}' has shape {array.shape}, which does not reshape to (-1, 2).", hint=hint)
    return array.reshape(-1, 2)


def _parse_matches(raw: Any, error: type[RPXError], where: str, hint: str) -> KeypointMatches:
    """KeypointMatches from a KeypointMatches (or any object with ``points0`` / ``points1`` and
    optional ``scores`` attributes), a dict or a 2/3-tuple; raises ``error`` naming what is wrong."""
    if isinstance(raw, KeypointMatches) or (hasattr(raw, "points0") and hasattr(raw, "points1")):
        points0, points1, scores = raw.points0, raw.points1, getattr(raw, "scores", None)
    elif isinstance(raw, dict):
        missing = [key for key in ("points0", "points1") if key not in raw]
        if missing:
            raise error(
                f"{where}: the matches dict lacks {', '.join(map(repr, missing))} (keys: {sorted(map(str, raw))}).",
                hint=hint,
            )
        points0, points1, scores = raw["points0"], raw["points1"], raw.get("scores")
    elif isinstance(raw, (tuple, list)) and len(raw) in (2, 3):
        points0, points1 = raw[0], raw[1]
        scores = raw[2] if len(raw) == 3 else None
    else:
        length = f" of length {len(raw)}" if isinstance(raw, (tuple, list)) else ""
        raise error(
            f"{where}: expected a dict with keys 'points0', 'points1'[, 'scores'] or a 2/3-tuple, "
            f"got {type(raw).__name__}{length}.",
            hint=hint,
        )
    p0 = _points(points0, "points0", error, where, hint)
    p1 = _points(points1, "points1", error, where, hint)
    if len(p0) != len(p1):
        raise error(f"{where}: 'points0' has {len(p0)} points but 'points1' has {len(p1)}.", hint=hint)
    if not (np.isfinite(p0).all() and np.isfinite(p1).all()):
        raise error(f"{where}: the matched points contain NaN or inf.", hint=hint)
    score_array = None
    if scores is not None:
        try:
            score_array = np.asarray(scores, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise error(f"{where}: 'scores' is not an array of numbers ({exc}).", hint=hint) from exc
        if len(score_array) != len(p0):
            raise error(f"{where}: 'scores' has {len(score_array)} values for {len(p0)} matches.", hint=hint)
    return KeypointMatches(points0=p0, points1=p1, scores=score_array)


def validate_prediction(prediction: Any, sample: Sample) -> KeypointMatches:
    """Return the prediction as KeypointMatches (float64 points (M, 2)).

    Accepts KeypointMatches (or an object with those attributes), a dict {points0, points1[,
    scores]} or a 2/3-tuple. Raises ModelError naming the sample when a key is missing, shapes
    disagree or a point is not finite.
    """
    return _parse_matches(
        prediction,
        ModelError,
        f"Sample {sample.id!r}",
        "check your model's predict() return type for keypoint_matching: "
        "{'points0': (M, 2), 'points1': (M, 2)[, 'scores': (M,)]} per sample",
    )


# --------------------------------------------------------------------------- numpy models


def call_function(fn: Callable[..., Any], sample: Sample) -> Any:
    """Call a numpy matcher as ``fn(rgb_a, rgb_b)`` on the sample's two frames.

    Raises AdapterError naming the sample when it has no ``rgb_b`` ("requires a second RGB frame").
    """
    return fn(sample.rgb, second_frame(sample, NAME))


def normalise_function_output(output: Any, sample: Sample) -> KeypointMatches:
    """A numpy matcher's output (``{points0, points1[, scores]}`` or a 2/3-tuple) as KeypointMatches.

    Points are reshaped to (-1, 2) float64. Raises AdapterError naming the sample when a key is
    missing, the shapes disagree or a value is not a finite number.
    """
    return _parse_matches(
        output,
        AdapterError,
        f"Sample {sample.id!r}: the keypoint function's output",
        f"the function must be {_SIGNATURE}",
    )


MODELS = (
    ModelEntry(
        "lightglue_superpoint",
        NAME,
        "hf",
        "ETH-CVG/lightglue_superpoint",
        "LightGlue matcher on SuperPoint keypoints (ETH CVG), transformers port",
    ),
    ModelEntry(
        "superglue_indoor",
        NAME,
        "hf",
        "magic-leap-community/superglue_indoor",
        "SuperGlue matcher on SuperPoint keypoints, indoor (ScanNet) weights",
    ),
    ModelEntry(
        "global_motion_grid",
        NAME,
        "import",
        "rpx_tasks.models.keypoint_baselines:global_motion_matches",
        "weight-free baseline: a dense pixel grid moved by the global image motion (roll + shift)",
    ),
    ModelEntry(
        "identity_matches",
        NAME,
        "import",
        "rpx_tasks.models.keypoint_baselines:identity_matches",
        "weight-free baseline: every point stays where it was",
    ),
)


# --------------------------------------------------------------------------- sample data


def sample_entry(frame: SampleFrame) -> dict | None:
    """The pair (``frame``, ``frame.later``) with ground-truth correspondences; None on a clip's last frame.

    Points of frame A on a grid (stride about width / 32) with valid depth, not on a moving
    object (the arm), are back-projected with frame A's depth and pose and projected into
    frame B; ``visibility`` is true where the projection lands inside frame B and is not hidden
    by a nearer surface. Writes ``keypoints/{points0,points1}`` (float32 (N, 2)) and
    ``keypoints/visibility`` (bool (N,)) as .npy next to the frame.
    """
    later = frame.later
    if later is None:
        return None
    stride = max(2, round(frame.width / 32))
    xs = np.arange(stride // 2, frame.width, stride, dtype=np.float64)
    ys = np.arange(stride // 2, frame.height, stride, dtype=np.float64)
    gx, gy = np.meshgrid(xs, ys)
    points0 = np.stack([gx.ravel(), gy.ravel()], axis=1)
    moving = [obj.id for obj in frame.objects if obj.moving]
    on_moving = np.isin(frame.instances[points0[:, 1].astype(np.intp), points0[:, 0].astype(np.intp)], moving)
    world = frame.backproject(points0)
    keep = np.isfinite(world).all(axis=1) & ~on_moving
    pixels, visible = later.project(world[keep])
    finite = np.isfinite(pixels).all(axis=1)
    points0, points1, visible = points0[keep][finite], pixels[finite], visible[finite]
    return pair_entry(
        frame,
        later,
        {
            "points0": frame.write_npy("keypoints/points0", points0.astype(np.float32)),
            "points1": frame.write_npy("keypoints/points1", points1.astype(np.float32)),
            "visibility": frame.write_npy("keypoints/visibility", visible.astype(bool)),
        },
    )


SPEC = TaskSpec(
    name=NAME,
    display_name="Keypoint Matching",
    modalities=("rgb", "keypoints"),
    required_keys=("points0", "points1"),
    load_ground_truth=load_ground_truth,
    check_entry=check_entry,
    validate_prediction=validate_prediction,
    compute_metrics=keypoint_metrics,
    metrics=KEYPOINT_METRIC_INFO,
    primary_metric="keypoint_acc",
    numpy_signature=_SIGNATURE,
    numpy_invoke=call_function,
    numpy_inputs=("rgb_a", "rgb_b"),
    numpy_normalise=normalise_function_output,
    hf_loader="rpx_tasks.models.hf_keypoints:load_hf_keypoint_model",
    models=MODELS,
    sample_entry=sample_entry,
)
