"""RPX task ``video_depth``: metric depth for every frame of a (scene, phase) clip, scored per clip.

The unit is one clip (reference §1.4 and §4.2). A manifest entry is a clip::

    {"id": "<scene>__<phase>", "scene_id": "scene017", "phase": 1, "difficulty": "hard",
     "frame_filenames": [...], "depth_filenames": [...], "pose_filenames": [...]   # pose optional
     "frame_indices": [...], "scene_type": "...", "metadata": {...}}                # optional

Each file list holds one name per frame, in clip order: a dataset-root-relative path (contains a
"/"), or a bare file name, looked up in the clip's folder ``scenes/<scene>/<phase index>/`` under
``rgb/``, ``depth/`` and ``cam_pose/`` or ``pose/`` (or the same under ``extracted/``, the Hub's
unpacked shards). When the split is opened the clip becomes one frame entry per frame
(``<clip id>__<stem>``), trimmed by ``--frame-budget N`` / ``--sampling all|stride``, and every
frame's RGB and depth headers are checked before any model is loaded.

Models: ``fn(rgb_seq: (T, H, W, 3) uint8) -> (T, h, w) float32`` metres (each frame resized back to
H x W) receives the whole clip at once, so the clip is decoded whole (memory O(T x H x W), capped
by ``--frame-budget``); a factory model (``task = "video_depth"``, ``predict(batch)`` of
consecutive frames of one clip, optional ``reset()`` called before each clip, optional
``whole_clip = True`` to receive each clip as one batch) streams instead, and so do the registry
models and the ``--hf-checkpoint`` fast path (the image-depth fast path run frame by frame).

Metrics (``rpx_tasks.metrics.video_depth``): absrel (primary), rmse, silog, delta1..3, tgm, tgse
and, with ``--fscore``, fscore_5cm; one row per clip with its ``num_frames``. ``--alignment``
fits one scale and shift per clip over all its frames (then the clip's predictions are held until
its last frame: O(T x H x W) float32).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from rpx_tasks.constants import PHASES
from rpx_tasks.contracts.clips import ClipUnit
from rpx_tasks.contracts.sample_frame import SampleFrame
from rpx_tasks.contracts.spec import ModelEntry, PathResolver, TaskSpec
from rpx_tasks.entry_checks import field_error
from rpx_tasks.errors import AdapterError
from rpx_tasks.metrics.video_depth import VIDEO_DEPTH_METRIC_INFO, ClipDepthScores, video_depth_metrics
from rpx_tasks.sample import Sample
from rpx_tasks.tasks._depth_maps import (
    align_depth,
    check_depth_entry,
    depth_from_output,
    load_depth_map,
    validate_depth_map,
)
from rpx_tasks.tasks.monocular_depth import MODELS as IMAGE_DEPTH_MODELS

NAME = "video_depth"
SIGNATURE = (
    "fn(rgb_seq: (T, H, W, 3) uint8) -> depth_seq: (T, h, w) float32 metres (each frame resized to H x W); "
    "or a factory model predicting frame batches of one clip, with an optional reset() per clip"
)
FILE_LISTS = (("frame_filenames", "rgb", ("rgb",)), ("depth_filenames", "depth", ("depth",)))
POSE_LIST = ("pose_filenames", "pose", ("cam_pose", "pose"))
_LIST_HINT = "a video_depth entry lists one file per frame: frame_filenames and depth_filenames of one length"


# --------------------------------------------------------------------------- clips -> frames


def _phase_folder(entry: dict) -> str | None:
    phase = entry.get("phase")
    if isinstance(phase, int) and not isinstance(phase, bool):
        return str(phase)
    if isinstance(phase, str):
        return phase if phase.isdigit() else (str(PHASES.index(phase)) if phase in PHASES else None)
    return None


def _file_list(entry: dict, key: str) -> list[str]:
    value = entry.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(name, str) and name for name in value):
        raise field_error(entry["id"], key, value, "is not a non-empty list of file names", _LIST_HINT)
    return value


def _locate(name: str, entry: dict, key: str, folders: tuple[str, ...], resolve: PathResolver) -> str:
    """The root-relative path of one listed file: the name itself when it is a path, else the first of the
    clip's candidate folders holding it (the first candidate when none does: the checks then name it)."""
    if "/" in name:
        return name
    scene = entry.get("scene_id") or entry.get("scene")
    phase = _phase_folder(entry)
    if not isinstance(scene, str) or phase is None:
        raise field_error(
            entry["id"],
            key,
            name,
            "is a bare file name, but the entry has no scene_id and phase to find its clip folder",
            "give root-relative paths, or scene_id and phase",
        )
    candidates = [
        f"{prefix}scenes/{scene}/{phase}/{folder}/{name}" for prefix in ("", "extracted/") for folder in folders
    ]
    for candidate in candidates:
        if resolve(candidate, entry["id"], key).is_file():
            return candidate
    return candidates[0]


