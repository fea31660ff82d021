"""A split on disk: manifest entries -> decoded Samples, with decoding overlapped with inference."""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from rpx_tasks.contracts.clips import CLIP_KEY, ClipPosition, FrameSelection, ends_clip
from rpx_tasks.contracts.spec import PathResolver, TaskSpec
from rpx_tasks.contracts.stage_timer import timed_decode
from rpx_tasks.contracts.vocabulary import SplitEntries, VocabularyOverride
from rpx_tasks.cpu_budget import run_in_background
from rpx_tasks.decoding import decode_pose, decode_rgb
from rpx_tasks.entry_checks import camera_pose_path, check_clip_fields, check_common_fields
from rpx_tasks.errors import ConfigError, ManifestError
from rpx_tasks.manifest import (
    check_manifest,
    clip_folder,
    dataset_root,
    phase_name,
    read_manifest,
    resolve_in_root,
)
from rpx_tasks.prefetch import prefetch_processes, prefetch_threads, processes_available
from rpx_tasks.sample import Sample
from rpx_tasks.tasks import task_names

DECODE_ENGINES = ("threads", "processes")
# Below this many samples the worker process's start-up (a fraction of a second) is not repaid.
PROCESS_ENGINE_MIN_SAMPLES = 32


def _frame_index(entry: dict[str, Any]) -> int | None:
    value = entry.get("frame_idx")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _clip_sort_key(indexed: tuple[int, dict[str, Any]]):
    position, entry = indexed
    clip = clip_folder(entry) or ("", "")
    frame = _frame_index(entry)
    return (clip[0], clip[1], frame if frame is not None else position, position)


