"""RPX task ``relative_camera_pose``: the camera motion between two frames of a clip.

Ground truth (reference §1.4, CLI era). A manifest entry names two T265 pose files,
``pose_a`` and ``pose_b`` (``.npz`` with ``position`` and an ``orientation`` quaternion in
x, y, z, w order, or a ``.npy`` 7-vector [x, y, z, qx, qy, qz, qw]), each decoded to a 4x4
camera->world matrix P. The relative pose is ``T_rel = inv(P_a) @ P_b``: frame B's camera in
frame A's camera coordinates, in the **T265 body axes as stored** (X right, Y up, Z back).

Why this construction and not 0.3.x's: 0.3.x first conjugates both poses into OpenCV axes
(``S P S`` with ``S = diag(1, -1, -1, 1)``). This project targets the CLI era, whose loader
and tests (a +1 m x translation with identity rotation) use the stored axes, and the
reference states the CLI construction for the loader. The two differ only by that fixed
change of axes: ``T_rel(OpenCV) = S T_rel(T265) S``, which keeps the rotation angle and the
translation length, so a model predicting in OpenCV axes converts with the same
``S @ T @ S``. Mixing the two conventions is what would be wrong, so only one is implemented.

Quaternions: ONE order everywhere, **x, y, z, w** as the data stores it (the reference's
deliberate difference from upstream, whose metric read predictions as w, x, y, z). A (4,)
rotation in a prediction (or ground truth) is x, y, z, w and is normalised first.

Metrics per sample (all lower is better; primary ``rotation_error_deg``):

- ``rotation_error_deg = degrees(arccos(clip((trace(R_pred^T R_gt) - 1) / 2, -1, 1)))``
- ``translation_error_m = ||t_pred - t_gt||``
- ``translation_angular_deg``: the angle between t_pred and t_gt, 180 when either has a
  norm below 1e-9 (0.3.x; direction error, useful because monocular models get no scale)
- ``pose_error_max_deg = max(rotation_error_deg, translation_angular_deg)`` (0.3.x)

Models: ``fn(rgb_a, rgb_b) -> {"rotation": (3, 3) or (4,) xyzw, "translation": (3,)}`` or a
``(rotation, translation)`` tuple (float64), or any Model whose ``predict`` returns
:class:`RelativePose` objects, such dicts or tuples. There is no HF fast path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from rpx_tasks.contracts.pose import RelativePose, quaternion_xyzw_to_matrix, relative_pose, rotation_matrix
from rpx_tasks.decoding import decode_pose
from rpx_tasks.errors import AdapterError, ManifestError, MetricError, ModelError, RPXError
from rpx_tasks.models.numpy_function import NumpyFunctionModel
from rpx_tasks.contracts.spec import ModelEntry
from rpx_tasks.sample import Sample
from rpx_tasks.tasks._pairs import estimate_image_motion, focal_px, pair_entry, second_frame
from rpx_tasks.contracts.spec import MetricInfo, PathResolver, TaskSpec

NAME = "relative_camera_pose"
TRANSLATION_NORM_EPS = 1e-9

METRICS = (
    MetricInfo("rotation_error_deg", False, "geodesic angle between predicted and true relative rotation (degrees)"),
    MetricInfo("translation_error_m", False, "Euclidean distance between predicted and true relative translation (m)"),
    MetricInfo("translation_angular_deg", False,
               "angle between predicted and true translation directions (180 if either is ~0)"),
    MetricInfo("pose_error_max_deg", False, "max(rotation_error_deg, translation_angular_deg)"),
)

_SIGNATURE = (
    "fn(rgb_a: (H, W, 3) uint8, rgb_b: (H, W, 3) uint8) -> {'rotation': (3, 3) matrix or (4,) quaternion "
    "x, y, z, w, 'translation': (3,) metres} or a (rotation, translation) tuple; frame B's camera in frame "
    "A's camera axes (T265: X right, Y up, Z back)"
)


# --------------------------------------------------------------------------- ground truth


def load_ground_truth(entry: dict, resolve: PathResolver) -> RelativePose:
    """The relative pose ``inv(P_a) @ P_b`` of a manifest entry's ``pose_a`` and ``pose_b`` files.

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
        poses.append(decode_pose(resolve(value, sample_id, key), sample_id, key))
    return relative_pose(*poses)


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
    dict {rotation, translation} or a (rotation, translation) tuple; a (4,) rotation is an x, y, z, w quaternion. Raises ModelError naming the sample
    when a key is missing, a shape is wrong or a value is not finite.
    """
    return _parse_pose(
        prediction,
        ModelError,
        f"Sample {sample.id!r}",
        "check your model's predict() return type for relative_camera_pose: "
        "{'rotation': (3, 3) or (4,) xyzw, 'translation': (3,)} per sample",
    )


# --------------------------------------------------------------------------- metrics


def _angle_deg(cosine: float) -> float:
    return math.degrees(math.acos(min(1.0, max(-1.0, cosine))))


def pose_metrics(prediction: RelativePose, ground_truth: RelativePose) -> dict[str, float | None]:
    """The four pose errors of one sample (module docstring gives the formulas).

    Returns ``{rotation_error_deg, translation_error_m, translation_angular_deg,
    pose_error_max_deg}`` as floats. Raises MetricError when either argument is not a
    RelativePose or a rotation has the wrong shape.
    """
    for value, role in ((prediction, "prediction"), (ground_truth, "ground truth")):
        if not isinstance(value, RelativePose):
            raise MetricError(
                f"relative_camera_pose expects a RelativePose {role}, got {type(value).__name__}.",
                hint="pass predictions through SPEC.validate_prediction and ground truth from SPEC.load_ground_truth",
            )
    r_pred = rotation_matrix(prediction.rotation, what="predicted rotation")
    r_gt = rotation_matrix(ground_truth.rotation, what="ground-truth rotation")
    r_rel = r_pred.T @ r_gt
    rotation_error = _angle_deg((float(np.trace(r_rel)) - 1.0) / 2.0)
    t_pred = np.asarray(prediction.translation, np.float64).reshape(3)
    t_gt = np.asarray(ground_truth.translation, np.float64).reshape(3)
    translation_error = float(np.linalg.norm(t_pred - t_gt))
    n_pred, n_gt = float(np.linalg.norm(t_pred)), float(np.linalg.norm(t_gt))
    if n_pred < TRANSLATION_NORM_EPS or n_gt < TRANSLATION_NORM_EPS:
        translation_angle = 180.0
    else:
        translation_angle = _angle_deg(float(np.dot(t_pred, t_gt)) / (n_pred * n_gt))
    return {
        "rotation_error_deg": rotation_error,
        "translation_error_m": translation_error,
        "translation_angular_deg": translation_angle,
        "pose_error_max_deg": max(rotation_error, translation_angle),
    }


# --------------------------------------------------------------------------- numpy models


def _invoke(fn, sample: Sample):
    return fn(sample.rgb, second_frame(sample, NAME))


def _normalise(output: Any, sample: Sample) -> RelativePose:
    return _parse_pose(
        output,
        AdapterError,
        f"Sample {sample.id!r}: the pose function's output",
        f"the function must be {_SIGNATURE}",
    )


def wrap_numpy_function(fn, name: str) -> NumpyFunctionModel:
    """A Model calling ``fn(rgb_a, rgb_b) -> {rotation, translation}`` (or a 2-tuple) per sample.

    Outputs become RelativePose (float64; a (4,) rotation is an x, y, z, w quaternion).
    ``predict`` raises AdapterError when the sample has no ``rgb_b`` ("requires a second RGB
    frame") or the output lacks a key or has a wrong shape.
    """
    return NumpyFunctionModel(fn, task=NAME, name=name, invoke=_invoke, normalise=_normalise)


def _rot_x(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rot_y(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rot_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def image_motion_pose(rgb_a: np.ndarray, rgb_b: np.ndarray) -> dict[str, np.ndarray]:
    """Weight-free baseline: the camera rotation implied by the image motion, no translation.

    Aligns the two frames with an in-plane rotation about the centre plus a shift
    (``_pairs.estimate_image_motion``). In T265 axes an image rotation by ``angle`` (clockwise
    on screen) is a roll of +angle about Z, and a shift (dx, dy) is a turn of atan(dx / f)
    about Y and atan(dy / f) about X, with the RPX focal length f scaled to the frame width.
    Translation is zero: one camera cannot see metric scale.
    Returns {"rotation": (3, 3) float64, "translation": zeros (3,)}; raises AdapterError when
    a frame is not (H, W, 3).
    """
    motion = estimate_image_motion(rgb_a, rgb_b)
    f = focal_px(np.asarray(rgb_a).shape[1])
    yaw, pitch = math.atan2(motion.shift[0], f), math.atan2(motion.shift[1], f)
    rotation = _rot_z(motion.angle) @ _rot_x(pitch) @ _rot_y(yaw)
    return {"rotation": rotation, "translation": np.zeros(3)}


def identity_pose(rgb_a: np.ndarray, rgb_b: np.ndarray) -> dict[str, np.ndarray]:
    """Trivial baseline: "the camera did not move" (identity rotation, zero translation).

    Returns {"rotation": eye(3), "translation": zeros(3)}; raises nothing.
    """
    return {"rotation": np.eye(3), "translation": np.zeros(3)}


MODELS = (
    ModelEntry("image_motion_pose", NAME, "import", "rpx_tasks.tasks.relative_camera_pose:image_motion_pose",
               "weight-free baseline: rotation from aligning the two frames (roll + shift), zero translation"),
    ModelEntry("identity_pose", NAME, "import", "rpx_tasks.tasks.relative_camera_pose:identity_pose",
               "weight-free baseline: the camera did not move"),
)


# --------------------------------------------------------------------------- sample data


def sample_entry(frame) -> dict | None:
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
    validate_prediction=validate_prediction,
    compute_metrics=pose_metrics,
    metrics=METRICS,
    primary_metric="rotation_error_deg",
    wrap_numpy_function=wrap_numpy_function,
    numpy_signature=_SIGNATURE,
    models=MODELS,
    sample_entry=sample_entry,
)
