"""RPX task ``novel_view_synthesis``: render a frame of the clip from another camera pose.

A sample is a **source** frame with its pose and a **target** frame with its pose, two frames of
one (scene, phase) clip. Manifest entries (reference §4.2, Hub and local alike):

- ``rgb``: the source frame; ``pose``: its T265 pose file (``.npz`` position + x, y, z, w
  orientation, or a ``.npy`` 7-vector), camera->world;
- ``target_rgb``: the target frame, the same size as the source (scored, never shown to models);
- ``target_pose`` (or ``camera_pose``, the reference's other name): the target camera's pose, a
  pose file like ``pose`` or an inline 4x4 camera->world matrix in the same T265 axes;
- ``depth`` (optional): the source frame's 16-bit millimetre depth, an input of depth-based models.

Hub manifests pair the frames of a clip at the relative-pose stride, with the pair id
``<scene>__<phase>__<stemA>__<stemB>`` (``tasks._pairs``); the built-in sample data does the
same (its ``PAIR_STRIDE``). Every entry's fields are checked when the split is opened: both
poses finite 4x4 (files decode, inline matrices have shape (4, 4)), the target frame and the
depth readable and of the source frame's size.

Models receive both poses as 4x4 float64 camera->world matrices in the RGB camera's **OpenCV
axes** (x right, y down, z forward): ``S P S`` with ``S = diag(1, -1, -1, 1)`` of the stored T265
pose (``contracts.pose.t265_to_opencv``), as relative_camera_pose does, so that
``inv(target_pose) @ source_pose`` maps source-camera points into the target camera.

Numpy models: ``fn(rgb, source_pose, target_pose) -> (H, W, 3) uint8`` (a function with a
``source_depth`` parameter also gets the source depth, (H, W) float32 metres or None); the
reference's original ``fn(rgb, target_pose)`` is accepted too (chosen when the function cannot
take three positional inputs or its second parameter is called ``target_pose``). Outputs that
are not uint8 are clipped to 0-255 and cast; a wrong size is bilinearly resized to the target
frame; a sample without a target pose is an AdapterError.

Metrics (``rpx_tasks.metrics.view_synthesis``): ``psnr`` (primary, higher is better), ``mse``,
``ssim`` (the reference's global single-window SSIM) and ``ssim_windowed`` (scikit-image's
Gaussian windowed SSIM). The weight-free baseline ``depth_reprojection`` re-projects the source
frame through its depth into the target camera, and is the identity without depth
(``rpx_tasks.models.view_synthesis_baselines``).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np
from PIL import Image

from rpx_tasks.contracts.pose import t265_to_opencv
from rpx_tasks.contracts.sample_frame import SampleFrame
from rpx_tasks.contracts.spec import ModelEntry, PathResolver, TaskSpec
from rpx_tasks.contracts.view_synthesis import NovelView
from rpx_tasks.decoding import decode_depth_m, decode_pose, decode_rgb
from rpx_tasks.entry_checks import ImageSize, check_label_map, field_error, image_size
from rpx_tasks.errors import AdapterError, ModelError
from rpx_tasks.metrics.view_synthesis import VIEW_SYNTHESIS_METRIC_INFO, view_synthesis_metrics
from rpx_tasks.sample import Sample
from rpx_tasks.tasks._pairs import pair_entry

NAME = "novel_view_synthesis"
TARGET_POSE_KEYS = ("target_pose", "camera_pose")

_SIGNATURE = (
    "fn(rgb: (H, W, 3) uint8, source_pose: (4, 4), target_pose: (4, 4)) -> (H, W, 3) uint8, poses camera->world "
    "in OpenCV axes (x right, y down, z forward); an optional 'source_depth' parameter gets (H, W) float32 "
    "metres or None; fn(rgb, target_pose) is accepted too"
)
_POSE_HINT = (
    "target_pose / camera_pose is a pose file (.npz position + orientation xyzw, or .npy [x,y,z,qx,qy,qz,qw]) "
    "or an inline 4x4 camera->world matrix"
)


# --------------------------------------------------------------------------- ground truth


def _target_pose(entry: dict, resolve: PathResolver) -> np.ndarray:
    """The target camera's 4x4 float64 camera->world pose (T265 axes) of an entry. Raises ManifestError."""
    sample_id = entry["id"]
    key = next((name for name in TARGET_POSE_KEYS if entry.get(name) is not None), None)
    if key is None:
        raise field_error(sample_id, "target_pose", None, "is missing; the task needs the target camera", _POSE_HINT)
    value = entry[key]
    if isinstance(value, str):
        return decode_pose(resolve(value, sample_id, key), sample_id, key)
    try:
        matrix = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        matrix = None
    if matrix is None or matrix.shape != (4, 4) or not np.isfinite(matrix).all():
        raise field_error(sample_id, key, value, "is not a finite 4x4 matrix", _POSE_HINT)
    return matrix


