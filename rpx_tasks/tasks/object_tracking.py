"""RPX task ``object_tracking``: boxes with track ids, scored by a simplified MOTA / IDF1.

Ground truth and predictions are lists of :class:`Tracklet` s, each a track id and one box per
time step. A manifest entry gives the ground truth as ``tracks``, a JSON file (or inline list)
of ``{track_id, boxes: [[x1, y1, x2, y2], ...], scores?}``; without ``tracks`` it is derived
from the instance ``mask`` (reference §1.4, 0.3.x): one single-step tracklet per instance id
> 0 with box [min x, min y, max x + 1, max y + 1] and track id ``str(id)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rpx_tasks.contracts.tracking import Tracklet, TrackletGroundTruth, TrackletPrediction
from rpx_tasks.decoding import decode_label_map, load_json_value
from rpx_tasks.errors import AdapterError, ManifestError, MetricError, ModelError
from rpx_tasks.metrics.boxes import box_iou_matrix
from rpx_tasks.models.colour_blobs import find_colour_blobs
from rpx_tasks.models.numpy_function import NumpyFunctionModel
from rpx_tasks.contracts.spec import ModelEntry
from rpx_tasks.sample import Sample
from rpx_tasks.contracts.spec import MetricInfo, PathResolver, TaskSpec

logger = logging.getLogger("rpx_tasks.tasks.object_tracking")

NAME = "object_tracking"
IOU_THRESHOLD = 0.5

METRICS: tuple[MetricInfo, ...] = (
    MetricInfo("mota", True, "clip(1 - (FN + FP + IDSW) / max(#GT boxes, 1), -1, 1); greedy IoU >= 0.5 per time step"),
    MetricInfo("idf1", True, "clip(2 TP / max(2 TP + FP + FN, 1), 0, 1) with TP = #GT boxes - FN"),
    MetricInfo("fp", False, "predicted boxes matched to no ground-truth box"),
    MetricInfo("fn", False, "ground-truth boxes matched by no prediction"),
    MetricInfo("idsw", False, "matches whose predicted track id was last matched to another ground-truth track"),
)


# --------------------------------------------------------------------------- parsing tracks

_FORMS = ("a TrackletPrediction, a list of Tracklet, a list of dicts {'track_id', 'boxes' (T, 4), 'scores'?} "
          "or a dict {'tracks': that list}")


def _tracklet(item: Any, index: int, fail, *, id_required: bool) -> Tracklet:
    """A normalised Tracklet from a Tracklet or a dict; ``fail(reason, missing=None)`` builds the error."""
    if isinstance(item, Tracklet):
        track_id, boxes, scores = item.track_id, item.boxes, item.scores
    elif isinstance(item, dict):
        missing = [key for key in (("track_id", "boxes") if id_required else ("boxes",)) if key not in item]
        if missing:
            raise fail(f"track {index} lacks the keys {missing}", missing)
        track_id, boxes, scores = item.get("track_id"), item["boxes"], item.get("scores")
    else:
        raise fail(f"track {index} is a {type(item).__name__}, not a Tracklet or a dict")
    if track_id is None:
        if id_required:
            raise fail(f"track {index} has track_id null")
        track_id = f"t{index}"
    try:
        boxes = np.asarray(boxes, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise fail(f"track {index} ({track_id!r}) 'boxes' is not numeric ({exc})") from exc
    if boxes.size % 4 or (boxes.ndim == 2 and boxes.shape[1] != 4) or boxes.ndim > 2:
        raise fail(f"track {index} ({track_id!r}) 'boxes' has shape {boxes.shape}, expected (T, 4)")
    boxes = boxes.reshape(-1, 4)
    if not np.isfinite(boxes).all():
        raise fail(f"track {index} ({track_id!r}) 'boxes' holds NaN or inf")
    if scores is not None:
        try:
            scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise fail(f"track {index} ({track_id!r}) 'scores' is not numeric ({exc})") from exc
        if len(scores) != len(boxes):
            raise fail(f"track {index} ({track_id!r}) has {len(scores)} scores for {len(boxes)} boxes")
    return Tracklet(track_id=str(track_id), boxes=boxes, scores=scores)


def _tracklets(value: Any, fail, *, id_required: bool) -> list[Tracklet]:
    if isinstance(value, (TrackletPrediction, TrackletGroundTruth)):
        value = value.tracks
    elif isinstance(value, dict):
        if "tracks" not in value:
            raise fail(f"a dict without the key 'tracks' (keys: {sorted(map(str, value))})", ["tracks"])
        value = value["tracks"]
    if not isinstance(value, (list, tuple)):
        raise fail(f"got {type(value).__name__}")
    return [_tracklet(item, index, fail, id_required=id_required) for index, item in enumerate(value)]


def tracklets_from_output(output: Any, sample_id: str, *, error: type[ModelError] = AdapterError) -> TrackletPrediction:
    """Normalise a model's tracking output (reference §1.5) to a TrackletPrediction.

    Accepts a TrackletPrediction, a list of Tracklet or of dicts ``{track_id, boxes, scores?}``,
    or ``{"tracks": ...}``. Boxes are reshaped to (T, 4) float32, scores to (T,) float32; a
    missing or null track id becomes ``"t<index>"``. Raises ``error`` (AdapterError by default)
    naming the sample, the track and the bad key or shape.
    """
    def fail(reason: str, missing: list[str] | None = None) -> ModelError:
        return error(
            f"Sample {sample_id!r}: tracking output is not usable: {reason}.",
            hint=f"a tracking model must return {_FORMS}",
            details={"sample": sample_id, **({"missing": missing} if missing else {})},
        )

    return TrackletPrediction(tracks=_tracklets(output, fail, id_required=False))


# --------------------------------------------------------------------------- ground truth


def _tracks_from_mask(mask: np.ndarray) -> list[Tracklet]:
    """One single-step tracklet per instance id > 0: box [min x, min y, max x + 1, max y + 1]."""
    rows, cols = np.nonzero(mask > 0)
    if rows.size == 0:
        return []
    ids = mask[rows, cols]
    order = np.argsort(ids, kind="stable")
    ids, rows, cols = ids[order], rows[order], cols[order]
    unique, starts = np.unique(ids, return_index=True)
    x1, y1 = np.minimum.reduceat(cols, starts), np.minimum.reduceat(rows, starts)
    x2, y2 = np.maximum.reduceat(cols, starts) + 1, np.maximum.reduceat(rows, starts) + 1
    return [
        Tracklet(track_id=str(int(object_id)), boxes=np.array([[x1[k], y1[k], x2[k], y2[k]]], dtype=np.float32))
        for k, object_id in enumerate(unique)
    ]


def load_ground_truth(entry: dict, resolve: PathResolver) -> TrackletGroundTruth:
    """The ground-truth tracks of a manifest entry.

    From ``tracks`` (JSON file path or inline list of ``{track_id, boxes, scores?}``; a dict
    ``{"tracks": [...]}`` is accepted too) when present; else from the instance ``mask`` PNG
    (also when the ``tracks`` file does not exist but a ``mask`` is given, as 0.3.x does).
    Raises ManifestError naming the sample and file when neither key is present, a file is
    missing, unreadable or malformed (a track without ``track_id`` or ``boxes``, boxes not
    (T, 4), scores of another length).
    """
    sample_id = entry["id"]
    tracks_value = entry.get("tracks")
    has_mask = entry.get("mask") is not None
    if tracks_value is None and not has_mask:
        raise ManifestError(
            f"Sample {sample_id!r} has neither 'tracks' nor 'mask'.",
            hint="object_tracking samples need 'tracks' (a JSON file of {track_id, boxes}) or an instance 'mask' PNG",
            details={"sample": sample_id},
        )
    if tracks_value is not None:
        if isinstance(tracks_value, str) and has_mask and not resolve(tracks_value, sample_id, "tracks").exists():
            logger.debug("Sample %r: tracks file %s missing; using the mask", sample_id, tracks_value)
        else:
            source = tracks_value if isinstance(tracks_value, str) else "inline tracks"
            raw = load_json_value(tracks_value, resolve, sample_id, "tracks")

            def fail(reason: str, missing: list[str] | None = None) -> ManifestError:
                return ManifestError(
                    f"Sample {sample_id!r}: tracks ({source}) is malformed: {reason}.",
                    hint="tracks is a JSON list of {\"track_id\": str, \"boxes\": [[x1, y1, x2, y2], ...], \"scores\"?: [...]}",
                    details={"sample": sample_id, "key": "tracks", "path": source, **({"missing": missing} if missing else {})},
                )

            return TrackletGroundTruth(tracks=_tracklets(raw, fail, id_required=True))
    mask = decode_label_map(resolve(entry["mask"], sample_id, "mask"), sample_id, "mask")
    return TrackletGroundTruth(tracks=_tracks_from_mask(mask))


# --------------------------------------------------------------------------- predictions and metric


def validate_prediction(prediction: Any, sample: Sample) -> TrackletPrediction:
    """Return the prediction as a TrackletPrediction with (T, 4) float32 boxes.

    Accepts the forms of :func:`tracklets_from_output`. Raises ModelError naming the sample
    when the type, a key or a shape is wrong.
    """
    return tracklets_from_output(prediction, sample.id, error=ModelError)


def _boxes_at(tracks: list[Tracklet], t: int) -> tuple[list[str], np.ndarray]:
    alive = [track for track in tracks if len(track.boxes) > t]
    return [track.track_id for track in alive], np.array([track.boxes[t] for track in alive], dtype=np.float32).reshape(-1, 4)


def tracking_metrics(prediction: TrackletPrediction, ground_truth: TrackletGroundTruth) -> dict[str, float | None]:
    """``mota``, ``idf1``, ``fp``, ``fn``, ``idsw`` of one sample (reference §1.4, TrackletMetrics).

    T = the longest ground-truth tracklet; T = 0 gives mota 1, idf1 1 and fp/fn/idsw null
    (undefined, not counted). For t in 0..T-1 the boxes at t are row t of every tracklet that
    long (predictions beyond T are ignored). Without predictions at t every ground-truth box
    is a miss; else each prediction, in order, takes the unmatched ground-truth box of highest
    IoU (first on ties) and matches it when IoU >= 0.5; a match is an ID switch when the
    prediction's track id was last matched to another ground-truth track id. FN += #GT_t -
    matches, FP += #pred_t - matches. MOTA = clip(1 - (FN + FP + IDSW) / max(sum #GT_t, 1), -1, 1),
    TP = sum #GT_t - FN, IDF1 = clip(2 TP / max(2 TP + FP + FN, 1), 0, 1).
    Returns floats (None as above). Raises MetricError when an argument has the wrong type.
    """
    if not isinstance(ground_truth, TrackletGroundTruth):
        raise MetricError(
            f"object_tracking metrics expect a TrackletGroundTruth, got {type(ground_truth).__name__}.",
            hint="load ground truth with rpx_tasks.tasks.object_tracking.load_ground_truth",
        )
    if not isinstance(prediction, TrackletPrediction):
        raise MetricError(
            f"object_tracking metrics expect a TrackletPrediction, got {type(prediction).__name__}.",
            hint="validate predictions with rpx_tasks.tasks.object_tracking.validate_prediction first",
        )
    steps = max((len(track.boxes) for track in ground_truth.tracks), default=0)
    if steps == 0:
        return {"mota": 1.0, "idf1": 1.0, "fp": None, "fn": None, "idsw": None}
    fp = fn = idsw = total_gt = 0
    last_gt_of: dict[str, str] = {}
    for t in range(steps):
        gt_ids, gt_boxes = _boxes_at(ground_truth.tracks, t)
        pred_ids, pred_boxes = _boxes_at(prediction.tracks, t)
        total_gt += len(gt_ids)
        if not pred_ids:
            fn += len(gt_ids)
            continue
        iou = box_iou_matrix(pred_boxes, gt_boxes)
        taken = np.zeros(len(gt_ids), dtype=bool)
        matched = 0
        for i, pred_id in enumerate(pred_ids):
            if taken.all():
                continue
            candidates = np.where(taken, -1.0, iou[i])
            j = int(candidates.argmax())
            if candidates[j] < IOU_THRESHOLD:
                continue
            taken[j] = True
            matched += 1
            previous = last_gt_of.get(pred_id)
            if previous is not None and previous != gt_ids[j]:
                idsw += 1
            last_gt_of[pred_id] = gt_ids[j]
        fn += len(gt_ids) - matched
        fp += len(pred_ids) - matched
    mota = min(max(1.0 - (fn + fp + idsw) / max(total_gt, 1), -1.0), 1.0)
    tp = total_gt - fn
    idf1 = min(max(2 * tp / max(2 * tp + fp + fn, 1), 0.0), 1.0)
    return {"mota": float(mota), "idf1": float(idf1), "fp": float(fp), "fn": float(fn), "idsw": float(idsw)}


# --------------------------------------------------------------------------- numpy adapter


def _invoke(fn, sample: Sample):
    return fn(sample.rgb)


def _normalise(output: Any, sample: Sample) -> TrackletPrediction:
    return tracklets_from_output(output, sample.id, error=AdapterError)


def wrap_numpy_function(fn, name: str) -> NumpyFunctionModel:
    """A Model calling ``fn(rgb) -> tracks`` (a TrackletPrediction, a list of Tracklet or of dicts
    ``{track_id, boxes, scores?}``, or ``{"tracks": ...}``); raises AdapterError on other outputs."""
    return NumpyFunctionModel(fn, task=NAME, name=name, invoke=_invoke, normalise=_normalise)


# --------------------------------------------------------------------------- baseline


def colour_blob_tracks(rgb: np.ndarray) -> list[dict[str, Any]]:
    """Weight-free baseline: one single-step track per blob of saturated colour
    (``rpx_tasks.models.colour_blobs``).

    The track id is the blob's hue word (``red``, ``blue``, ...), so an object keeps its id
    from frame to frame; blobs of one frame that share a word get ``-2``, ``-3``, ... in
    left-to-right order. The score is the blob's share of the image. Returns a list of
    ``{track_id, boxes (1, 4), scores (1,)}``; raises AdapterError if ``rgb`` is not (H, W, 3).
    """
    blobs = find_colour_blobs(rgb)
    area = float(rgb.shape[0] * rgb.shape[1])
    seen: dict[str, int] = {}
    tracks = []
    for blob in blobs:
        seen[blob.hue] = seen.get(blob.hue, 0) + 1
        track_id = blob.hue if seen[blob.hue] == 1 else f"{blob.hue}-{seen[blob.hue]}"
        tracks.append({"track_id": track_id, "boxes": np.asarray(blob.box, np.float32).reshape(1, 4), "scores": [blob.pixels / area]})
    return tracks


MODELS = (
    ModelEntry("colour_blob_tracker", NAME, "import", "rpx_tasks.tasks.object_tracking:colour_blob_tracks",
               "weight-free baseline: boxes of saturated-colour blobs, track id from the blob's hue word"),
)


# --------------------------------------------------------------------------- sample data


def sample_entry(frame) -> dict:
    """The object_tracking manifest entry of a built-in sample frame.

    Every entry has the instance ``mask``; frames with an even ``frame_idx`` also get a
    ``tracks`` JSON (one single-step tracklet per listed object, track id ``str(object id)``),
    while odd frames have none, so their ground truth comes from the mask fallback.
    """
    entry = frame.base_entry()
    entry["mask"] = frame.write_png("mask", frame.instances)
    if frame.frame_idx % 2 == 0:
        entry["tracks"] = frame.write_json(
            "tracks", [{"track_id": str(obj.id), "boxes": [[float(v) for v in obj.box]]} for obj in frame.objects]
        )
    return entry


SPEC = TaskSpec(
    name=NAME,
    display_name="Object Tracking",
    modalities=("rgb", "mask", "tracklets"),
    required_keys=(),
    load_ground_truth=load_ground_truth,
    validate_prediction=validate_prediction,
    compute_metrics=tracking_metrics,
    metrics=METRICS,
    primary_metric="mota",
    wrap_numpy_function=wrap_numpy_function,
    numpy_signature="fn(rgb: (H, W, 3) uint8) -> tracks: list of {'track_id': str, 'boxes': (T, 4) [x1, y1, x2, y2], "
    "'scores'?: (T,)} (or a TrackletPrediction, a list of Tracklet, or {'tracks': ...})",
    models=MODELS,
    sample_entry=sample_entry,
)