def _frame_indices(entry: dict, length: int) -> list[int] | None:
    """The clip's ``frame_indices`` (None when absent). Raises ManifestError unless a list of ``length``
    non-negative integers."""
    indices = entry.get("frame_indices")
    if indices is None:
        return None
    if (
        not isinstance(indices, list)
        or len(indices) != length
        or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in indices)
    ):
        raise field_error(
            entry["id"],
            "frame_indices",
            indices,
            f"is not a list of {length} non-negative integers (one per frame)",
            "frame_indices lists each frame's index in the recording, or leave it out",
        )
    return indices


def _frame_index(indices: list[int] | None, position: int, stem: str) -> int:
    if indices is not None:
        return indices[position]
    return int(stem) if stem.isascii() and stem.isdigit() else position


def expand_clip(entry: dict, resolve: PathResolver) -> list[dict]:
    """The frame entries of one clip entry, in clip order: ``id`` ``<clip id>__<stem>``, ``rgb``, ``depth``,
    ``pose`` (when listed), the clip's scene, phase, difficulty and metadata, and ``frame_idx``.

    Raises ManifestError naming the clip and the field when a file list is missing, empty, not a list
    of names, or of another length than ``frame_filenames``.
    """
    lists = {key: _file_list(entry, key) for key, _, _ in FILE_LISTS}
    if entry.get("pose_filenames") is not None:
        lists["pose_filenames"] = _file_list(entry, "pose_filenames")
    length = len(lists["frame_filenames"])
    for key, names in lists.items():
        if len(names) != length:
            raise field_error(
                entry["id"],
                key,
                f"{len(names)} names",
                f"lists another number of frames than frame_filenames ({length})",
                _LIST_HINT,
            )
    indices = _frame_indices(entry, length)
    metadata = entry.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise field_error(entry["id"], "metadata", metadata, "is not an object", "give 'metadata' as a JSON object")
    shared = {key: entry[key] for key in ("scene_id", "scene", "phase", "difficulty", "scene_type") if key in entry}
    frames = []
    for position, rgb_name in enumerate(lists["frame_filenames"]):
        stem = Path(rgb_name).stem
        frame = {**shared, "id": f"{entry['id']}__{stem}", "frame_idx": _frame_index(indices, position, stem)}
        for key, field, folders in (*FILE_LISTS, POSE_LIST):
            if key in lists:
                frame[field] = _locate(lists[key][position], entry, key, folders, resolve)
        frame["metadata"] = dict(metadata or {})
        frames.append(frame)
    return frames


def clip_entry(frames: list[dict]) -> dict:
    """The built-in sample data's clip entry from its frame entries (in clip order): Hub form, root-relative paths."""
    first = frames[0]
    scene, phase = first["scene_id"], first["phase"]
    return {
        "id": f"{scene}__{phase}",
        "scene_id": scene,
        "phase": phase,
        "difficulty": first["difficulty"],
        "scene_type": "multi_object",
        "frame_filenames": [frame["rgb"] for frame in frames],
        "depth_filenames": [frame["depth"] for frame in frames],
        "pose_filenames": [frame["pose"] for frame in frames],
        "frame_indices": [frame["frame_idx"] for frame in frames],
        "metadata": {"scene_id": scene, "phase_idx": phase, "n_frames": len(frames)},
    }


def sample_entry(frame: SampleFrame) -> dict:
    """One built-in sample frame as a frame entry; ``clip_entry`` groups a clip's into its manifest entry."""
    return {**frame.base_entry(), "depth": frame.paths["depth"], "pose": frame.paths["pose"]}


# --------------------------------------------------------------------------- models and scoring


def validate_prediction(prediction: Any, sample: Sample) -> np.ndarray:
    """One frame's prediction as (H, W) float32 metres; ModelError naming the frame when it is not."""
    return validate_depth_map(prediction, sample, NAME)


def normalise_function_output(output: Any, sample: Sample) -> np.ndarray:
    """One frame of a numpy clip function's output as (H, W) float32 metres (bilinearly resized)."""
    return depth_from_output(output, sample, SIGNATURE)


