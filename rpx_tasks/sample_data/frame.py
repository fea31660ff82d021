"""What a task's ``sample_entry(frame)`` receives: :class:`SampleFrame` and its :class:`SampleObject` s.

See the :mod:`rpx_tasks.sample_data` package docstring ("For task authors") for the whole API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rpx_tasks.constants import PHASES, SAMPLE_ARM_LABEL
from rpx_tasks.errors import ConfigError
from rpx_tasks.sample_data.encoders import npy_bytes, plain_json, png_bytes

MOVING_LABELS = frozenset({SAMPLE_ARM_LABEL})  # objects that move with the camera


@dataclass(frozen=True)
class SampleObject:
    """One object visible in a sample frame.

    ``id`` is its value in ``SampleFrame.instances`` (stable within the clip), ``label`` a
    category (``box``, ``crate``, ``bottle`` or ``arm``: ``SAMPLE_CATEGORIES`` and
    ``SAMPLE_ARM_LABEL`` of ``rpx_tasks.constants``), ``colour`` a word of ``SAMPLE_COLOUR_WORDS``,
    ``box`` the float64 [x1, y1, x2, y2] = [min x, min y, max x + 1, max y + 1] of its visible
    pixels and ``pixels`` their count.
    """

    id: int
    label: str
    colour: str
    box: np.ndarray
    pixels: int

    @property
    def moving(self) -> bool:
        """True for objects that move with the camera (the arm): their points have no fixed world position."""
        return self.label in MOVING_LABELS


@dataclass(eq=False)
class SampleFrame:
    """One rendered frame of the sample dataset, handed to every task's ``sample_entry``.

    See the :mod:`rpx_tasks.sample_data` package docstring ("For task authors"). Arrays are the
    frame as written; do not modify them.
    """

    root: Path
    scene: str
    phase_idx: int
    frame_idx: int
    frames_in_clip: int
    split: str
    rgb: np.ndarray = field(repr=False)
    depth_mm: np.ndarray = field(repr=False)
    instances: np.ndarray = field(repr=False)
    objects: list[SampleObject] = field(repr=False)
    pose: np.ndarray = field(repr=False)
    intrinsics: tuple[float, float, float, float] = field(repr=False)
    later: SampleFrame | None = field(default=None, repr=False)
    _surface_depth_m: np.ndarray | None = field(default=None, repr=False)

    @property
    def height(self) -> int:
        """The image height in pixels."""
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        """The image width in pixels."""
        return int(self.rgb.shape[1])

    @property
    def stem(self) -> str:
        """The frame's file stem, ``frame_idx`` as 5 digits (``00003``)."""
        return f"{self.frame_idx:05d}"

    @property
    def phase(self) -> str:
        """``clutter``, ``interaction`` or ``clean``."""
        return PHASES[self.phase_idx]

    @property
    def clip_dir(self) -> str:
        """The root-relative folder of the frame's clip, ``scenes/<scene>/<phase_idx>``."""
        return f"scenes/{self.scene}/{self.phase_idx}"

    @property
    def paths(self) -> dict[str, str]:
        """Root-relative paths of the frame's ``rgb``, ``depth`` and ``pose`` files."""
        return {
            "rgb": f"{self.clip_dir}/rgb/{self.stem}.png",
            "depth": f"{self.clip_dir}/depth/{self.stem}.png",
            "pose": f"{self.clip_dir}/pose/{self.stem}.npz",
        }

    def object(self, object_id: int) -> SampleObject | None:
        """The visible object with ``id == object_id``, or None."""
        return next((obj for obj in self.objects if obj.id == object_id), None)

    def base_entry(self) -> dict:
        """A new manifest entry with the keys every task shares: ``id`` (``<scene>__<phase_idx>__<stem>``),
        ``scene_id``, ``phase`` (index), ``frame_idx``, ``difficulty`` and ``rgb``."""
        return {
            "id": f"{self.scene}__{self.phase_idx}__{self.stem}",
            "scene_id": self.scene,
            "phase": self.phase_idx,
            "frame_idx": self.frame_idx,
            "difficulty": self.split,
            "rgb": self.paths["rgb"],
        }

    def _label_path(self, folder: str, suffix: str) -> tuple[str, Path]:
        parts = Path(folder).parts
        if not folder or Path(folder).is_absolute() or ".." in parts or "\\" in folder:
            raise ConfigError(
                f"Label folder {folder!r} must be a relative path inside the clip folder.",
                hint="use a plain folder name such as 'mask' or 'boxes'",
            )
        relative = f"{self.clip_dir}/{Path(folder).as_posix()}/{self.stem}{suffix}"
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return relative, path

    def write_png(self, folder: str, array: np.ndarray) -> str:
        """Write ``array`` to ``scenes/<scene>/<phase_idx>/<folder>/<stem>.png``; return that root-relative path.

        (H, W) or (H, W, 3) uint8 -> 8-bit grey / RGB; any other (H, W) integer array (uint16,
        int32 label maps) -> 16-bit grey. Same array, same bytes. Raises ConfigError for another
        shape or dtype, integer values outside 0-65535, or a folder that leaves the clip folder.
        """
        array = np.asarray(array)
        if array.dtype == np.uint8 and (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
            data = array
        elif array.ndim == 2 and np.issubdtype(array.dtype, np.integer) and array.dtype != np.bool_:
            if array.size and (int(array.min()) < 0 or int(array.max()) > 65535):
                raise ConfigError(
                    f"Label map for {folder!r} has values outside 0-65535 (min {array.min()}, max {array.max()}).",
                    hint="16-bit PNG labels hold 0-65535; write other values with write_npy",
                )
            data = array.astype(np.uint16, copy=False)
        else:
            raise ConfigError(
                f"Cannot write a {array.dtype} array of shape {array.shape} as PNG ({folder!r}).",
                hint="pass (H, W) or (H, W, 3) uint8, or an (H, W) integer label map; "
                "write other arrays with write_npy",
            )
        relative, path = self._label_path(folder, ".png")
        path.write_bytes(png_bytes(np.ascontiguousarray(data)))
        return relative

    def write_json(self, folder: str, obj) -> str:
        """Write ``obj`` as JSON to ``scenes/<scene>/<phase_idx>/<folder>/<stem>.json``; return that path.

        numpy arrays and scalars are converted to lists and numbers. Raises ConfigError for a
        value JSON cannot hold or a folder that leaves the clip folder.
        """
        try:
            text = json.dumps(plain_json(obj))
        except (TypeError, ValueError) as exc:  # e.g. a dict key that is not a string or number
            raise ConfigError(
                f"Cannot write the {folder!r} label as JSON: {exc}",
                hint="use lists, dicts, str, numbers and numpy arrays",
            ) from exc
        relative, path = self._label_path(folder, ".json")
        path.write_text(text + "\n", encoding="utf-8")
        return relative

    def write_npy(self, folder: str, array: np.ndarray) -> str:
        """Write ``array`` with numpy's .npy format to ``scenes/<scene>/<phase_idx>/<folder>/<stem>.npy``;
        return that root-relative path. Raises ConfigError for object arrays or a folder that leaves the
        clip folder."""
        array = np.asarray(array)
        if array.dtype.hasobject:
            raise ConfigError(f"Cannot write an object array as .npy ({folder!r}).", hint="use a numeric dtype")
        relative, path = self._label_path(folder, ".npy")
        path.write_bytes(npy_bytes(array))
        return relative

    def backproject(self, pixels: np.ndarray) -> np.ndarray:
        """World points (N, 3) float64 of pixels (N, 2) given as (x, y) (column, row, may be fractional).

        Uses the frame's written depth at the nearest pixel and the ray through (x, y); rows are
        NaN where that depth is invalid (0) or the pixel lies outside the image. Raises nothing.
        """
        points = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
        fx, fy, cx, cy = self.intrinsics
        col, row, inside = self._nearest_pixel(points)
        depth = np.full(len(points), np.nan)
        depth[inside] = self.depth_mm[row[inside], col[inside]] / 1000.0
        depth[depth == 0] = np.nan
        camera = np.stack([(points[:, 0] - cx) / fx * depth, -(points[:, 1] - cy) / fy * depth, -depth], axis=1)
        return camera @ self.pose[:3, :3].T + self.pose[:3, 3]

    def project(self, world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project world points (N, 3) into this frame: returns (pixels (N, 2) float64 (x, y), visible (N,) bool).

        ``visible`` means in front of the camera, inside the image and not hidden behind a nearer
        surface (the rendered, noise-free depth at the nearest pixel is no more than 3 % + 2 cm
        closer). Pixels of points behind the camera are NaN. Raises nothing.
        """
        points = np.asarray(world, dtype=np.float64).reshape(-1, 3)
        fx, fy, cx, cy = self.intrinsics
        camera = (points - self.pose[:3, 3]) @ self.pose[:3, :3]
        depth = -camera[:, 2]
        in_front = np.isfinite(depth) & (depth > 1e-6)
        pixels = np.full((len(points), 2), np.nan)
        pixels[in_front, 0] = cx + fx * camera[in_front, 0] / depth[in_front]
        pixels[in_front, 1] = cy - fy * camera[in_front, 1] / depth[in_front]
        col, row, visible = self._nearest_pixel(pixels)
        surface = self._surface_depth_m
        if surface is None:
            surface = np.full(self.depth_mm.shape, np.inf)
        visible[visible] = depth[visible] <= surface[row[visible], col[visible]] * 1.03 + 0.02
        return pixels, visible

    def _nearest_pixel(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with np.errstate(invalid="ignore"):
            col = np.rint(points[:, 0])
            row = np.rint(points[:, 1])
            inside = (
                np.isfinite(col) & np.isfinite(row) & (col >= 0) & (col < self.width) & (row >= 0) & (row < self.height)
            )
        col = np.where(inside, col, 0).astype(np.intp)
        row = np.where(inside, row, 0).astype(np.intp)
        return col, row, inside