def load_ground_truth(entry: dict, resolve: PathResolver) -> NovelView:
    """The target frame, the target camera's pose and the source depth (when given) of a manifest entry.

    Returns a NovelView (target_rgb (H, W, 3) uint8, target_pose (4, 4) float64 T265
    camera->world, source_depth (H, W) float32 metres or None). Raises ManifestError naming the
    sample and the field when a file is missing or unreadable or the target pose is malformed.
    """
    sample_id = entry["id"]
    target_rgb = decode_rgb(resolve(entry["target_rgb"], sample_id, "target_rgb"), sample_id, "target_rgb")
    depth = entry.get("depth")
    source_depth = decode_depth_m(resolve(depth, sample_id, "depth"), sample_id) if depth is not None else None
    return NovelView(target_rgb=target_rgb, target_pose=_target_pose(entry, resolve), source_depth=source_depth)


def check_entry(entry: dict, resolve: PathResolver, rgb_size: ImageSize) -> None:
    """Check an entry when the split is opened: the target pose is a finite 4x4 (file or inline), the
    target frame and the optional depth are readable images of the source frame's size (headers only;
    the source ``pose`` file is decoded by the common checks). Raises ManifestError naming the sample,
    the field and its value."""
    _target_pose(entry, resolve)
    size = image_size(entry, "target_rgb", resolve)
    if size != rgb_size:
        raise field_error(
            entry["id"],
            "target_rgb",
            entry["target_rgb"],
            f"is {size[0]}x{size[1]} (HxW), the source frame {rgb_size[0]}x{rgb_size[1]}",
            hint="the source and target frames of a sample come from one camera: give them one size",
        )
    if entry.get("depth") is not None:
        check_label_map(entry, "depth", resolve, rgb_size)


# --------------------------------------------------------------------------- predictions


def _target(sample: Sample) -> NovelView:
    if not isinstance(sample.ground_truth, NovelView):
        raise AdapterError(
            f"Sample {sample.id!r}: {NAME} needs a NovelView target, got {type(sample.ground_truth).__name__}.",
            hint="load samples through the task (SPEC.load_ground_truth)",
        )
    return sample.ground_truth


def validate_prediction(prediction: Any, sample: Sample) -> np.ndarray:
    """Return the prediction, an (H, W, 3) uint8 image of the target frame's size.

    Raises ModelError naming the sample when it is not an ndarray, not (H, W, 3) of that size, or not uint8.
    """
    hint = f"check your model's predict() return type for {NAME}: one (H, W, 3) uint8 image per sample"
    if not isinstance(prediction, np.ndarray):
        raise ModelError(
            f"Sample {sample.id!r}: expected an (H, W, 3) uint8 image, got {type(prediction).__name__}.", hint=hint
        )
    expected = sample.ground_truth.target_rgb.shape if isinstance(sample.ground_truth, NovelView) else sample.rgb.shape
    if prediction.shape != expected:
        raise ModelError(
            f"Sample {sample.id!r}: the predicted view is {prediction.shape}, the target frame {expected}.",
            hint="return the view at the target frame's resolution, (H, W, 3)",
            details={"sample": sample.id, "shape": list(prediction.shape)},
        )
    if prediction.dtype != np.uint8:
        raise ModelError(
            f"Sample {sample.id!r}: the predicted view's dtype is {prediction.dtype}, expected uint8.",
            hint="return 0-255 uint8 colours (np.clip(x, 0, 255).astype(np.uint8))",
            details={"sample": sample.id},
        )
    return prediction


def _opencv_poses(sample: Sample, need_source: bool) -> tuple[np.ndarray | None, np.ndarray]:
    target = _target(sample).target_pose
    if target is None:
        raise AdapterError(
            f"Sample {sample.id!r}: {NAME} needs the target camera pose, but the sample has none.",
            hint="give every manifest entry a 'target_pose' (or 'camera_pose'): a pose file or a 4x4 matrix",
            details={"sample": sample.id, "key": "target_pose"},
        )
    if need_source and sample.camera_pose is None:
        raise AdapterError(
            f"Sample {sample.id!r}: fn(rgb, source_pose, target_pose) needs the source pose, but the sample has none.",
            hint="give every manifest entry a 'pose' file (the source frame's camera pose)",
            details={"sample": sample.id, "key": "pose"},
        )
    source = t265_to_opencv(sample.camera_pose) if need_source else None
    return source, t265_to_opencv(target)


def _parameters(fn: Callable[..., Any]) -> list[inspect.Parameter] | None:
    try:
        return list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None


