"""Write the procedural dataset: plan the clips, render and write their frames, call every task's
``sample_entry`` and write the manifests."""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rpx_tasks.constants import PHASES, SPLITS
from rpx_tasks.contracts.spec import TaskSpec
from rpx_tasks.decoding import pose_matrix
from rpx_tasks.errors import ConfigError
from rpx_tasks.manifest import manifest_relpath
from rpx_tasks.sample_data.encoders import png_bytes, write_npz
from rpx_tasks.sample_data.frame import SampleFrame
from rpx_tasks.sample_data.objects import clip_entities, frame_objects, id_lookup, instance_ids
from rpx_tasks.sample_data.render import DROPOUT_BY_SPLIT, FIRST_OBJECT, Rays, render_frame
from rpx_tasks.sample_data.scene import (
    ArmPlacement,
    Box,
    CameraPose,
    Room,
    arm_motion,
    arm_world_boxes,
    clip_trajectory,
    make_room,
    phase_objects,
    rotation_to_quaternion_xyzw,
    seeded_rng,
)
from rpx_tasks.tasks import iter_tasks

PAIR_STRIDE = 2  # SampleFrame.later is this many frames later


def scene_name(scene_idx: int) -> str:
    """Folder name of the ``scene_idx``-th scene (``scene_000``, ...)."""
    return f"scene_{scene_idx:03d}"


def write_sample_dataset(
    root: str | Path,
    *,
    scenes_per_split: int = 2,
    frames_per_clip: int = 4,
    height: int = 96,
    width: int = 128,
    seed: int = 0,
    splits: Sequence[str] = SPLITS,
) -> Path:
    """Write the procedural RPX-layout dataset under ``root`` for every registered task; return ``root`` as a Path.

    Writes ``scenes/<scene>/<phase_idx>/{rgb,depth,pose}/<stem>`` for 3 x ``scenes_per_split``
    scenes (the first ``scenes_per_split`` easy, then medium, then hard) x 3 phases x
    ``frames_per_clip`` frames, the label files each task's ``sample_entry`` writes, and
    ``manifests/<task>/{easy,medium,hard,all}.json`` for every registered task with a
    ``sample_entry`` (``root`` null, paths relative to ``root``, samples ordered by scene,
    phase, frame). ``splits`` limits the difficulties written (scene names and content stay as
    in the full dataset; only those splits' manifests are written, and ``all.json`` lists just
    them). Same arguments give the same bytes; files already under ``root`` are overwritten or
    left alone. Raises ConfigError on non-positive sizes or an unknown split; a task's
    ``sample_entry`` may raise its own errors.
    """
    if min(scenes_per_split, frames_per_clip, height, width) < 1:
        raise ConfigError(
            "scenes_per_split, frames_per_clip, height and width must be >= 1",
            hint="e.g. rpx sample-data DIR --frames-per-clip 4",
        )
    splits = _checked_splits(splits)
    specs = [spec for spec in iter_tasks() if spec.sample_entry is not None]
    root = Path(root)
    clips = _plan_clips(seed, scenes_per_split, frames_per_clip, splits)
    rays = Rays(height, width)
    entries: dict[str, dict[str, list[dict]]] = {spec.name: {split: [] for split in splits} for spec in specs}
    # Clips are independent and numpy/zlib release the GIL, so threads overlap rendering and encoding.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for clip, clip_entries in zip(clips, pool.map(lambda clip: _write_clip(root, clip, rays, specs), clips)):
            for task, samples in clip_entries.items():
                entries[task][clip.split] += samples
    for spec in specs:
        by_split = entries[spec.name]
        for split in splits:
            _write_manifest(root / manifest_relpath(spec.name, split), spec.name, split, by_split[split])
        _write_manifest(
            root / manifest_relpath(spec.name, "all"),
            spec.name,
            "all",
            [entry for split in splits for entry in by_split[split]],
        )
    return root


def _checked_splits(splits: Sequence[str]) -> list[str]:
    """The requested splits in SPLITS order. Raises ConfigError for an empty list or an unknown split."""
    if isinstance(splits, str):
        splits = [splits]
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown or not splits:
        raise ConfigError(
            f"splits must be a non-empty subset of {SPLITS}, got {list(splits)}", hint=f"choose from {SPLITS}"
        )
    return [split for split in SPLITS if split in splits]