@dataclass
class SplitDataset:
    """The samples of one manifest, ready to decode.

    Entries are ordered by (scene, phase, frame_idx) so that temporal metrics see each
    clip's frames consecutively; every field of every entry is checked up front (``open_split``).
    ``vocabulary`` is the record of the vocabulary the samples' model receives (tasks with a
    ``settle_vocabulary`` hook; None for the others), as result.json keeps it. ``shard``: the record of the
    shard these entries are (``rpx_tasks.sharding.shard_split``), else None.
    """

    spec: TaskSpec
    manifest_path: Path
    root: Path
    entries: list[dict[str, Any]]
    split: str | None = None
    vocabulary: dict[str, Any] | None = None
    shard: dict[str, Any] | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def resolve(self, value: Any, sample_id: str, key: str) -> Path:
        """Absolute path of ``value`` inside the dataset root. Raises ManifestError on escape."""
        return resolve_in_root(self.root, value, sample_id=sample_id, key=key)

    def decode(self, entry: dict[str, Any]) -> Sample:
        """Decode one manifest entry into a Sample. Raises ManifestError naming sample and file."""
        sample_id = entry["id"]
        rgb = decode_rgb(self.resolve(entry["rgb"], sample_id, "rgb"), sample_id)
        ground_truth = self.spec.load_ground_truth(entry, self.resolve)
        pose_path = camera_pose_path(entry, self.resolve, self.spec)
        pose = decode_pose(pose_path, sample_id) if pose_path is not None else None
        clip = clip_folder(entry)
        metadata = dict(entry.get("metadata") or {})
        if entry.get("rgb_b") is not None:
            # The second frame of pair tasks (relative pose, keypoint matching).
            metadata["rgb_b"] = decode_rgb(self.resolve(entry["rgb_b"], sample_id, "rgb_b"), sample_id, "rgb_b")
        return Sample(
            id=sample_id,
            rgb=rgb,
            ground_truth=ground_truth,
            scene=clip[0] if clip else None,
            phase=phase_name(entry.get("phase", clip[1] if clip else None)),
            difficulty=entry.get("difficulty") or self.split,
            frame_idx=_frame_index(entry),
            camera_pose=pose,
            metadata=metadata,
        )

    def _spec_module(self) -> str | None:
        # The worker process rebuilds the dataset from the module defining the task's SPEC, so
        # only the built-in tasks qualify; specs made at run time decode in-process.
        for name, module in list(sys.modules.items()):
            if name.startswith("rpx_tasks.tasks.") and getattr(module, "SPEC", None) is self.spec:
                return name
        return None

    def decode_engine(self, engine: str | None = None) -> str:
        """The decoding engine ``iter_batches`` uses: ``engine``, else $RPX_DECODE_ENGINE, else automatic.

        Automatic picks ``processes`` on Linux for registered tasks with at least
        ``PROCESS_ENGINE_MIN_SAMPLES`` samples, ``threads`` otherwise; ``processes`` falls back
        to ``threads`` where it cannot run. Raises ConfigError for an unknown engine name.
        """
        choice = engine or os.environ.get("RPX_DECODE_ENGINE") or None
        if choice is not None and choice not in DECODE_ENGINES:
            raise ConfigError(
                f"Unknown decode engine {choice!r}.",
                hint=f"use one of: {', '.join(DECODE_ENGINES)} (RPX_DECODE_ENGINE)",
            )
        possible = processes_available() and self._spec_module() is not None
        if choice is None:
            choice = "processes" if len(self) >= PROCESS_ENGINE_MIN_SAMPLES else "threads"
        return choice if (choice == "threads" or possible) else "threads"

    def iter_batches(
        self,
        batch_size: int = 1,
        *,
        prefetch_batches: int = 2,
        workers: int = 2,
        engine: str | None = None,
        start: int = 0,
        whole_clips: bool = False,
        background: bool = False,
    ) -> Iterator[list[Sample]]:
        """Yield lists of decoded Samples of ``batch_size`` (the last may be shorter), in order, from the
        ``start``-th sample on (a resumed run skips the samples it has done).

        Up to ``prefetch_batches`` batches are decoded ahead while the caller runs inference,
        so memory stays O(batch): by ``workers`` threads, or by one worker process (see
        ``decode_engine`` for the choice; ``workers=0`` decodes on the caller's thread, batch by batch;
        ``background``: the decoding threads or the worker run at a lower CPU priority,
        ``cpu_budget.run_in_background``). For a clip task a batch never crosses a clip's end (it may
        be shorter there), and with ``whole_clips`` each batch is one whole clip (memory O(clip)).
        Raises ManifestError from decoding, ConfigError for an unknown engine.
        """
        if self.spec.clip is None:
            return self._prefetch(self.entries[start:], batch_size, prefetch_batches, workers, engine, background)
        per_batch = self.longest_clip() if whole_clips else batch_size
        # Frames are decoded a few batches ahead (never whole clips ahead: _clip_batches assembles one clip).
        frames = self._prefetch(
            self.entries[start:], 1, max(1, prefetch_batches * batch_size), workers, engine, background
        )
        return _clip_batches(frames, per_batch)

    def longest_clip(self) -> int:
        """The frame count of the split's longest clip (1 for a frame task: every sample is its own unit)."""
        return max((clip_length(entry) for entry in self.entries), default=1)

    def _prefetch(
        self,
        entries: list[dict[str, Any]],
        batch_size: int,
        depth: int,
        workers: int,
        engine: str | None,
        background: bool = False,
    ) -> Iterator[list[Sample]]:
        if workers == 0:
            return _decode_inline(timed_decode(self.decode), entries, batch_size)
        if self.decode_engine(engine) == "processes":
            args = (self._spec_module(), str(self.manifest_path), str(self.root), self.split, background)
            return prefetch_processes("rpx_tasks.dataset:worker_decoder", args, entries, batch_size, depth=depth)
        decode = timed_decode(self.decode)
        return prefetch_threads(
            run_in_background(decode) if background else decode, entries, batch_size, depth=depth, workers=workers
        )


def clip_length(entry: dict[str, Any]) -> int:
    """The number of frames of the clip a frame entry of a clip task belongs to (1 for a frame task's entry)."""
    where = (entry.get("metadata") or {}).get(CLIP_KEY)
    return int(where["frames"]) if isinstance(where, dict) else 1


def row_id(entry: dict[str, Any], spec: TaskSpec) -> str:
    """The id of the per-sample row an entry ends up in: its own, or its clip's for a frame of a clip task."""
    return str(entry["metadata"][CLIP_KEY]["id"]) if spec.clip is not None else entry["id"]


