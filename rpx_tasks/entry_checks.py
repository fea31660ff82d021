"""Field checks of manifest sample entries, run when a split is opened, before any model is loaded.

:func:`check_common_fields` checks what every task's entries share against its domain: ``phase``
(a name or index, or the phase folder of the entry's path), ``difficulty``, ``scene_id`` /
``scene``, ``frame_idx`` / ``frame_idx_b``, ``metadata``, every file path (inside the dataset
root; the RGB frame and the task's required files present) and the RGB header, whose (H, W) it
returns. A task's ``TaskSpec.check_entry`` then checks its label values with the helpers below
(:func:`check_label_map` reads a label map's header only). Every problem is a ManifestError
naming the sample, the field and the offending value (details ``sample``, ``key``, ``value``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from rpx_tasks.constants import PHASES, SPLITS
from rpx_tasks.contracts.spec import PathResolver, TaskSpec
from rpx_tasks.decoding import decode_pose
from rpx_tasks.errors import ManifestError
from rpx_tasks.manifest import FILE_KEYS, PATH_KEYS, clip_from_paths, phase_name

# (height, width) of an image, from its header.
ImageSize = tuple[int, int]

# The lowest coordinate inside a frame: the left/top edge of pixel 0 when pixel centres are whole numbers.
_PIXEL_EDGE = -0.5

_PHASE_HINT = f"phase is one of {', '.join(PHASES)} or its index 0, 1, 2 (a number or a digit string)"

# How much of an offending value a message shows.
_SHOWN_CHARS = 200


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."


def field_error(sample_id: Any, key: str, value: Any, reason: str, hint: str) -> ManifestError:
    """The ManifestError of one bad field: "Sample 'x': 'key' = <repr of value> <reason>." with ``hint`` and
    details ``{"sample", "key", "value"}`` (the value itself when a short scalar, else its short repr).
    Raises nothing (returns the error to raise)."""
    text = _short_repr(value)
    plain = value is None or isinstance(value, (bool, int, float, str))
    return ManifestError(
        f"Sample {sample_id!r}: '{key}' = {text} {reason}.",
        hint=hint,
        details={"sample": sample_id, "key": key, "value": value if plain and text == repr(value) else text},
    )


# --------------------------------------------------------------------------- generic fields


def _check_phase(entry: dict[str, Any]) -> None:
    """The phase field, or the phase folder of the path when the field is absent, must name a phase."""
    sample_id = entry["id"]
    clip = clip_from_paths(entry)
    folder_phase = phase_name(clip[1]) if clip else None
    if "phase" not in entry:
        if folder_phase is None:
            where = f"its path's clip folder is {clip[1]!r}" if clip else "no path has a scenes/<scene>/<phase>/ part"
            raise field_error(
                sample_id, "phase", None, f"is missing and {where}", hint=f"add a 'phase' field: {_PHASE_HINT}"
            )
        return
    value = entry["phase"]
    name = phase_name(value)
    if name is None:
        raise field_error(sample_id, "phase", value, "is not a phase", hint=_PHASE_HINT)
    if folder_phase is not None and folder_phase != name:
        raise field_error(
            sample_id,
            "phase",
            value,
            f"disagrees with the phase folder {clip[1]!r} ({folder_phase}) of its path",
            hint="fix the phase field or the path; the folder index is 0 clutter, 1 interaction, 2 clean",
        )


def _check_descriptive_fields(entry: dict[str, Any]) -> None:
    """``difficulty`` (easy|medium|hard or null), ``scene_id`` / ``scene`` (non-empty strings or null),
    ``frame_idx`` / ``frame_idx_b`` (whole numbers >= 0 or null) and ``metadata`` (an object or null)."""
    sample_id = entry["id"]
    difficulty = entry.get("difficulty")
    if difficulty is not None and difficulty not in SPLITS:
        raise field_error(
            sample_id,
            "difficulty",
            difficulty,
            "is not a difficulty",
            hint=f"difficulty is one of {', '.join(SPLITS)}, or leave it out (the split's name is used)",
        )
    for key in ("scene_id", "scene"):
        value = entry.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise field_error(
                sample_id, key, value, "is not a scene name", hint=f"'{key}' is a non-empty string such as 'scene_007'"
            )
    for key in ("frame_idx", "frame_idx_b"):
        value = entry.get(key)
        whole = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        digits = isinstance(value, str) and value.isascii() and value.isdigit()
        if value is not None and not (whole or digits):
            raise field_error(
                sample_id,
                key,
                value,
                "is not a frame index",
                hint=f"'{key}' is a whole number >= 0 (or a string of digits such as '00042')",
            )
    metadata = entry.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise field_error(
            sample_id, "metadata", metadata, "is not an object", hint="'metadata' is a JSON object (or leave it out)"
        )


def _check_paths(entry: dict[str, Any], resolve: PathResolver, spec: TaskSpec) -> None:
    """Every path stays in the dataset root, file-only keys hold paths, required files exist, and the
    camera pose (when the task needs it or its file is there) decodes."""
    sample_id = entry["id"]
    for key in FILE_KEYS:
        value = entry.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise field_error(
                sample_id,
                key,
                value,
                "is not a file path",
                hint=f"'{key}' is a path, relative to the dataset root or absolute",
            )
    for key in PATH_KEYS:
        if isinstance(entry.get(key), str):
            resolve(entry[key], sample_id, key)
    for key in spec.required_keys if spec.clip is None else spec.clip.frame_keys:
        value = entry[key]
        if value is None:
            raise field_error(sample_id, key, value, f"is null, but {spec.name} needs it", hint=f"give '{key}' a value")
        if isinstance(value, str) and not resolve(value, sample_id, key).is_file():
            raise field_error(
                sample_id,
                key,
                value,
                f"names a file that does not exist: {resolve(value, sample_id, key)}",
                hint="check the manifest root, or re-run `rpx download` to fetch the split",
            )
    pose_path = camera_pose_path(entry, resolve, spec)
    if pose_path is not None:
        decode_pose(pose_path, sample_id, "pose")


def camera_pose_path(entry: dict[str, Any], resolve: PathResolver, spec: TaskSpec) -> Path | None:
    """The camera pose file of an entry to decode (its ``pose``), or None when it has none.

    Poses feed temporal stability only, so a task that does not download them (``pose`` not in
    ``spec.modalities``) may lack the file: then a missing file is None too. Raises ManifestError
    when the path escapes the dataset root.
    """
    pose = entry.get("pose")
    if pose is None:
        return None
    path = Path(resolve(pose, entry["id"], "pose"))
    return path if "pose" in spec.modalities or path.exists() else None


def check_common_fields(entry: dict[str, Any], resolve: PathResolver, spec: TaskSpec) -> ImageSize:
    """Check the fields every task's entry shares (see the module docstring) and read the RGB header.

    ``entry`` has passed ``manifest.check_manifest`` (a string ``id`` and ``rgb``) and holds
    ``spec.required_keys``. Returns the frame's (H, W). Raises ManifestError naming the sample,
    the field and its value.
    """
    _check_phase(entry)
    _check_descriptive_fields(entry)
    _check_paths(entry, resolve, spec)
    return image_size(entry, "rgb", resolve)


# --------------------------------------------------------------------------- helpers of the task checks


_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _png_is_complete(path: Path) -> bool:
    """Whether a PNG file ends with its IEND chunk: one 12-byte read, so truncated files are caught when the
    split opens without decoding any pixel (corruption inside the file still shows when the frame is decoded)."""
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        if handle.tell() < len(_PNG_END):
            return False
        handle.seek(-len(_PNG_END), 2)
        return handle.read() == _PNG_END


def image_size(entry: dict[str, Any], key: str, resolve: PathResolver, *, single_channel: bool = False) -> ImageSize:
    """The (H, W) of the image file that ``entry[key]`` names, from its header (pixels are not decoded).

    With ``single_channel`` the image must have one band (label maps: depth, masks). Raises
    ManifestError naming the sample, the key and the path when the file is missing, is not a
    readable image, or has several bands where one is needed.
    """
    sample_id, value = entry["id"], entry[key]
    path = Path(resolve(value, sample_id, key))
    try:
        with Image.open(path) as image:
            width, height = image.size
            bands = image.getbands()
            mode = image.mode
            image_format = image.format
    except FileNotFoundError:
        raise field_error(
            sample_id,
            key,
            value,
            f"names a file that does not exist: {path}",
            hint="check the manifest root, or re-run `rpx download` to fetch the split",
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise field_error(
            sample_id,
            key,
            value,
            f"is not a readable image ({exc})",
            hint="the file is corrupt or not an image: delete it and download the split again",
        ) from exc
    if image_format == "PNG" and not _png_is_complete(path):
        raise field_error(
            sample_id,
            key,
            value,
            f"is a truncated PNG (it does not end with the IEND chunk): {path}",
            hint="the file was cut short (an interrupted download or copy): delete it and download the split again",
        )
    if single_channel and len(bands) != 1:
        raise field_error(
            sample_id,
            key,
            value,
            f"is not 2-D: it has {len(bands)} channels (mode {mode})",
            hint=f"'{key}' must be a single-channel PNG (depth: 16-bit millimetres; masks: integer ids)",
        )
    return height, width


def check_label_map(entry: dict[str, Any], key: str, resolve: PathResolver, rgb_size: ImageSize) -> None:
    """Check that the label map ``entry[key]`` (depth or mask) is a single-channel image of the RGB frame's size.

    Reads the header only. Raises ManifestError naming the sample, the key, the path and both sizes.
    """
    size = image_size(entry, key, resolve, single_channel=True)
    if size != rgb_size:
        raise field_error(
            entry["id"],
            key,
            entry[key],
            f"is {size[0]}x{size[1]} (HxW), the RGB frame {rgb_size[0]}x{rgb_size[1]}",
            hint=f"'{key}' must have the resolution of its RGB frame",
        )


def second_frame_size(entry: dict[str, Any], resolve: PathResolver) -> ImageSize:
    """The (H, W) of a pair sample's second frame ``rgb_b`` (header only).

    Raises ManifestError naming the sample when ``rgb_b`` is absent, missing or not an image.
    """
    if entry.get("rgb_b") is None:
        raise field_error(
            entry["id"],
            "rgb_b",
            None,
            "is missing; a pair task needs the second frame",
            hint="give every manifest entry an 'rgb_b' path (the second image of the pair)",
        )
    return image_size(entry, "rgb_b", resolve)


def check_points_in_frame(
    sample_id: str, key: str, points: np.ndarray, size: ImageSize, *, used: np.ndarray | None = None
) -> None:
    """Check that (x, y) ``points`` (N, 2) lie in the frame of ``size`` (H, W) under either pixel convention:
    -0.5 <= x <= W and -0.5 <= y <= H (pixel centres at whole numbers reach -0.5; corners reach W).

    ``used`` (N,) bool limits the check to those points (e.g. the visible ones). Raises
    ManifestError naming the sample, the key and the first point outside.
    """
    height, width = size
    x, y = points[:, 0], points[:, 1]
    inside = (x >= _PIXEL_EDGE) & (x <= width) & (y >= _PIXEL_EDGE) & (y <= height)
    outside = ~inside if used is None else (~inside & used)
    if outside.any():
        index = int(np.flatnonzero(outside)[0])
        raise field_error(
            sample_id,
            key,
            points[index].tolist(),
            f"(point {index}) lies outside the {width}x{height} (WxH) frame ({int(outside.sum())} such points)",
            hint=f"'{key}' holds (x, y) pixels of the frame: -0.5 <= x <= width and -0.5 <= y <= height",
        )


__all__ = [
    "ImageSize",
    "camera_pose_path",
    "check_common_fields",
    "check_label_map",
    "check_points_in_frame",
    "field_error",
    "image_size",
    "second_frame_size",
]
