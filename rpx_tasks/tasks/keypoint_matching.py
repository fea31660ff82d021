"""RPX task ``keypoint_matching``: find where points of frame A lie in frame B.

Ground truth (reference §1.4, §4.2). A manifest entry gives ``points0`` and ``points1``
((N, 2) pixel coordinates (x, y) of the same N scene points in frame A and frame B) and
optionally ``visibility`` ((N,), true where the point is visible in frame B), each inline, as
a ``.npy`` path or as a JSON file path; ``rgb_b`` is frame B. Coordinates are kept in float64
(exact for float32 files), so no precision is lost before scoring.

Prediction: :class:`KeypointMatches` -- ``points0`` (M, 2) in frame A, ``points1`` (M, 2) in
frame B (float64), ``scores`` (M,) or None (not used by the metrics).

Metrics per sample (reference ``KeypointAccuracy``, threshold 3 px):

1. no ground-truth points -> ``keypoint_acc`` 1, ``mean_match_error`` 0;
2. no predicted matches -> ``keypoint_acc`` 0, ``mean_match_error`` +inf;
3. the visibility mask is applied; nothing left -> 1 and 0;
4. for every remaining ground-truth pair, the predicted match whose ``points0`` is nearest
   (Euclidean; the first one on a tie) to the true point in A; its error is the distance of
   its ``points1`` to the true point in B. ``keypoint_acc = mean(error < 3)`` (strictly
   below), ``mean_match_error = mean(error)``.

The steps run in this order, as the reference lists them: a sample whose points are all
invisible scores 0 / +inf when the model matched nothing, 1 / 0 otherwise.

Why +inf stays +inf: "no matches at all" is an infinitely bad match error, not an undefined
one (None would mean "no value", and the sample would silently drop out of the mean). The
reports never average it in: aggregates and cell means count it under ``inf_count`` and average
the finite values, ``per_sample_metrics.parquet`` stores inf and ``result.json`` writes null.
``keypoint_acc`` (the primary metric, higher is better) is always finite.

Models: ``fn(rgb_a, rgb_b) -> {"points0", "points1"[, "scores"]}`` or a 2/3-tuple, points
reshaped to (-1, 2); the ``--hf-checkpoint`` fast path runs any transformers
keypoint-matching checkpoint (SuperGlue, LightGlue, EfficientLoFTR; ``models.hf_keypoints``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rpx_tasks.contracts.keypoints import KeypointCorrespondences, KeypointMatches
from rpx_tasks.decoding import load_array
from rpx_tasks.errors import AdapterError, ManifestError, MetricError, ModelError, RPXError
from rpx_tasks.models.numpy_function import NumpyFunctionModel
from rpx_tasks.contracts.spec import ModelEntry
from rpx_tasks.sample import Sample
from rpx_tasks.tasks._pairs import estimate_image_motion, gray_image, pair_entry, second_frame
from rpx_tasks.contracts.spec import MetricInfo, PathResolver, TaskSpec

NAME = "keypoint_matching"
PIXEL_THRESHOLD = 3.0
# Distances computed at once in the nearest-neighbour search: small enough to stay in cache.
_CHUNK_ELEMENTS = 262_144

METRICS = (
    MetricInfo("keypoint_acc", True, "fraction of ground-truth points matched within 3 px in frame B"),
    MetricInfo("mean_match_error", False,
               "mean distance (px) in frame B of the match nearest to each ground-truth point"),
)

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
    shape, the arrays disagree in length, or a visible point is not finite.
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
        visibility = load_array(entry["visibility"], resolve, sample_id, "visibility", dtype=bool)
        if len(visibility) != len(points0):
            raise ManifestError(
                f"Sample {sample_id!r}: visibility has {len(visibility)} values for {len(points0)} points.",
                hint="give one visibility flag per point pair",
                details={"sample": sample_id, "key": "visibility"},
            )
    used = visibility if visibility is not None else slice(None)
    if not (np.isfinite(points0[used]).all() and np.isfinite(points1[used]).all()):
        raise ManifestError(
            f"Sample {sample_id!r}: a visible keypoint has a NaN or infinite coordinate.",
            hint="mark points without a valid position as invisible (visibility false) or drop them",
            details={"sample": sample_id},
        )
    return KeypointCorrespondences(points0=points0, points1=points1, visibility=visibility)


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


# --------------------------------------------------------------------------- metrics


def match_errors(pred0: np.ndarray, pred1: np.ndarray, true0: np.ndarray, true1: np.ndarray) -> np.ndarray:
    """For each true pair, the frame-B error of the predicted match nearest in frame A.

    ``pred0``/``pred1`` (M, 2) with M >= 1, ``true0``/``true1`` (N, 2). Nearest is by Euclidean
    distance in frame A, the lowest index on a tie. Returns (N,) float64; raises nothing.
    Memory is bounded by searching in chunks of ground-truth rows.
    """
    pred0 = np.asarray(pred0, np.float64)
    pred1 = np.asarray(pred1, np.float64)
    true0 = np.asarray(true0, np.float64)
    true1 = np.asarray(true1, np.float64)
    pred_x, pred_y = np.ascontiguousarray(pred0[:, 0]), np.ascontiguousarray(pred0[:, 1])
    rows = max(1, _CHUNK_ELEMENTS // max(1, len(pred0)))
    nearest = np.empty(len(true0), np.intp)
    for start in range(0, len(true0), rows):
        block = true0[start:start + rows]
        distance = np.subtract.outer(block[:, 0], pred_x)
        distance *= distance
        dy = np.subtract.outer(block[:, 1], pred_y)
        dy *= dy
        distance += dy
        np.sqrt(distance, out=distance)
        nearest[start:start + rows] = np.argmin(distance, axis=1)
    diff = pred1[nearest] - true1
    return np.sqrt(diff[:, 0] * diff[:, 0] + diff[:, 1] * diff[:, 1])


def keypoint_metrics(prediction: KeypointMatches, ground_truth: KeypointCorrespondences) -> dict[str, float | None]:
    """``{keypoint_acc, mean_match_error}`` of one sample (rules in the module docstring).

    ``mean_match_error`` is +inf when the model returned no matches for a sample with ground
    truth. Raises MetricError when an argument has the wrong type.
    """
    if not isinstance(prediction, KeypointMatches):
        raise MetricError(
            f"keypoint_matching expects a KeypointMatches prediction, got {type(prediction).__name__}.",
            hint="pass predictions through SPEC.validate_prediction",
        )
    if not isinstance(ground_truth, KeypointCorrespondences):
        raise MetricError(
            f"keypoint_matching expects KeypointCorrespondences ground truth, got {type(ground_truth).__name__}.",
            hint="load ground truth with SPEC.load_ground_truth",
        )
    true0, true1 = ground_truth.points0, ground_truth.points1
    if len(true0) == 0:
        return {"keypoint_acc": 1.0, "mean_match_error": 0.0}
    if len(prediction.points0) == 0:
        return {"keypoint_acc": 0.0, "mean_match_error": float("inf")}
    if ground_truth.visibility is not None:
        visible = np.asarray(ground_truth.visibility, bool)
        true0, true1 = true0[visible], true1[visible]
        if len(true0) == 0:
            return {"keypoint_acc": 1.0, "mean_match_error": 0.0}
    errors = match_errors(prediction.points0, prediction.points1, true0, true1)
    return {"keypoint_acc": float(np.mean(errors < PIXEL_THRESHOLD)), "mean_match_error": float(np.mean(errors))}


# --------------------------------------------------------------------------- numpy models


def _invoke(fn, sample: Sample):
    return fn(sample.rgb, second_frame(sample, NAME))


def _normalise(output: Any, sample: Sample) -> KeypointMatches:
    return _parse_matches(
        output,
        AdapterError,
        f"Sample {sample.id!r}: the keypoint function's output",
        f"the function must be {_SIGNATURE}",
    )


def wrap_numpy_function(fn, name: str) -> NumpyFunctionModel:
    """A Model calling ``fn(rgb_a, rgb_b) -> {points0, points1[, scores]}`` (or a 2/3-tuple) per sample.

    Points are reshaped to (-1, 2) float64. ``predict`` raises AdapterError when the sample
    has no ``rgb_b`` ("requires a second RGB frame"), a key is missing or the shapes disagree.
    """
    return NumpyFunctionModel(fn, task=NAME, name=name, invoke=_invoke, normalise=_normalise)


def load_hf_model(checkpoint: str, **kwargs):
    """The ``--hf-checkpoint`` fast path (AutoModelForKeypointMatching); imported lazily."""
    from rpx_tasks.models.hf_keypoints import load_hf_keypoint_model

    return load_hf_keypoint_model(checkpoint, **kwargs)


# --------------------------------------------------------------------------- baselines


def _grid(width: int, height: int) -> np.ndarray:
    """(M, 2) pixel centres (x, y) on a grid of stride about width / 128 (1 up to 191 px wide)."""
    stride = max(1, round(width / 128))
    xs = np.arange(stride // 2, width, stride, dtype=np.float64)
    ys = np.arange(stride // 2, height, stride, dtype=np.float64)
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def global_motion_matches(rgb_a: np.ndarray, rgb_b: np.ndarray) -> dict[str, np.ndarray]:
    """Weight-free baseline: a dense grid of frame-A pixels moved by the global image motion.

    The two frames are aligned by an in-plane rotation about the centre plus a shift
    (``_pairs.estimate_image_motion``, photometric Gauss-Newton), which is how the image moves
    when the camera rolls and turns; every grid pixel of frame A is mapped through it. Matches
    that leave frame B are dropped. The grid stride is about width / 128 pixels (every pixel
    of a frame up to 191 px wide), so a true point always has a grid point close by: the
    metric scores the match nearest to each true point. Parallax and moving objects are not
    modelled. Returns {"points0": (M, 2), "points1": (M, 2)} float64; raises AdapterError
    when a frame is not (H, W, 3).
    """
    h, w = gray_image(rgb_a).shape
    hb, wb = gray_image(rgb_b).shape
    points0 = _grid(w, h)
    points1 = estimate_image_motion(rgb_a, rgb_b).apply(points0)
    inside = (points1[:, 0] >= 0) & (points1[:, 0] <= wb - 1) & (points1[:, 1] >= 0) & (points1[:, 1] <= hb - 1)
    return {"points0": points0[inside], "points1": points1[inside]}


def identity_matches(rgb_a: np.ndarray, rgb_b: np.ndarray) -> dict[str, np.ndarray]:
    """Trivial baseline: every grid point of frame A matched to the same pixel in frame B.

    Returns {"points0": (M, 2), "points1": (M, 2)} float64 (identical arrays); raises
    AdapterError when ``rgb_a`` is not (H, W, 3).
    """
    h, w = gray_image(rgb_a).shape
    points = _grid(w, h)
    return {"points0": points, "points1": points.copy()}


MODELS = (
    ModelEntry("lightglue_superpoint", NAME, "hf", "ETH-CVG/lightglue_superpoint",
               "LightGlue matcher on SuperPoint keypoints (ETH CVG), transformers port"),
    ModelEntry("superglue_indoor", NAME, "hf", "magic-leap-community/superglue_indoor",
               "SuperGlue matcher on SuperPoint keypoints, indoor (ScanNet) weights"),
    ModelEntry("global_motion_grid", NAME, "import", "rpx_tasks.tasks.keypoint_matching:global_motion_matches",
               "weight-free baseline: a dense pixel grid moved by the global image motion (roll + shift)"),
    ModelEntry("identity_matches", NAME, "import", "rpx_tasks.tasks.keypoint_matching:identity_matches",
               "weight-free baseline: every point stays where it was"),
)


# --------------------------------------------------------------------------- sample data


def sample_entry(frame) -> dict | None:
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
    validate_prediction=validate_prediction,
    compute_metrics=keypoint_metrics,
    metrics=METRICS,
    primary_metric="keypoint_acc",
    wrap_numpy_function=wrap_numpy_function,
    load_hf_model=load_hf_model,
    numpy_signature=_SIGNATURE,
    models=MODELS,
    sample_entry=sample_entry,
)
