"""Manifest files: reading, checking, the dataset root, safe paths and (scene, phase) clips.

A manifest is ``{"task": ..., "root": str | null, "samples": [...], "split"?: ..., "scenes"?: ...}``.
A null ``root`` means the dataset root: the folder that holds ``manifests/``. Relative sample
paths resolve against the root and may never escape it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

from rpx_tasks.constants import PHASE_BY_INDEX, PHASES
from rpx_tasks.errors import ManifestError

# The folder of a dataset root that holds the manifests: manifests/<task>/<split>.json.
MANIFESTS_DIR = "manifests"

# Every manifest sample key that may hold a file path (when its value is a string): each is
# checked to stay inside the dataset root.
PATH_KEYS: tuple[str, ...] = (
    "rgb",
    "rgb_b",
    "target_rgb",
    "depth",
    "mask",
    "pose",
    "pose_a",
    "pose_b",
    "target_pose",
    "camera_pose",
    "fisheye_left",
    "fisheye_right",
    "boxes",
    "tracks",
    "coordinates",
    "depths",
    "points0",
    "points1",
    "visibility",
    "vocabulary",
)

# The PATH_KEYS that only ever hold a file path (the others may also hold their value inline):
# when present and not null, each must be a non-empty string.
FILE_KEYS: tuple[str, ...] = (
    "rgb",
    "rgb_b",
    "target_rgb",
    "depth",
    "mask",
    "pose",
    "pose_a",
    "pose_b",
    "fisheye_left",
    "fisheye_right",
)

# Sample keys whose path reveals the (scene, phase) clip, in order of preference.
CLIP_PATH_KEYS: tuple[str, ...] = ("rgb", "depth", "mask")


def manifest_relpath(task: str, split: str, suffix: str = "") -> str:
    """Return the dataset-root-relative POSIX path of a manifest: ``manifests/<task>/<split><suffix>.json``.

    ``suffix`` tells variants of one split apart (``".max8"`` for a manifest cut to 8 samples).
    The same scheme holds on the Hub, in a local mirror, in the RPX cache and in the sample data.
    Raises nothing.
    """
    return f"{MANIFESTS_DIR}/{task}/{split}{suffix}.json"


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Read and parse a manifest JSON file.

    Returns the manifest dict. Raises ManifestError when the file is missing, is not valid
    JSON, or is not a JSON object.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(
            f"Manifest file not found: {path}",
            hint="pass an existing manifest with --manifest, or run `rpx download <task> --split S` first",
            details={"path": str(path)},
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(
            f"Manifest at {path} is not valid JSON: {exc}",
            hint="re-download the manifest or fix the file by hand",
            details={"path": str(path)},
        ) from exc
    if not isinstance(data, dict):
        raise ManifestError(
            f"Manifest at {path} must be a JSON object, got {type(data).__name__}.",
            hint='expected {"task": ..., "root": ..., "samples": [...]}',
        )
    return data


def check_manifest(
    manifest: dict[str, Any],
    *,
    source: str,
    known_tasks: Iterable[str],
    expected_task: str | None = None,
    frame_samples: bool = True,
) -> None:
    """Check the top-level structure of a manifest.

    Raises ManifestError when ``task`` is missing or unknown or differs from
    ``expected_task``, when ``samples`` is missing or not a list, or when a sample is not an
    object with an ``id`` and (``frame_samples``; a clip task's entries list their frames instead) an
    ``rgb`` path.
    """
    known = list(known_tasks)
    task = manifest.get("task")
    if task is None:
        raise ManifestError(f"Manifest {source} has no 'task' field.", hint=f"add one of: {', '.join(known)}")
    if task not in known:
        raise ManifestError(f"Manifest {source} names unknown task {task!r}.", hint=f"valid tasks: {', '.join(known)}")
    if expected_task is not None and task != expected_task:
        raise ManifestError(
            f"Manifest {source} is for task {task!r}, not {expected_task!r}.",
            hint=f"run `rpx bench {task}` with this manifest, or pass a {expected_task} manifest",
        )
    samples = manifest.get("samples")
    if samples is None:
        raise ManifestError(
            f"Manifest {source} has no 'samples' field.", hint="a manifest lists its samples under 'samples'"
        )
    if not isinstance(samples, list):
        raise ManifestError(
            f"Manifest {source}: 'samples' must be a list, got {type(samples).__name__}.",
            hint='a manifest lists its samples as "samples": [{"id": ..., "rgb": ...}, ...]',
        )
    root = manifest.get("root")
    if root is not None and not isinstance(root, str):
        raise ManifestError(
            f"Manifest {source}: 'root' must be a string or null, got {type(root).__name__}.",
            hint="'root' is the folder sample paths resolve against, or null for the folder holding manifests/",
        )
    seen: set[str] = set()
    for index, entry in enumerate(samples):
        if not isinstance(entry, dict):
            raise ManifestError(
                f"Manifest {source}: sample #{index} is not an object: {entry!r:.80}.",
                hint="every item of 'samples' is an object with at least 'id' and 'rgb'",
                details={"sample": index, "value": repr(entry)[:80]},
            )
        sample_id = entry.get("id")
        if not isinstance(sample_id, str) or not sample_id.strip():
            what = "has no 'id'" if "id" not in entry else f"has 'id' {sample_id!r}, not a non-empty string"
            raise ManifestError(
                f"Manifest {source}: sample #{index} {what}.",
                hint="every sample needs a unique string id",
                details={"sample": index, "key": "id", "value": sample_id},
            )
        if sample_id in seen:
            raise ManifestError(
                f"Manifest {source}: sample id {sample_id!r} appears twice (again at sample #{index}).",
                hint="sample ids must be unique",
                details={"sample": sample_id, "key": "id", "value": sample_id},
            )
        seen.add(sample_id)
        if frame_samples and not isinstance(entry.get("rgb"), str):
            raise ManifestError(
                f"Manifest {source}: sample {sample_id!r} has no 'rgb' path (got {entry.get('rgb')!r:.80}).",
                hint="every sample needs 'rgb': the path of its colour image, relative to the dataset root",
                details={"sample": sample_id, "key": "rgb", "value": entry.get("rgb")},
            )


def dataset_root(manifest: dict[str, Any], manifest_path: str | Path) -> Path:
    """The absolute folder that sample paths resolve against.

    A string ``root`` is used as is (relative to the manifest's folder when relative); a
    null root is the folder that holds ``manifests/`` above the manifest, else the
    manifest's own folder.
    """
    manifest_path = Path(manifest_path).resolve()
    root = manifest.get("root")
    if isinstance(root, str) and root:
        root_path = Path(root)
        return (root_path if root_path.is_absolute() else manifest_path.parent / root_path).resolve()
    for parent in manifest_path.parents:
        if parent.name == MANIFESTS_DIR:
            return parent.parent
    return manifest_path.parent


def resolve_in_root(root: Path, value: Any, *, sample_id: str, key: str) -> Path:
    """Resolve the path ``value`` of ``key`` in sample ``sample_id`` against ``root``.

    Returns an absolute path. Raises ManifestError when the value is not a string, or when a
    relative path escapes the dataset root (``../`` or a symlink pointing outside).
    """
    if not isinstance(value, str) or not value:
        raise ManifestError(
            f"Sample {sample_id!r}: '{key}' must be a file path, got {value!r}.",
            hint=f"'{key}' is a path, relative to the dataset root or absolute",
            details={"sample": sample_id, "key": key},
        )
    if os.path.isabs(value):
        return Path(value)
    # Lexical check, not Path.resolve(): files in a Hugging Face snapshot are symlinks into
    # the cache's blob store, which legitimately lies outside the snapshot folder.
    root_text = os.path.normpath(os.path.abspath(root))
    resolved = os.path.normpath(os.path.join(root_text, value))
    if resolved != root_text and not resolved.startswith(root_text + os.sep):
        raise ManifestError(
            f"Sample {sample_id!r}: '{key}' path {value!r} escapes the dataset root {root}.",
            hint="manifest paths must stay inside the dataset root; remove '..' components",
            details={"sample": sample_id, "key": key, "path": value},
        )
    return Path(resolved)


def phase_name(value: Any) -> str | None:
    """Normalise a phase given as a name, an int index or a digit string; None if unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return PHASE_BY_INDEX.get(value)
    if isinstance(value, str):
        if value in PHASES:
            return value
        if value.isascii() and value.isdigit():
            return PHASE_BY_INDEX.get(int(value))
    return None


def clip_from_paths(entry: dict[str, Any]) -> tuple[str, str] | None:
    """The (scene, phase folder) that the rgb/depth/mask path of a sample shows, e.g. ("scene_007", "1").

    Looks for a ``scenes`` component anywhere in the path and takes the next two components.
    Returns None when no such path is there. Raises nothing.
    """
    for key in CLIP_PATH_KEYS:
        value = entry.get(key)
        if not isinstance(value, str):
            continue
        parts = PurePosixPath(value.replace("\\", "/")).parts
        for i, part in enumerate(parts[:-2]):
            if part == "scenes":
                return parts[i + 1], parts[i + 2]
    return None


def clip_folder(entry: dict[str, Any]) -> tuple[str, str] | None:
    """The (scene, phase folder) of a sample as it appears on the Hub, e.g. ("scene_007", "1").

    The clip its paths show (:func:`clip_from_paths`), else the ``scene_id``/``scene`` and
    ``phase`` fields. Returns None when neither is available.
    """
    from_paths = clip_from_paths(entry)
    if from_paths is not None:
        return from_paths
    scene = entry.get("scene_id", entry.get("scene"))
    phase = entry.get("phase")
    if scene is None or phase is None or isinstance(phase, bool):
        return None
    if isinstance(phase, str) and phase in PHASES:
        phase = PHASES.index(phase)
    return str(scene), str(phase)


def scene_phase_pairs(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """Sorted unique (scene, phase folder) pairs a manifest needs, from ``scenes`` or the samples."""
    pairs: set[tuple[str, str]] = set()
    scenes = manifest.get("scenes")
    if isinstance(scenes, list) and scenes:
        for item in scenes:
            if isinstance(item, dict) and "scene" in item and "phase" in item:
                pairs.add((str(item["scene"]), str(item["phase"])))
    else:
        for entry in manifest.get("samples") or []:
            if isinstance(entry, dict):
                pair = clip_folder(entry)
                if pair is not None:
                    pairs.add(pair)
    return sorted(pairs)
