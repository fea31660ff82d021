"""The tiny RPX test dataset the test Hub serves, as ``{repo path: bytes}``, in the RPX Hub layout.

``build_repo_files(layout)`` generates it: ``"loose"`` (frames under
``scenes/<scene>/<phase>/<modality>/``) or ``"sharded"`` (per-clip tar shards plus
``manifest/checksums.json``, manifests pointing at ``extracted/scenes/...``); the manifests sit
where ``rpx_tasks.manifest.manifest_relpath`` puts them. ``write_repo_files`` lays it out as a
local mirror; ``files_of`` names the data files of some clips and modalities.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from rpx_tasks.manifest import manifest_relpath

SPLIT_SCENES: dict[str, tuple[str, ...]] = {"hard": ("scene_h1", "scene_h2"), "easy": ("scene_e1",)}
PHASE_FOLDERS: tuple[str, ...] = ("0", "1", "2")
FRAMES_PER_CLIP = 2
IMAGE_SIZE = (8, 6)  # (width, height)

# Where each modality lives: loose folder, shard path (relative to the clip), member folder in the shard.
_LAYOUT = {
    "rgb": ("rgb", "rgb.tar", "rgb", ".png"),
    "depth": ("depth", "depth.tar", "depth", ".png"),
    "mask": ("mask", "labels/masks/v1.tar", "sam2/masks", ".png"),
    "pose": ("pose", "labels/cam_pose/v1.tar", "cam_pose", ".npz"),
}

# Task -> sample keys -> modality, for the manifests the test repos carry.
TASK_KEYS: dict[str, dict[str, str]] = {
    "monocular_depth": {"rgb": "rgb", "depth": "depth"},
    "object_segmentation": {"rgb": "rgb", "mask": "mask"},
    "novel_view_synthesis": {"rgb": "rgb", "depth": "depth", "pose": "pose"},
}


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")  # uint16 -> 16-bit PNG ("I;16")
    return buffer.getvalue()


def _frame_files(scene: str, phase: str, frame: int) -> dict[str, bytes]:
    """The four modality files of one frame: RGB 8-bit, depth 16-bit mm, mask ids, pose npz."""
    seed = int(hashlib.sha1(f"{scene}/{phase}/{frame}".encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng(seed)
    width, height = IMAGE_SIZE
    rgb = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    depth = rng.integers(300, 5000, size=(height, width), dtype=np.uint16)
    depth[0, 0] = 0  # one invalid pixel, as real D435 frames have
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[1:4, 2:6] = 1 + int(phase)
    mask[5, :] = rng.integers(0, 3, size=width)  # every frame's bytes differ (no cache dedup)
    pose = io.BytesIO()
    np.savez(pose, position=rng.normal(size=3), orientation=np.array([0.0, 0.0, 0.0, 1.0]))
    return {"rgb": _png(rgb), "depth": _png(depth), "mask": _png(mask), "pose": pose.getvalue()}


def _tar(members: dict[str, bytes]) -> bytes:
    """A content-stable tar: sorted members, zero mtime, root owner."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(members):
            info = tarfile.TarInfo(name)
            info.size = len(members[name])
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(members[name]))
    return buffer.getvalue()


def stem(frame: int) -> str:
    return f"{frame:05d}"


def sample_path(layout: str, scene: str, phase: str, modality: str, frame: int) -> str:
    """Repo-relative path of one frame file as the manifests of ``layout`` name it."""
    loose_folder, _, member_folder, suffix = _LAYOUT[modality]
    if layout == "loose":
        return f"scenes/{scene}/{phase}/{loose_folder}/{stem(frame)}{suffix}"
    return f"extracted/scenes/{scene}/{phase}/{member_folder}/{stem(frame)}{suffix}"


def _clip_manifest(split: str) -> dict:
    """video_depth (0.3.x form): one entry per clip, frames named by bare file names (found in the clip folder)."""
    samples = [
        {
            "id": f"{scene}__{phase}",
            "scene_id": scene,
            "phase": int(phase),
            "scene_type": "multi_object",
            "difficulty": split,
            "frame_filenames": [f"{stem(frame)}.png" for frame in range(FRAMES_PER_CLIP)],
            "depth_filenames": [f"{stem(frame)}.png" for frame in range(FRAMES_PER_CLIP)],
            "metadata": {"scene_id": scene, "phase_idx": int(phase), "n_frames": FRAMES_PER_CLIP},
        }
        for scene in SPLIT_SCENES[split]
        for phase in PHASE_FOLDERS
    ]
    return {"task": "video_depth", "split": split, "root": None, "samples": samples}


