"""Which repo files each modality lives in, and the download patterns for a set of clips.

The RPX dataset repo holds one folder per clip, ``scenes/<scene>/<phase>/``, in one of two
layouts (reference §4.3): loose files (``rgb/00000.png``, ``depth/00000.png``, ...) or per-clip
tar shards (``rgb.tar``, ``depth.tar``, ``labels/masks/v1.tar``, ...) that are extracted to
``extracted/scenes/<scene>/<phase>/`` after download. A task names the modalities it needs and
only those files of only the split's clips are fetched.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple, Sequence

from rpx_tasks.errors import ConfigError


class ModalityFiles(NamedTuple):
    """Where one modality lives inside a clip folder: loose-file globs and an optional tar shard."""

    globs: tuple[str, ...]
    shard: str | None


# The one table: modality -> files relative to a clip folder ``scenes/<scene>/<phase>/``.
MODALITY_FILES: dict[str, ModalityFiles] = {
    "rgb": ModalityFiles(("rgb/*",), "rgb.tar"),
    "depth": ModalityFiles(("depth/*",), "depth.tar"),
    "mask": ModalityFiles(("mask/*",), "labels/masks/v1.tar"),
    "pose": ModalityFiles(("pose/*",), "labels/cam_pose/v1.tar"),
    "tracklets": ModalityFiles(("tracklets.json",), None),
    "questionnaires": ModalityFiles(("questionnaires.json",), None),
    "spatial_qa": ModalityFiles(("spatial_qa.json",), None),
    "general_qa": ModalityFiles(("general_qa.json",), None),
    "keypoints": ModalityFiles(("keypoints/*",), None),
    "sparse_depth": ModalityFiles(("sparse_depth/*",), None),
    "sam2_meta": ModalityFiles(("sam2_meta/*",), "labels/sam2_meta/v1.tar"),
    "fisheye": ModalityFiles(("fisheye/*",), "fisheye.tar"),
}

# Manifest sample keys that hold a file of a modality (checked to exist after download).
MODALITY_SAMPLE_KEYS: dict[str, tuple[str, ...]] = {
    "rgb": ("rgb", "rgb_b", "target_rgb"),
    "depth": ("depth",),
    "mask": ("mask",),
    "pose": ("pose", "pose_a", "pose_b", "target_pose", "camera_pose"),
    "fisheye": ("fisheye_left", "fisheye_right"),
}

CHECKSUMS_PATH = "manifest/checksums.json"


def check_modalities(modalities: Iterable[str]) -> tuple[str, ...]:
    """Return ``modalities`` as a de-duplicated tuple (order kept).

    Raises ConfigError naming the unknown ones when a name is not in MODALITY_FILES, or when
    the list is empty.
    """
    names = tuple(dict.fromkeys(modalities))
    unknown = [name for name in names if name not in MODALITY_FILES]
    if unknown:
        raise ConfigError(
            f"Unknown modality {', '.join(map(repr, unknown))}.",
            hint=f"known modalities: {', '.join(MODALITY_FILES)}",
            details={"unknown": unknown},
        )
    if not names:
        raise ConfigError("No modality to download.", hint="a task needs at least the 'rgb' modality")
    return names


def _glob_escape(text: str) -> str:
    """Escape fnmatch wildcards in a literal path part (scene names are data, not patterns)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def clip_prefix(scene: str, phase: str) -> str:
    """Repo folder of one clip: ``scenes/<scene>/<phase>``."""
    return f"scenes/{scene}/{phase}"


def allow_patterns(pairs: Sequence[tuple[str, str]], modalities: Sequence[str]) -> list[str]:
    """Download patterns for every (scene, phase) clip and modality, loose globs and shard.

    Pairs are taken in sorted order; duplicates are removed, order is kept. For example
    2 pairs x ("rgb", "depth") give 8 patterns: ``scenes/s/0/rgb/*``, ``scenes/s/0/rgb.tar``,
    ``scenes/s/0/depth/*``, ``scenes/s/0/depth.tar``, then the same for the second clip.
    Raises ConfigError for an unknown modality.
    """
    names = check_modalities(modalities)
    patterns: dict[str, None] = {}
    for scene, phase in sorted(pairs):
        prefix = f"scenes/{_glob_escape(scene)}/{_glob_escape(phase)}"
        for name in names:
            files = MODALITY_FILES[name]
            for glob in files.globs:
                patterns[f"{prefix}/{glob}"] = None
            if files.shard is not None:
                patterns[f"{prefix}/{_glob_escape(files.shard)}"] = None
    return list(patterns)


def shard_paths(pairs: Sequence[tuple[str, str]], modalities: Sequence[str]) -> list[str]:
    """Repo paths of the tar shards the clips and modalities may have (present or not)."""
    paths: list[str] = []
    for scene, phase in sorted(pairs):
        for name in check_modalities(modalities):
            shard = MODALITY_FILES[name].shard
            if shard is not None:
                paths.append(f"{clip_prefix(scene, phase)}/{shard}")
    return paths
