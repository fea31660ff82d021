"""RPX task ``object_tracking``: boxes with track ids, scored by a simplified MOTA / IDF1.

Ground truth and predictions are lists of :class:`Tracklet` s, each a track id and one box per
time step. A manifest entry gives the ground truth as ``tracks``, a JSON file (or inline list)
of ``{track_id, boxes: [[x1, y1, x2, y2], ...], scores?}``; without ``tracks`` it is derived
from the instance ``mask`` (reference §1.4, 0.3.x): one single-step tracklet per instance id
> 0 with box [min x, min y, max x + 1, max y + 1] and track id ``str(id)``. The metrics are
``metrics.tracking.tracking_metrics``; the weight-free baseline is
``models.box_baselines.colour_blob_tracks``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from rpx_tasks.contracts.boxes import label_text
from rpx_tasks.contracts.sample_frame import SampleFrame
from rpx_tasks.contracts.spec import ModelEntry, PathResolver, TaskSpec
from rpx_tasks.contracts.tracking import Tracklet, TrackletGroundTruth, TrackletPrediction
from rpx_tasks.decoding import decode_label_map, load_json_value
from rpx_tasks.entry_checks import ImageSize, check_label_map
from rpx_tasks.errors import AdapterError, ManifestError, ModelError
from rpx_tasks.metrics.tracking import TRACKING_METRIC_INFO, tracking_metrics
from rpx_tasks.sample import Sample

logger = logging.getLogger("rpx_tasks.tasks.object_tracking")

NAME = "object_tracking"


# --------------------------------------------------------------------------- parsing tracks

_FORMS = (
    "a TrackletPrediction, a list of Tracklet, a list of dicts {'track_id', 'boxes' (T, 4), 'scores'?} "
    "or a dict {'tracks': that list}"
)


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
    elif id_required and not (label_text(track_id) or "").strip():
        raise fail(f"track {index} has track_id {track_id!r}, not a non-empty string (or an integer)")
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


def _uses_mask(entry: dict, resolve: PathResolver) -> bool:
    """Whether an entry's ground truth comes from its instance ``mask``: it has no ``tracks``, or names a
    tracks file that is not there while it has a mask (as 0.3.x does).

    Raises ManifestError naming the sample when it has neither key.
    """
    sample_id = entry["id"]
    tracks_value = entry.get("tracks")
    has_mask = entry.get("mask") is not None
    if tracks_value is None and not has_mask:
        raise ManifestError(
            f"Sample {sample_id!r} has neither 'tracks' nor 'mask'.",
            hint="object_tracking samples need 'tracks' (a JSON file of {track_id, boxes}) or an instance 'mask' PNG",
            details={"sample": sample_id, "key": "tracks", "value": None},
        )
    if tracks_value is None:
        return True
    if isinstance(tracks_value, str) and has_mask and not resolve(tracks_value, sample_id, "tracks").exists():
        logger.debug("Sample %r: tracks file %s missing; using the mask", sample_id, tracks_value)
        return True
    return False


def _check_ground_truth_tracks(tracks: list[Tracklet], fail) -> None:
    """Track ids unique and every box [x1, y1, x2, y2] with x2 >= x1 and y2 >= y1; ``fail(reason)`` builds the error."""
    seen: set[str] = set()
    for index, track in enumerate(tracks):
        if track.track_id in seen:
            raise fail(f"track {index} repeats track_id {track.track_id!r}")
        seen.add(track.track_id)
        inverted = (track.boxes[:, 2] < track.boxes[:, 0]) | (track.boxes[:, 3] < track.boxes[:, 1])
        if inverted.any():
            row = int(inverted.argmax())
            raise fail(
                f"track {index} ({track.track_id!r}) box {row} {track.boxes[row].tolist()} has x2 < x1 or y2 < y1"
            )


def _load_tracks(entry: dict, resolve: PathResolver) -> TrackletGroundTruth:
    """The ground-truth tracks of an entry's ``tracks`` (JSON file path, inline list, or ``{"tracks": [...]}``).

    Raises ManifestError naming the sample and file when the file is missing or unreadable or a
    track is malformed: no ``track_id`` (a non-empty string or an integer) or ``boxes``, boxes not
    (T, 4) finite numbers with x2 >= x1 and y2 >= y1, scores of another length, a repeated track id.
    """
    sample_id = entry["id"]
    tracks_value = entry["tracks"]
    source = tracks_value if isinstance(tracks_value, str) else "inline tracks"
    raw = load_json_value(tracks_value, resolve, sample_id, "tracks")

    def fail(reason: str, missing: list[str] | None = None) -> ManifestError:
        return ManifestError(
            f"Sample {sample_id!r}: tracks ({source}) is malformed: {reason}.",
            hint="tracks is a JSON list of "
            '{"track_id": str, "boxes": [[x1, y1, x2, y2], ...], "scores"?: [...]}, one track id per track',
            details={
                "sample": sample_id,
                "key": "tracks",
                "path": source,
                **({"missing": missing} if missing else {}),
            },
        )

    tracks = _tracklets(raw, fail, id_required=True)
    _check_ground_truth_tracks(tracks, fail)
    return TrackletGroundTruth(tracks=tracks)


def load_ground_truth(entry: dict, resolve: PathResolver) -> TrackletGroundTruth:
    """The ground-truth tracks of a manifest entry.

    From ``tracks`` (JSON file path or inline list of ``{track_id, boxes, scores?}``; a dict
    ``{"tracks": [...]}`` is accepted too) when present; else from the instance ``mask`` PNG
    (also when the ``tracks`` file does not exist but a ``mask`` is given, as 0.3.x does).
    Raises ManifestError naming the sample and file when neither key is present, a file is
    missing, unreadable or malformed (see ``_load_tracks``).
    """
    if not _uses_mask(entry, resolve):
        return _load_tracks(entry, resolve)
    mask = decode_label_map(resolve(entry["mask"], entry["id"], "mask"), entry["id"], "mask")
    return TrackletGroundTruth(tracks=_tracks_from_mask(mask))


def check_entry(entry: dict, resolve: PathResolver, rgb_size: ImageSize) -> None:
    """Check an entry when the split is opened: its ``tracks`` load (see ``_load_tracks``), or, where the
    ground truth comes from the mask, the ``mask`` is a single-channel image of the RGB frame's size
    (header only). Raises ManifestError naming the sample, the field and its value."""
    if _uses_mask(entry, resolve):
        check_label_map(entry, "mask", resolve, rgb_size)
    else:
        _load_tracks(entry, resolve)


# --------------------------------------------------------------------------- predictions


def validate_prediction(prediction: Any, sample: Sample) -> TrackletPrediction:
    """Return the prediction as a TrackletPrediction with (T, 4) float32 boxes.

    Accepts the forms of :func:`tracklets_from_output`. Raises ModelError naming the sample
    when the type, a key or a shape is wrong.
    """
    return tracklets_from_output(prediction, sample.id, error=ModelError)


def normalise_function_output(output: Any, sample: Sample) -> TrackletPrediction:
    """A numpy tracking function's ``tracks`` (a TrackletPrediction, a list of Tracklet or of dicts
    ``{track_id, boxes, scores?}``, or ``{"tracks": ...}``) as a TrackletPrediction, as
    :func:`tracklets_from_output` normalises it. Raises AdapterError naming the sample on other outputs."""
    return tracklets_from_output(output, sample.id, error=AdapterError)


MODELS = (
    ModelEntry(
        "colour_blob_tracker",
        NAME,
        "import",
        "rpx_tasks.models.box_baselines:colour_blob_tracks",
        "weight-free baseline: boxes of saturated-colour blobs, track id from the blob's hue word",
    ),
)


# --------------------------------------------------------------------------- sample data


def sample_entry(frame: SampleFrame) -> dict:
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
    check_entry=check_entry,
    validate_prediction=validate_prediction,
    compute_metrics=tracking_metrics,
    metrics=TRACKING_METRIC_INFO,
    primary_metric="mota",
    phi_metrics=("mota", "idf1"),
    numpy_normalise=normalise_function_output,
    numpy_signature="fn(rgb: (H, W, 3) uint8) -> tracks: list of {'track_id': str, 'boxes': (T, 4) [x1, y1, x2, y2], "
    "'scores'?: (T,)} (or a TrackletPrediction, a list of Tracklet, or {'tracks': ...})",
    models=MODELS,
    sample_entry=sample_entry,
)
