"""RPX task ``relative_camera_pose``: the camera motion between two frames of a clip.

Ground truth (reference §1.4, 0.3.x construction), for Hub and local manifests alike. A
manifest entry names two T265 pose files, ``pose_a`` and ``pose_b`` (``.npz`` with ``position``
and an ``orientation`` quaternion in x, y, z, w order, or a ``.npy`` 7-vector
[x, y, z, qx, qy, qz, qw]), each decoded to a 4x4 camera->world matrix P in the T265 body axes
(x right, y up, z backward). Both are first converted to the RGB camera's **OpenCV axes** (x
right, y down, z forward): ``P' = S P S`` with ``S = diag(1, -1, -1, 1)``
(``contracts.pose.t265_to_opencv``); the ground truth is ``T_rel = inv(P'_a) @ P'_b``.

Prediction convention: **the pose of frame B's camera in frame A's camera axes, OpenCV axes**
(x right, y down, z forward, as an image-based model sees the motion): ``rotation`` a (3, 3)
matrix or a (4,) x, y, z, w quaternion, ``translation`` (3,) in metres, so that a point X_B in
B's camera coordinates is ``rotation @ X_B + translation`` in A's. A camera that turns right
(yaw) has a rotation of +angle about y, one that tilts up (pitch) +angle about x, one that rolls
clockwise as seen from behind +angle about z; moving forward is a positive z translation.

Why 0.3.x's axes and not the CLI era's (inv(P_a) @ P_b in the raw T265 axes): a model that
estimates motion from the two images answers in the camera's axes; scored in the T265 axes,
a perfect answer would show rotation errors of several degrees and translation angles above
100 degrees. This is one of the differences from the CLI era listed in the README.

Quaternions: ONE order everywhere, **x, y, z, w** as the data stores it (the reference's
deliberate difference from upstream, whose metric read predictions as w, x, y, z). A (4,)
rotation in a prediction (or ground truth) is x, y, z, w and is normalised first.

Metrics per sample (all lower is better; primary ``rotation_error_deg``): ``rotation_error_deg``,
``translation_error_m``, ``translation_angular_deg`` and ``pose_error_max_deg``, computed by
``rpx_tasks.metrics.pose``, whose docstring gives the formulas.

Models: ``fn(rgb_a, rgb_b) -> {"rotation": (3, 3) or (4,) xyzw, "translation": (3,)}`` or a
``(rotation, translation)`` tuple (float64), or any Model whose ``predict`` returns
:class:`RelativePose` objects, such dicts or tuples. There is no HF fast path; the weight-free
baselines are in ``rpx_tasks.models.pose_baselines``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from rpx_tasks.contracts.pose import (
    _QUATERNION_SHAPES,
    RelativePose,
    quaternion_xyzw_to_matrix,
    relative_pose,
    t265_to_opencv,
)
from rpx_tasks.contracts.sample_frame import SampleFrame
from rpx_tasks.contracts.spec import ModelEntry, PathResolver, TaskSpec
from rpx_tasks.decoding import decode_pose
from rpx_tasks.entry_checks import ImageSize, second_frame_size
from rpx_tasks.errors import AdapterError, ManifestError, ModelError, RPXError
from rpx_tasks.metrics.pose import POSE_METRIC_INFO, pose_metrics
from rpx_tasks.sample import Sample, second_frame
from rpx_tasks.tasks._pairs import pair_entry

NAME = "relative_camera_pose"

_SIGNATURE = (
    "fn(rgb_a: (H, W, 3) uint8, rgb_b: (H, W, 3) uint8) -> {'rotation': (3, 3) matrix or (4,) quaternion "
    "x, y, z, w, 'translation': (3,) metres} or a (rotation, translation) tuple: the pose of frame B's camera "
    "in frame A's camera axes, OpenCV axes (x right, y down, z forward)"
)


# --------------------------------------------------------------------------- ground truth


def load_ground_truth(entry: dict, resolve: PathResolver) -> RelativePose:
    """The relative pose of a manifest entry's ``pose_a`` and ``pose_b`` files, in OpenCV camera axes.

    ``inv(S P_a S) @ (S P_b S)`` with S = diag(1, -1, -1, 1) (see the module docstring): frame B's
    camera in frame A's camera axes, x right, y down, z forward. Returns a RelativePose (float64).
    Raises ManifestError naming the sample and the file when a pose file is missing,
    unreadable or malformed (see ``decoding.decode_pose``), or when a key is not a path.
    """
    sample_id = entry["id"]
    poses = []
    for key in ("pose_a", "pose_b"):
        value = entry.get(key)
        if not isinstance(value, str):
            raise ManifestError(
                f"Sample {sample_id!r}: '{key}' must be the path of a pose file, got {type(value).__name__}.",
                hint="pose_a / pose_b are .npz (position, orientation xyzw) or .npy [x,y,z,qx,qy,qz,qw] paths",
                details={"sample": sample_id, "key": key},
            )
        poses.append(t265_to_opencv(decode_pose(resolve(value, sample_id, key), sample_id, key)))
    return relative_pose(*poses)


def check_entry(entry: dict, resolve: PathResolver, rgb_size: ImageSize) -> None:
    """Check an entry when the split is opened: both pose files decode (finite position, non-zero
    quaternion; see ``load_ground_truth``) and the second frame ``rgb_b`` is there (header only).
    Raises ManifestError naming the sample, the field and its value."""
    load_ground_truth(entry, resolve)
    second_frame_size(entry, resolve)


# --------------------------------------------------------------------------- predictions


def _parse_pose(raw: Any, error: type[RPXError], where: str, hint: str) -> RelativePose:
    """RelativePose from a RelativePose (or any object with ``rotation`` and ``translation``
    attributes), a dict {rotation, translation} or a 2-tuple; raises ``error``."""
    if isinstance(raw, RelativePose) or (hasattr(raw, "rotation") and hasattr(raw, "translation")):
        rotation, translation = raw.rotation, raw.translation
    elif isinstance(raw, dict):
        missing = [key for key in ("rotation", "translation") if key not in raw]
        if missing:
            raise error(
                f"{where}: the pose dict lacks {', '.join(map(repr, missing))} (keys: {sorted(map(str, raw))}).",
                hint=hint,
            )
        rotation, translation = raw["rotation"], raw["translation"]
    elif isinstance(raw, (tuple, list)) and len(raw) == 2:
        rotation, translation = raw
    else:
        length = f" of length {len(raw)}" if isinstance(raw, (tuple, list)) else ""
        raise error(
            f"{where}: expected a dict with keys 'rotation' and 'translation' or a 2-tuple, "
            f"got {type(raw).__name__}{length}.",
            hint=hint,
        )
    rotation_array = np.asarray(rotation, dtype=np.float64) if _numeric(rotation) else None
    if rotation_array is None or not (rotation_array.shape == (3, 3) or rotation_array.shape in _QUATERNION_SHAPES):
        shape = rotation_array.shape if rotation_array is not None else type(rotation).__name__
        raise error(
            f"{where}: 'rotation' must be a (3, 3) matrix or a (4,) quaternion x, y, z, w; got {shape}.", hint=hint
        )
    if rotation_array.shape in _QUATERNION_SHAPES:
        rotation_array = rotation_array.reshape(4)
        if not np.isfinite(rotation_array).all() or np.linalg.norm(rotation_array) < 1e-12:
            raise error(
                f"{where}: the 'rotation' quaternion {rotation_array.tolist()} is zero or not finite.", hint=hint
            )
        rotation_array = quaternion_xyzw_to_matrix(rotation_array)
    translation_array = np.asarray(translation, dtype=np.float64) if _numeric(translation) else None
    if translation_array is None or translation_array.size != 3:
        shape = translation_array.shape if translation_array is not None else type(translation).__name__
        raise error(f"{where}: 'translation' must hold 3 numbers (metres); got {shape}.", hint=hint)
    translation_array = translation_array.reshape(3)
    if not (np.isfinite(rotation_array).all() and np.isfinite(translation_array).all()):
        raise error(f"{where}: the pose contains NaN or inf.", hint=hint)
    return RelativePose(rotation=rotation_array, translation=translation_array)


def _numeric(value: Any) -> bool:
    try:
        np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return True


def validate_prediction(prediction: Any, sample: Sample) -> RelativePose:
    """Return the prediction as a RelativePose with a (3, 3) float64 rotation.

    Accepts a RelativePose (or an object with ``rotation`` and ``translation`` attributes), a
    dict {rotation, translation} or a (rotation, translation) tuple; a (4,) rotation is an x, y,
    z, w quaternion. Raises ModelError naming the sample when a key is missing, a shape is wrong
    or a value is not finite.
    """
    return _parse_pose(
        prediction,
        ModelError,
        f"Sample {sample.id!r}",
        "check your model's predict() return type for relative_camera_pose: "
        "{'rotation': (3, 3) or (4,) xyzw, 'translation': (3,)} per sample",
    )


# --------------------------------------------------------------------------- numpy models


def call_function(fn: Callable[..., Any], sample: Sample) -> Any:
    """Call a numpy pose function as ``fn(rgb_a, rgb_b)`` on the sample's two frames.

    Raises AdapterError naming the sample when it has no ``rgb_b`` ("requires a second RGB frame").
    """
    return fn(sample.rgb, second_frame(sample, NAME))


def normalise_function_output(output: Any, sample: Sample) -> RelativePose:
    """A numpy pose function's output (``{rotation, translation}`` or a 2-tuple) as a RelativePose.

    Float64; a (4,) rotation is an x, y, z, w quaternion, turned into a matrix. Raises
    AdapterError naming the sample when a key is missing, a shape is wrong or a value is not finite.
    """
    return _parse_pose(
        output,
        AdapterError,
        f"Sample {sample.id!r}: the pose function's output",
        f"the function must be {_SIGNATURE}",
    )


MODELS = (
    ModelEntry(
        "image_motion_pose",
        NAME,
        "import",
        "rpx_tasks.models.pose_baselines:image_motion_pose",
        "weight-free baseline: rotation from aligning the two frames (roll + shift), zero translation",
    ),
    ModelEntry(
        "identity_pose",
        NAME,
        "import",
        "rpx_tasks.models.pose_baselines:identity_pose",
        "weight-free baseline: the camera did not move",
    ),
)


# --------------------------------------------------------------------------- sample data


def sample_entry(frame: SampleFrame) -> dict | None:
    """The pair (``frame``, ``frame.later``) as a manifest entry; None on a clip's last frames.

    Uses the two frames' own pose files as ``pose_a`` / ``pose_b`` and the later RGB as
    ``rgb_b``; the id has the Hub pair form ``<scene>__<phase>__<stemA>__<stemB>``.
    """
    later = frame.later
    if later is None:
        return None
    return pair_entry(frame, later, {"pose_a": frame.paths["pose"], "pose_b": later.paths["pose"]})


SPEC = TaskSpec(
    name=NAME,
    display_name="Relative Camera Pose",
    modalities=("rgb", "pose"),
    required_keys=("pose_a", "pose_b"),
    load_ground_truth=load_ground_truth,
    check_entry=check_entry,
    validate_prediction=validate_prediction,
    compute_metrics=pose_metrics,
    metrics=POSE_METRIC_INFO,
    primary_metric="rotation_error_deg",
    numpy_signature=_SIGNATURE,
    numpy_invoke=call_function,
    numpy_inputs=("rgb_a", "rgb_b"),
    numpy_normalise=normalise_function_output,
    models=MODELS,
    sample_entry=sample_entry,
)