def call_on_clip(fn: Callable[..., Any], frames: list[Sample]) -> list[Any]:
    """Call ``fn`` once on the stacked frames of one whole clip; return its output split per frame.

    Accepts (T, h, w), (T, 1, h, w) and (T, h, w, 1). Raises AdapterError naming the clip's first frame
    when the output is not such an array or has another number of frames.
    """
    output = fn(np.stack([sample.rgb for sample in frames]))
    try:
        depth = np.asarray(output, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise AdapterError(
            f"Clip of sample {frames[0].id!r}: the video depth function returned {type(output).__name__}, "
            "not an array of numbers.",
            hint=f"the function must be {SIGNATURE}",
        ) from exc
    if depth.ndim == 4 and 1 in (depth.shape[1], depth.shape[-1]):
        depth = depth[:, 0] if depth.shape[1] == 1 else depth[..., 0]
    if depth.ndim != 3 or depth.shape[0] != len(frames):
        raise AdapterError(
            f"Clip of sample {frames[0].id!r}: the video depth function returned shape {depth.shape} for "
            f"{len(frames)} frames; expected (T={len(frames)}, h, w).",
            hint=f"the function must be {SIGNATURE}",
        )
    return list(depth)


class VideoDepthClipScoring:
    """Scores one clip (``contracts.clips.ClipScoring``): streaming without alignment (one previous frame
    kept); with an alignment the clip's frames are held, one fit is made over all of them at the end."""

    def __init__(self, alignment: str, fscore: bool) -> None:
        self._alignment = alignment
        self._fscore = fscore
        self._streaming = ClipDepthScores(fscore=fscore) if alignment == "none" else None
        self._held: list[tuple[np.ndarray, np.ndarray]] = []

    def add(self, prediction: np.ndarray, ground_truth: np.ndarray) -> None:
        """Fold in the next frame's validated prediction and its GT depth. Raises MetricError on shape mismatch."""
        if self._streaming is not None:
            self._streaming.add(prediction, ground_truth)
        else:
            self._held.append((prediction, ground_truth))

    def finish(self) -> tuple[dict[str, float | None], dict[str, float | None] | None]:
        """The clip's metrics, and its alignment fit (None when the run does not align)."""
        if self._streaming is not None:
            return self._streaming.result(), None
        predictions = np.stack([pred for pred, _ in self._held])
        ground_truth = np.stack([gt for _, gt in self._held])
        self._held = []
        aligned, fit = align_depth(predictions, ground_truth, self._alignment)
        return video_depth_metrics(aligned, ground_truth, fscore=self._fscore), fit


MODELS = (
    ModelEntry(
        "video_ground_plane_prior",
        NAME,
        "import",
        "rpx_tasks.models.video_depth:GroundPlaneVideo",
        "weight-free baseline: the ground-plane depth of a level camera, frame by frame (streams)",
    ),
    ModelEntry(
        "video_constant_depth",
        NAME,
        "import",
        "rpx_tasks.models.video_depth:constant_clip_depth",
        "weight-free baseline: 2 m everywhere, as a numpy function of the whole clip (holds the clip)",
    ),
    # Every image-depth HF model of monocular_depth, run frame by frame (its alignment default kept).
    *(
        ModelEntry(
            f"video_{entry.name}",
            NAME,
            "hf",
            entry.target,
            f"{entry.description}; frame by frame",
            alignment=entry.alignment,
        )
        for entry in IMAGE_DEPTH_MODELS
        if entry.kind == "hf"
    ),
)

SPEC = TaskSpec(
    name=NAME,
    display_name="Video Absolute Depth",
    modalities=("rgb", "depth"),
    optional_modalities=("pose",),
    required_keys=("frame_filenames", "depth_filenames"),
    load_ground_truth=load_depth_map,
    check_entry=check_depth_entry,
    validate_prediction=validate_prediction,
    compute_metrics=video_depth_metrics,
    metrics=VIDEO_DEPTH_METRIC_INFO,
    primary_metric="absrel",
    phi_metrics=("absrel", "rmse", "delta1", "silog", "tgm", "tgse"),
    numpy_signature=SIGNATURE,
    numpy_inputs=("rgb_seq",),
    numpy_normalise=normalise_function_output,
    hf_loader="rpx_tasks.models.video_depth:load_hf_video_depth_model",
    models=MODELS,
    sample_entry=sample_entry,
    align_prediction=align_depth,
    clip=ClipUnit(
        expand=expand_clip,
        scoring=VideoDepthClipScoring,
        numpy_invoke=call_on_clip,
        sample_clip_entry=clip_entry,
        frame_keys=("depth",),
    ),
)