def _manifest(task: str, split: str, layout: str) -> dict:
    if task == "video_depth":
        return _clip_manifest(split)
    samples = []
    for scene in SPLIT_SCENES[split]:
        for phase in PHASE_FOLDERS:
            for frame in range(FRAMES_PER_CLIP):
                entry = {
                    "id": f"{scene}__{phase}__{stem(frame)}",
                    "scene_id": scene,
                    "phase": int(phase),
                    "frame_idx": frame,
                    "difficulty": split,
                    "metadata": {"scene_id": scene, "phase_idx": int(phase), "frame": stem(frame)},
                }
                for key, modality in TASK_KEYS[task].items():
                    entry[key] = sample_path(layout, scene, phase, modality, frame)
                samples.append(entry)
    return {"task": task, "split": split, "root": None, "samples": samples}


@functools.lru_cache(maxsize=None)
def _build_repo_files(layout: str) -> tuple[tuple[str, bytes], ...]:
    if layout not in ("loose", "sharded"):
        raise ValueError(f"unknown layout {layout!r}")
    files: dict[str, bytes] = {
        ".gitattributes": b"*.tar filter=lfs diff=lfs merge=lfs -text\n*.png filter=lfs diff=lfs merge=lfs -text\n",
        "README.md": b"# RPX test dataset\n",
        "metadata/scenes.parquet": b"not really parquet",
    }
    checksums: dict[str, str] = {}
    for scenes in SPLIT_SCENES.values():
        for scene in scenes:
            for phase in PHASE_FOLDERS:
                frames = [_frame_files(scene, phase, frame) for frame in range(FRAMES_PER_CLIP)]
                for modality, (loose_folder, shard, member_folder, suffix) in _LAYOUT.items():
                    if layout == "loose":
                        for frame, data in enumerate(frames):
                            files[f"scenes/{scene}/{phase}/{loose_folder}/{stem(frame)}{suffix}"] = data[modality]
                    else:
                        members = {
                            f"{member_folder}/{stem(f)}{suffix}": data[modality] for f, data in enumerate(frames)
                        }
                        path = f"scenes/{scene}/{phase}/{shard}"
                        files[path] = _tar(members)
                        checksums[path] = hashlib.sha256(files[path]).hexdigest()
    if layout == "sharded":
        files["manifest/checksums.json"] = json.dumps({"sha256": checksums}, indent=1, sort_keys=True).encode()
    for task in (*TASK_KEYS, "video_depth"):
        for split in SPLIT_SCENES:
            files[manifest_relpath(task, split)] = json.dumps(_manifest(task, split, layout)).encode()
    return tuple(sorted(files.items()))


def build_repo_files(layout: str) -> dict[str, bytes]:
    """A fresh ``{repo path: bytes}`` dict of the test dataset in ``layout`` ("loose" or "sharded")."""
    return dict(_build_repo_files(layout))


def write_repo_files(files: dict[str, bytes], folder: Path) -> Path:
    """Write ``files`` under ``folder`` (a local mirror laid out like the Hub repo); return the folder."""
    for path, data in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return folder


def files_of(layout: str, scenes, phases=PHASE_FOLDERS, modalities=("rgb", "depth", "mask", "pose")) -> set[str]:
    """Repo paths of the data files of ``modalities`` for ``scenes`` x ``phases`` in ``layout``."""
    out: set[str] = set()
    for scene in scenes:
        for phase in phases:
            for modality in modalities:
                loose_folder, shard, _, suffix = _LAYOUT[modality]
                if layout == "loose":
                    out.update(
                        f"scenes/{scene}/{phase}/{loose_folder}/{stem(f)}{suffix}" for f in range(FRAMES_PER_CLIP)
                    )
                else:
                    out.add(f"scenes/{scene}/{phase}/{shard}")
    return out
