"""A split on disk: manifest entries -> decoded Samples, with decoding overlapped with inference."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from rpx_tasks.decoding import decode_pose, decode_rgb
from rpx_tasks.errors import ManifestError
from rpx_tasks.manifest import PATH_KEYS, check_manifest, clip_folder, dataset_root, phase_name, read_manifest, resolve_in_root
from rpx_tasks.prefetch import prefetch_threads
from rpx_tasks.sample import Sample
from rpx_tasks.tasks.spec import TaskSpec


def _frame_index(entry: dict[str, Any]) -> int | None:
    value = entry.get("frame_idx")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
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
    clip's frames consecutively; every path is checked against the dataset root up front.
    """

    spec: TaskSpec
    manifest_path: Path
    root: Path
    entries: list[dict[str, Any]]
    split: str | None = None

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
        pose = None
        if "pose" in entry:
            pose_path = self.resolve(entry["pose"], sample_id, "pose")
            # Poses feed temporal stability only; tasks that do not need them may lack the files.
            if "pose" in self.spec.modalities or pose_path.exists():
                pose = decode_pose(pose_path, sample_id)
        clip = clip_folder(entry)
        metadata = dict(entry.get("metadata") or {})
        if "rgb_b" in entry:
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

    def iter_batches(self, batch_size: int = 1, *, prefetch_batches: int = 2, workers: int = 2) -> Iterator[list[Sample]]:
        """Yield lists of decoded Samples of ``batch_size`` (the last may be shorter), in order.

        Up to ``prefetch_batches`` batches are decoded ahead by ``workers`` threads while the
        caller runs inference, so memory stays O(batch). Raises ManifestError from decoding.
        """
        return prefetch_threads(self.decode, self.entries, batch_size, depth=prefetch_batches, workers=workers)


def open_split(manifest_path: str | Path, spec: TaskSpec, *, max_samples: int | None = None, split: str | None = None) -> SplitDataset:
    """Open a manifest for ``spec``'s task.

    Keeps the first ``max_samples`` entries of the manifest, checks the required keys and that
    every path stays inside the dataset root, and orders entries by clip and frame.
    Raises ManifestError for any problem, naming the sample.
    """
    from rpx_tasks.tasks import task_names

    manifest_path = Path(manifest_path)
    manifest = read_manifest(manifest_path)
    check_manifest(manifest, source=str(manifest_path), known_tasks=task_names(), expected_task=spec.name)
    entries = manifest["samples"]
    if max_samples is not None:
        entries = entries[:max_samples]
    if not entries:
        raise ManifestError(f"Manifest {manifest_path} has no samples.", hint="pick a split or manifest that lists samples")
    root = dataset_root(manifest, manifest_path)
    for entry in entries:
        for key in spec.required_keys:
            if key not in entry:
                raise ManifestError(
                    f"Sample {entry['id']!r} in {manifest_path} has no '{key}' field, required by {spec.name}.",
                    hint=f"{spec.name} samples need: rgb, {', '.join(spec.required_keys)}",
                    details={"sample": entry["id"], "key": key},
                )
        for key in PATH_KEYS:
            value = entry.get(key)
            if isinstance(value, str):
                resolve_in_root(root, value, sample_id=entry["id"], key=key)
    ordered = [entry for _, entry in sorted(enumerate(entries), key=_clip_sort_key)]
    return SplitDataset(spec=spec, manifest_path=manifest_path, root=root, entries=ordered, split=split or manifest.get("split"))