def takes_target_pose_only(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` has the reference's original signature ``fn(rgb, target_pose)``: it cannot take three
    positional inputs, or its second positional parameter is called ``target_pose``. An unreadable
    signature counts as the three-input form. Raises nothing."""
    params = _parameters(fn)
    if params is None:
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) >= 2 and positional[1].name == "target_pose":
        return True
    return len(positional) < 3 and not any(p.kind is p.VAR_POSITIONAL for p in params)


def call_function(fn: Callable[..., Any], sample: Sample) -> Any:
    """Call a numpy view-synthesis function on one sample, in the form its signature asks for.

    ``fn(rgb, source_pose, target_pose)`` (plus ``source_depth=`` when it has a parameter of that
    name), or ``fn(rgb, target_pose)`` (:func:`takes_target_pose_only`); poses in OpenCV axes.
    Raises AdapterError naming the sample when the target pose (or, for the three-input form, the
    source pose) is missing.
    """
    if takes_target_pose_only(fn):
        return fn(sample.rgb, _opencv_poses(sample, need_source=False)[1])
    source, target = _opencv_poses(sample, need_source=True)
    params = _parameters(fn) or []
    if any(p.name == "source_depth" and p.kind is not p.POSITIONAL_ONLY for p in params):
        return fn(sample.rgb, source, target, source_depth=_target(sample).source_depth)
    return fn(sample.rgb, source, target)


def normalise_function_output(output: Any, sample: Sample) -> np.ndarray:
    """A numpy view-synthesis function's output as an (H, W, 3) uint8 image of the target frame's size.

    Values that are not uint8 are clipped to 0-255 and cast; a different (h, w) is bilinearly
    resized. Raises AdapterError naming the sample when it is not an (h, w, 3) array of finite numbers.
    """
    hint = f"the function must be {_SIGNATURE}"
    try:
        image = np.asarray(output)
    except (TypeError, ValueError):
        image = None
    if image is None or not (np.issubdtype(image.dtype, np.number) or image.dtype == np.bool_):
        raise AdapterError(
            f"Sample {sample.id!r}: the view function returned {type(output).__name__}, not an image array.", hint=hint
        )
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        raise AdapterError(
            f"Sample {sample.id!r}: the view function must return an (H, W, 3) image, got shape {image.shape}.",
            hint=hint,
        )
    if image.dtype != np.uint8:
        if not np.isfinite(image).all():
            raise AdapterError(f"Sample {sample.id!r}: the view function returned NaN or inf.", hint=hint)
        image = np.clip(image, 0, 255).astype(np.uint8)
    height, width = _target(sample).target_rgb.shape[:2]
    if image.shape[:2] != (height, width):
        image = np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((width, height), Image.BILINEAR))
    return image


MODELS = (
    ModelEntry(
        "depth_reprojection",
        NAME,
        "import",
        "rpx_tasks.models.view_synthesis_baselines:reproject_source",
        "weight-free baseline: the source frame re-projected through its depth into the target pose "
        "(the source frame as is when there is no depth)",
    ),
    ModelEntry(
        "copy_source",
        NAME,
        "import",
        "rpx_tasks.models.view_synthesis_baselines:copy_source",
        "weight-free baseline: the view does not change (the source frame)",
    ),
)


# --------------------------------------------------------------------------- sample data


def sample_entry(frame: SampleFrame) -> dict | None:
    """The pair (``frame``, ``frame.later``) as a manifest entry; None on a clip's last frame.

    The source is ``frame`` (``rgb``, ``pose``, ``depth``), the target ``frame.later``
    (``target_rgb``, ``target_pose``: its own pose file); the id has the Hub pair form.
    """
    later = frame.later
    if later is None:
        return None
    keys = {"pose": frame.paths["pose"], "depth": frame.paths["depth"], "target_pose": later.paths["pose"]}
    return pair_entry(frame, later, keys, second_frame_key="target_rgb")


SPEC = TaskSpec(
    name=NAME,
    display_name="Novel View Synthesis",
    modalities=("rgb", "depth", "pose"),
    required_keys=("target_rgb", "pose"),
    load_ground_truth=load_ground_truth,
    check_entry=check_entry,
    validate_prediction=validate_prediction,
    compute_metrics=view_synthesis_metrics,
    metrics=VIEW_SYNTHESIS_METRIC_INFO,
    primary_metric="psnr",
    numpy_signature=_SIGNATURE,
    numpy_invoke=call_function,
    numpy_inputs=("rgb", "source_pose", "target_pose"),
    numpy_optional_inputs=("source_depth",),
    numpy_legacy_inputs=("rgb", "target_pose"),
    numpy_normalise=normalise_function_output,
    models=MODELS,
    sample_entry=sample_entry,
)