def _write_manifest(path: Path, task: str, split: str, samples: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest = {"task": task, "split": split, "root": None, "samples": samples}
    path.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class _ClipJob:
    """Everything needed to render one (scene, phase) clip."""

    room: Room
    seed: int
    scene_idx: int
    phase_idx: int
    split: str
    objects: list[Box]
    trajectory: list[CameraPose]
    arm: list[ArmPlacement] | None


def _plan_clips(seed: int, scenes_per_split: int, frames_per_clip: int, splits: list[str]) -> list[_ClipJob]:
    """Every (scene, phase) clip of ``splits``, by scene then phase; scene indices as in the full dataset."""
    clips = []
    for split in splits:
        split_idx = SPLITS.index(split)
        for scene_idx in range(split_idx * scenes_per_split, (split_idx + 1) * scenes_per_split):
            room = make_room(seed, scene_idx, split)
            for phase_idx in range(len(PHASES)):
                clips.append(_plan_clip(room, seed, scene_idx, phase_idx, split, frames_per_clip))
    return clips


def _plan_clip(room: Room, seed: int, scene_idx: int, phase_idx: int, split: str, frames_per_clip: int) -> _ClipJob:
    arm = None
    if PHASES[phase_idx] == "interaction":
        arm = arm_motion(seeded_rng(seed, scene_idx, phase_idx, 0xA53), frames_per_clip)
    return _ClipJob(
        room=room,
        seed=seed,
        scene_idx=scene_idx,
        phase_idx=phase_idx,
        split=split,
        objects=phase_objects(room, seed, scene_idx, phase_idx),
        trajectory=clip_trajectory(room, seed, scene_idx, phase_idx, split, frames_per_clip),
        arm=arm,
    )


def _write_clip(root: Path, clip: _ClipJob, rays: Rays, specs: list[TaskSpec]) -> dict[str, list[dict]]:
    """Render, write and describe one clip's frames; returns each task's manifest entries in frame order.

    Frames are rendered in order and handed to the tasks ``PAIR_STRIDE`` frames late, so each
    one's ``later`` frame exists while only ``PAIR_STRIDE + 1`` frames are held. A clip task's frame
    entries become its one clip entry (``ClipUnit.sample_clip_entry``).
    """
    entries: dict[str, list[dict]] = {spec.name: [] for spec in specs}
    pending: deque[SampleFrame] = deque()
    for frame in _rendered_frames(root, clip, rays):
        pending.append(frame)
        if len(pending) > PAIR_STRIDE:
            earlier = pending.popleft()
            earlier.later = frame
            _collect_entries(specs, earlier, entries)
    while pending:
        earlier = pending.popleft()
        earlier.later = pending[-1] if pending else None
        _collect_entries(specs, earlier, entries)
    for spec in specs:  # a clip task's manifest lists the clip once, with its frames
        if spec.clip is not None and entries[spec.name]:
            entries[spec.name] = [spec.clip.sample_clip_entry(entries[spec.name])]
    return entries


def _rendered_frames(root: Path, clip: _ClipJob, rays: Rays) -> Iterator[SampleFrame]:
    """Render the clip's frames in order, write each one's rgb, depth and pose files and yield it."""
    scene = scene_name(clip.scene_idx)
    entities = clip_entities(clip.objects, with_arm=clip.arm is not None)
    lookup: np.ndarray | None = None
    ids = {}
    for frame_idx, (position, rotation) in enumerate(clip.trajectory):
        arm_boxes = arm_world_boxes(clip.arm[frame_idx], (position, rotation)) if clip.arm else []
        rng = seeded_rng(clip.seed, clip.scene_idx, clip.phase_idx, frame_idx, 0xF4A)
        rgb, depth_mm, code, surface = render_frame(
            clip.room, clip.objects + arm_boxes, position, rotation, rays, rng, DROPOUT_BY_SPLIT[clip.split]
        )
        if lookup is None:
            ids = instance_ids(entities, code)
            lookup = id_lookup(ids, FIRST_OBJECT + len(clip.objects) + len(arm_boxes))
        instances = np.take(lookup, code.astype(np.intp))
        quaternion = rotation_to_quaternion_xyzw(rotation)
        frame = SampleFrame(
            root=root,
            scene=scene,
            phase_idx=clip.phase_idx,
            frame_idx=frame_idx,
            frames_in_clip=len(clip.trajectory),
            split=clip.split,
            rgb=rgb,
            depth_mm=depth_mm,
            instances=instances,
            objects=frame_objects(instances, ids),
            pose=pose_matrix(position, quaternion),
            intrinsics=rays.intrinsics,
            _surface_depth_m=surface,
        )
        _write_frame_files(frame, position, quaternion)
        yield frame


def _write_frame_files(frame: SampleFrame, position: np.ndarray, quaternion: np.ndarray) -> None:
    """Write the frame's rgb and depth PNGs and its pose .npz (position, xyzw orientation)."""
    for key, data in (("rgb", png_bytes(frame.rgb)), ("depth", png_bytes(frame.depth_mm))):
        path = frame.root / frame.paths[key]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    pose_path = frame.root / frame.paths["pose"]
    pose_path.parent.mkdir(parents=True, exist_ok=True)
    write_npz(pose_path, position=np.asarray(position, np.float64), orientation=quaternion)


def _collect_entries(specs: list[TaskSpec], frame: SampleFrame, entries: dict[str, list[dict]]) -> None:
    """Append each task's ``sample_entry(frame)`` to ``entries[task]`` (None skips the frame).

    Raises ConfigError when a ``sample_entry`` returns something other than a dict or None.
    """
    for spec in specs:
        entry = spec.sample_entry(frame)
        if entry is None:
            continue
        if not isinstance(entry, dict):
            raise ConfigError(
                f"Task {spec.name}: sample_entry returned {type(entry).__name__}, not a dict or None.",
                hint="return frame.base_entry() plus the task's label keys, or None to skip the frame",
            )
        entries[spec.name].append(entry)
