"""Decoding of the RPX file formats: RGB images, 16-bit millimetre depth, camera poses.

Every failure is a ManifestError naming the sample and the file, so a user can find the bad
entry in a 75,000-frame manifest.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from rpx_tasks import fast_png
from rpx_tasks.contracts.pose import quaternion_xyzw_to_matrix
from rpx_tasks.errors import ManifestError


def _missing(path: Path, sample_id: str, key: str) -> ManifestError:
    return ManifestError(
        f"Sample {sample_id!r}: {key} file not found: {path}",
        hint="check the manifest root, or re-run `rpx download` to fetch the split",
        details={"sample": sample_id, "key": key, "path": str(path)},
    )


def _open_image(path: Path, sample_id: str, key: str) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
        return image
    except FileNotFoundError:
        raise _missing(path, sample_id, key) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ManifestError(
            f"Sample {sample_id!r}: {key} file {path} is not a decodable image ({exc}).",
            hint="the file is corrupt or truncated: delete it and download the split again",
            details={"sample": sample_id, "key": key, "path": str(path)},
        ) from exc


def decode_rgb(path: Path, sample_id: str, key: str = "rgb") -> np.ndarray:
    """Decode a PNG/WebP/JPEG image to an (H, W, 3) uint8 array. Raises ManifestError.

    A plain 8-bit RGB PNG is decoded by libspng when it is installed (``rpx_tasks.fast_png``: the same
    pixels, faster); everything else, and every failure, by Pillow.
    """
    fast = fast_png.read_rgb8(Path(path), Image.MAX_IMAGE_PIXELS)
    if fast is not None:
        return fast
    image = _open_image(path, sample_id, key)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image)


def decode_depth_m(path: Path, sample_id: str, key: str = "depth") -> np.ndarray:
    """Decode a 16-bit millimetre depth PNG to (H, W) float32 metres (0 stays 0 = invalid).

    Raises ManifestError when the file is missing, undecodable or not single-channel. A plain 16-bit grey PNG
    is decoded by libspng when it is installed (``rpx_tasks.fast_png``); everything else by Pillow.
    """
    fast = fast_png.read_grey16(Path(path), Image.MAX_IMAGE_PIXELS)
    if fast is not None:
        return np.divide(fast, 1000.0, dtype=np.float32)
    image = _open_image(path, sample_id, key)
    raw = np.asarray(image)
    if raw.ndim != 2:
        raise ManifestError(
            f"Sample {sample_id!r}: depth file {path} is not 2-D (shape {raw.shape}, mode {image.mode}).",
            hint="depth must be a single-channel 16-bit PNG in millimetres",
            details={"sample": sample_id, "key": key, "path": str(path)},
        )
    return np.divide(raw, 1000.0, dtype=np.float32)


def decode_label_map(path: Path, sample_id: str, key: str = "mask") -> np.ndarray:
    """Decode an integer label PNG (palette, L or I;16) to (H, W) int32. Raises ManifestError."""
    image = _open_image(path, sample_id, key)
    raw = np.asarray(image)
    if raw.ndim != 2:
        raise ManifestError(
            f"Sample {sample_id!r}: {key} file {path} is not 2-D (shape {raw.shape}).",
            hint="label maps must be single-channel integer PNGs",
            details={"sample": sample_id, "key": key, "path": str(path)},
        )
    return raw.astype(np.int32, copy=False)


def pose_matrix(position: np.ndarray, orientation_xyzw: np.ndarray) -> np.ndarray:
    """4x4 float64 camera-to-world matrix from a position (3,) and an xyzw quaternion (4,)."""
    matrix = np.eye(4)
    matrix[:3, :3] = quaternion_xyzw_to_matrix(orientation_xyzw)
    matrix[:3, 3] = position
    return matrix


def decode_pose(path: Path, sample_id: str, key: str = "pose") -> np.ndarray:
    """Decode a T265 pose file to a 4x4 float64 camera-to-world matrix.

    ``.npz`` holds ``position`` (3,) and ``orientation`` (4,) xyzw; ``.npy`` holds a 7-vector
    [x, y, z, qx, qy, qz, qw]. Raises ManifestError on a missing, unreadable or malformed file.
    """

    def bad(reason: str) -> ManifestError:
        return ManifestError(
            f"Sample {sample_id!r}: {key} file {path} {reason}.",
            hint="poses are .npz (position, orientation xyzw) or .npy 7-vectors [x,y,z,qx,qy,qz,qw]",
            details={"sample": sample_id, "key": key, "path": str(path)},
        )

    try:
        if path.suffix == ".npz":
            with np.load(path) as data:
                if "position" not in data or "orientation" not in data:
                    raise bad("lacks 'position' or 'orientation'")
                position, orientation = data["position"], data["orientation"]
        else:
            vector = np.load(path)
            if vector.shape != (7,):
                raise bad(f"has shape {vector.shape}, expected (7,)")
            position, orientation = vector[:3], vector[3:]
    except FileNotFoundError:
        raise _missing(path, sample_id, key) from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # a truncated .npz is a bad zip
        raise bad(f"cannot be read ({exc})") from exc
    position = np.asarray(position, dtype=np.float64).reshape(-1)
    orientation = np.asarray(orientation, dtype=np.float64).reshape(-1)
    if position.shape != (3,) or orientation.shape != (4,):
        raise bad(f"has position shape {position.shape} and orientation shape {orientation.shape}")
    if not np.all(np.isfinite(position)) or not np.all(np.isfinite(orientation)) or np.linalg.norm(orientation) < 1e-12:
        raise bad("holds a non-finite position or a zero/non-finite quaternion")
    return pose_matrix(position, orientation)


def load_json_value(value, resolve, sample_id: str, key: str):
    """A manifest field given inline (list/dict) or as a path to a JSON file; returns the parsed value.

    ``resolve(path, sample_id, key)`` maps a manifest path to a file inside the dataset root.
    Raises ManifestError naming the sample and file when the file is missing or not JSON.
    """
    if not isinstance(value, str):
        return value
    path = resolve(value, sample_id, key)
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _missing(Path(path), sample_id, key) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(
            f"Sample {sample_id!r}: {key} file {path} is not valid JSON ({exc}).",
            hint="fix or re-download the label file",
            details={"sample": sample_id, "key": key, "path": str(path)},
        ) from exc


def load_array(value, resolve, sample_id: str, key: str, *, dtype, columns: int | None = None) -> np.ndarray:
    """A numeric array given inline, as a ``.npy`` path or as a JSON file path.

    With ``columns`` the result is reshaped to (N, columns) (an empty input gives (0, columns));
    otherwise it is flattened to (N,). Raises ManifestError naming the sample, key and file when
    the file is missing or unreadable or the values do not fit that shape.
    """
    if isinstance(value, str) and value.endswith(".npy"):
        path = resolve(value, sample_id, key)
        try:
            raw = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise _missing(Path(path), sample_id, key) from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise ManifestError(
                f"Sample {sample_id!r}: {key} file {path} cannot be read as a .npy array ({exc}).",
                hint="write it with numpy.save",
                details={"sample": sample_id, "key": key, "path": str(path)},
            ) from exc
    else:
        raw = load_json_value(value, resolve, sample_id, key)
    expected = f"(N, {columns})" if columns else "(N,)"
    problem = None
    try:
        array = np.asarray(raw, dtype=dtype)
    except (TypeError, ValueError) as exc:
        problem, array = str(exc), None
    if array is not None and columns is not None:
        if array.size == 0:
            array = array.reshape(0, columns)
        elif array.ndim != 2 or array.shape[1] != columns:
            problem = f"got shape {array.shape}"
    if problem is not None:
        raise ManifestError(
            f"Sample {sample_id!r}: '{key}' does not hold a numeric array of shape {expected} ({problem}).",
            hint=f"give '{key}' inline, as a .npy file or as a JSON file of numbers shaped {expected}",
            details={"sample": sample_id, "key": key},
        )
    return array if columns is not None else array.reshape(-1)