def _clip_batches(frames: Iterator[list[Sample]], batch_size: int) -> Iterator[list[Sample]]:
    """Regroup single decoded frames into batches of up to ``batch_size`` that end at every clip end."""
    batch: list[Sample] = []
    try:
        for (sample,) in frames:
            batch.append(sample)
            if len(batch) >= batch_size or ends_clip(sample):
                yield batch
                batch = []
        if batch:
            yield batch
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()


def _decode_inline(decode, entries: list[dict[str, Any]], batch_size: int) -> Iterator[list[Sample]]:
    """Yield batches of ``decode(entry)`` decoded on the caller's thread when asked for."""
    for first in range(0, len(entries), batch_size):
        yield [decode(entry) for entry in entries[first : first + batch_size]]


def worker_decoder(spec_module: str, manifest_path: str, root: str, split: str | None, background: bool = False):
    """The decode function of a built-in task's split (``spec_module`` defines its SPEC), rebuilt
    inside the decoding worker process (at a lower CPU priority with ``background``)."""
    decode = timed_decode(
        SplitDataset(
            spec=importlib.import_module(spec_module).SPEC,
            manifest_path=Path(manifest_path),
            root=Path(root),
            entries=[],
            split=split,
        ).decode
    )
    return run_in_background(decode) if background else decode


def _resolver(root: Path, *, remember: bool = False) -> PathResolver:
    """The PathResolver of a dataset root: ``resolve_in_root`` (ManifestError for a path that escapes it).

    With ``remember`` each path it resolved is kept (use one per entry: the checks ask for the
    same path several times).
    """
    resolved: dict[str, Path] = {}

    def resolve(value: Any, sample_id: str, key: str) -> Path:
        if remember and isinstance(value, str) and value in resolved:
            return resolved[value]
        path = resolve_in_root(root, value, sample_id=sample_id, key=key)
        if remember:
            resolved[value] = path
        return path

    return resolve


def _settle_vocabulary(
    spec: TaskSpec,
    manifest: dict[str, Any],
    manifest_path: Path,
    root: Path,
    entries: list[dict[str, Any]],
    override: VocabularyOverride | None,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The entries with the vocabulary their model receives, and its record (tasks with a vocabulary hook).

    Raises ConfigError for an override on a task without a vocabulary, ManifestError from the hook.
    """
    if spec.settle_vocabulary is None:
        if override is not None:
            raise ConfigError(f"{spec.name} takes no vocabulary.", hint="drop --vocabulary for this task")
        return entries, None
    settled = spec.settle_vocabulary(SplitEntries(manifest, str(manifest_path), entries, _resolver(root)), override)
    return settled.entries, settled.record


def _check_required_keys(entries: list[dict[str, Any]], spec: TaskSpec, manifest_path: Path) -> None:
    """Raise ManifestError for the first entry without one of the task's ``required_keys``."""
    for entry in entries:
        for key in spec.required_keys:
            if key not in entry:
                raise ManifestError(
                    f"Sample {entry['id']!r} in {manifest_path} has no '{key}' field, required by {spec.name}.",
                    hint=f"{spec.name} samples need: "
                    + ", ".join(spec.required_keys if spec.clip is not None else ("rgb", *spec.required_keys)),
                    details={"sample": entry["id"], "key": key, "value": None},
                )


def _check_entries(entries: list[dict[str, Any]], spec: TaskSpec, root: Path) -> None:
    """Check every field of every (frame) entry, in order: the fields all tasks share
    (``entry_checks.check_common_fields``) and the task's label values (``spec.check_entry``).

    Raises ManifestError for the first bad entry, naming the sample, the field and its value.
    """
    clip_sizes: dict[str, tuple[str, Any]] = {}
    for entry in entries:
        resolve = _resolver(root, remember=True)
        rgb_size = check_common_fields(entry, resolve, spec)
        if spec.clip is not None:
            _check_clip_frame_size(entry, rgb_size, clip_sizes)
        if spec.check_entry is not None:
            spec.check_entry(entry, resolve, rgb_size)


def _check_clip_frame_size(entry: dict[str, Any], rgb_size: Any, clip_sizes: dict[str, tuple[str, Any]]) -> None:
    """Raise ManifestError when a frame of a clip task has another RGB size than its clip's first frame."""
    clip_id = str(entry["metadata"][CLIP_KEY]["id"])
    first_id, first_size = clip_sizes.setdefault(clip_id, (entry["id"], rgb_size))
    if rgb_size != first_size:
        raise ManifestError(
            f"Sample {entry['id']!r}: its RGB frame is {rgb_size[0]}x{rgb_size[1]} (HxW), the first frame of clip "
            f"{clip_id!r} ({first_id!r}) {first_size[0]}x{first_size[1]}.",
            hint="every frame of a clip comes from one camera: give them one size",
            details={"sample": entry["id"], "key": "rgb", "value": list(rgb_size)},
        )


def _expand_clips(
    entries: list[dict[str, Any]], spec: TaskSpec, root: Path, frames: FrameSelection
) -> list[dict[str, Any]]:
    """The frame entries of a clip task's clip entries (clips ordered by scene and phase, frames in clip
    order), each clip trimmed by ``frames`` and each frame told its place in its clip (``CLIP_KEY``).

    Raises ManifestError from the task's expansion, and for two frames of one id.
    """
    assert spec.clip is not None
    expanded: list[dict[str, Any]] = []
    seen: set[str] = set()
    for _, clip in sorted(enumerate(entries), key=_clip_sort_key):
        check_clip_fields(clip)
        kept = frames.select(spec.clip.expand(clip, _resolver(root)))
        for position, frame in enumerate(kept):
            if frame["id"] in seen:
                raise ManifestError(
                    f"Clip {clip['id']!r} lists frame {frame['id']!r} twice (or another clip has it).",
                    hint="every frame of a clip is listed once, and clip ids are unique",
                    details={"sample": clip["id"], "key": "frame_filenames", "value": frame["id"]},
                )
            seen.add(frame["id"])
            where = ClipPosition(clip["id"], position, len(kept))
            frame["metadata"] = {**frame.get("metadata", {}), CLIP_KEY: where.as_metadata()}
            expanded.append(frame)
    return expanded


def open_split(
    manifest_path: str | Path,
    spec: TaskSpec,
    *,
    max_samples: int | None = None,
    split: str | None = None,
    vocabulary: VocabularyOverride | None = None,
    frames: FrameSelection | None = None,
) -> SplitDataset:
    """Open a manifest for ``spec``'s task.

    Keeps the first ``max_samples`` entries of the manifest, checks every field of each of them
    against its domain (``_check_entries``: required keys, phase, difficulty, scene, frame index,
    paths inside the dataset root, the RGB header, the task's label values and label-map sizes),
    and orders entries by clip and frame. For a task with a vocabulary, settles the vocabulary
    every sample's model receives (``vocabulary``: the parsed ``--vocabulary`` override, see
    ``rpx_tasks.contracts.vocabulary``). For a clip task (``spec.clip``) the manifest's entries are
    clips: ``max_samples`` counts clips, each clip becomes its frame entries (``_expand_clips``,
    trimmed by ``frames``), and the checks apply to every frame. Raises
    ManifestError for any problem, naming the sample; ConfigError for ``vocabulary`` on a task
    without one.
    """
    manifest_path = Path(manifest_path)
    manifest = read_manifest(manifest_path)
    check_manifest(
        manifest,
        source=str(manifest_path),
        known_tasks=task_names(),
        expected_task=spec.name,
        frame_samples=spec.clip is None,
    )
    entries = manifest["samples"]
    if max_samples is not None:
        entries = entries[:max_samples]
    if not entries:
        raise ManifestError(
            f"Manifest {manifest_path} has no samples.", hint="pick a split or manifest that lists samples"
        )
    root = dataset_root(manifest, manifest_path)
    _check_required_keys(entries, spec, manifest_path)
    if spec.clip is not None:
        entries = _expand_clips(entries, spec, root, frames or FrameSelection())
    _check_entries(entries, spec, root)
    if spec.clip is not None:
        ordered = entries  # already clip by clip, frames in clip order
    else:
        ordered = [entry for _, entry in sorted(enumerate(entries), key=_clip_sort_key)]
    ordered, vocabulary_record = _settle_vocabulary(spec, manifest, manifest_path, root, ordered, vocabulary)
    return SplitDataset(
        spec=spec,
        manifest_path=manifest_path,
        root=root,
        entries=ordered,
        split=split or manifest.get("split"),
        vocabulary=vocabulary_record,
    )
