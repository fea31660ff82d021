"""Sharding one split: ``--shard i/K`` runs the samples of shard i of K, whole clips only.

A split's samples, in the order the run reads them (``dataset.open_split``: by scene, phase folder and
frame), fall into *clips*: the runs of consecutive samples of one (scene, phase) (samples without a scene
and phase form one clip of their own). Clips are never cut, so temporal-stability pairs never cross a
shard, and a merge can put the shards' rows back into the unsharded order clip by clip.

The assignment is deterministic greedy (longest processing time first), balanced by frame count:

1. units are taken largest first (ties: the unit that comes first in the split), each given to the shard
   with the fewest frames so far (ties: the lowest shard number);
2. it is done twice: with whole scenes as units and with clips as units; whole scenes are kept unless
   clips give a smaller largest shard.

So every shard's frame count is within the largest unit of every other's, and the same split always gets
the same assignment, on any host. The assignment is made after the manifest is read and checked (and the
vocabulary of an open-vocabulary task settled on the whole split) and before any model is loaded.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rpx_tasks.contracts.clips import CLIP_KEY
from rpx_tasks.dataset import SplitDataset
from rpx_tasks.errors import ConfigError
from rpx_tasks.manifest import clip_folder
from rpx_tasks.reports import SHARD_STATE_FILE, write_text_atomic

__all__ = [
    "SHARD_STATE_FILE",
    "Shard",
    "assign_clips",
    "check_shard_count",
    "parse_shard",
    "select_shard",
    "shard_split",
    "shard_summary",
    "split_clips",
    "write_shard_state",
]

SHARD_STATE_VERSION = 1

_SHARD_PATTERN = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def slug(self) -> str:
        """Return the shard as a folder name: ``shard-2of3``."""
        return f"shard-{self.index}of{self.count}"


def parse_shard(value: Any) -> Shard:
    """Return the Shard of ``"i/K"`` (1 <= i <= K). Raises ConfigError for anything else."""
    match = _SHARD_PATTERN.fullmatch(value) if isinstance(value, str) else None
    if match is None or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise ConfigError(
            f"shard must be i/K with 1 <= i <= K, got {value!r}.",
            hint="e.g. --shard 1/3, --shard 2/3 and --shard 3/3 run a split in three parts",
            details={"shard": value},
        )
    return Shard(int(match.group(1)), int(match.group(2)))


def check_shard_count(shards: Any, shard: Any = None) -> int:
    """Return ``shards`` (the K of a flow run that fans out K shard runs) after checking it: an integer >= 1,
    not given together with ``shard``. Raises ConfigError."""
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise ConfigError(f"shards must be an integer >= 1, got {shards!r}.", hint="e.g. shards=3")
    if shard is not None:
        raise ConfigError(
            f"shards={shards} fans out every shard; it cannot be combined with shard={shard!r}.",
            hint="pass either shards=K (all shards, merged) or shard='i/K' (one shard)",
        )
    return shards


@dataclass(frozen=True)
class Clip:
    """A run of consecutive samples of one (scene, phase folder) in split order: its position among the
    split's clips, its key (None for samples without a scene and phase), first sample and sample count."""

    index: int
    key: tuple[str, str] | None
    start: int
    samples: int

    def record(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "scene": None if self.key is None else self.key[0],
            "phase": None if self.key is None else self.key[1],
            "samples": self.samples,
        }


def split_clips(entries: list[dict[str, Any]]) -> list[Clip]:
    """Return the clips of ``entries`` (already in split order), in order. Raises nothing."""
    clips: list[Clip] = []
    previous_id = None
    for position, entry in enumerate(entries):
        key = clip_folder(entry)
        # A clip task's frames name their clip (two clip entries may share a scene and phase).
        clip_id = ((entry.get("metadata") or {}).get(CLIP_KEY) or {}).get("id")
        same = clips and clips[-1].key == key and clip_id == previous_id
        previous_id = clip_id
        if same:
            last = clips[-1]
            clips[-1] = Clip(last.index, key, last.start, last.samples + 1)
        else:
            clips.append(Clip(len(clips), key, position, 1))
    return clips


def _greedy(sizes: list[int], count: int) -> tuple[list[int], list[int]]:
    """Assign units of ``sizes`` to ``count`` shards, largest first; returns (shard of each unit, shard loads)."""
    loads = [0] * count
    owner = [0] * len(sizes)
    for unit in sorted(range(len(sizes)), key=lambda i: (-sizes[i], i)):
        target = min(range(count), key=lambda shard: (loads[shard], shard))
        owner[unit] = target
        loads[target] += sizes[unit]
    return owner, loads


def assign_clips(clips: list[Clip], count: int) -> tuple[list[int], str]:
    """Return (the 0-based shard of each clip, the unit kept: ``scene`` or ``clip``), as the module doc says.

    Raises ConfigError when the split has fewer clips than ``count`` (a shard would be empty).
    """
    if len(clips) < count:
        raise ConfigError(
            f"The split has {len(clips)} clip(s), too few for {count} shards (clips are never cut).",
            hint=f"pass at most {len(clips)} shards",
            details={"clips": len(clips), "shards": count},
        )
    by_clip, clip_loads = _greedy([clip.samples for clip in clips], count)
    scenes: dict[Any, list[int]] = {}
    for clip in clips:
        scenes.setdefault(None if clip.key is None else clip.key[0], []).append(clip.index)
    groups = list(scenes.values())
    by_scene, scene_loads = _greedy([sum(clips[i].samples for i in group) for group in groups], count)
    if max(scene_loads) <= max(clip_loads) and min(scene_loads) > 0:
        owner = [0] * len(clips)
        for group, shard in zip(groups, by_scene):
            for i in group:
                owner[i] = shard
        return owner, "scene"
    return by_clip, "clip"


def select_shard(entries: list[dict[str, Any]], shard: Shard) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Return (the entries of ``shard``, in split order; its record): ``shard``, ``unit``, the split's
    ``clips_total`` and ``samples_total``, and ``clips`` (index, scene, phase, samples of each of its clips,
    in order), as result.json and ``shard_state.json`` keep it. Raises ConfigError as ``assign_clips``."""
    clips = split_clips(entries)
    owner, unit = assign_clips(clips, shard.count)
    mine = [clip for clip in clips if owner[clip.index] == shard.index - 1]
    selected = [entry for clip in mine for entry in entries[clip.start : clip.start + clip.samples]]
    record = {
        "shard": str(shard),
        "unit": unit,
        "clips_total": len(clips),
        "samples_total": len(entries),
        "clips": [clip.record() for clip in mine],
    }
    return selected, record


def shard_split(dataset: SplitDataset, shard: str) -> SplitDataset:
    """Return the opened split ``dataset`` cut to shard ``shard`` (``"i/K"``), its record in ``shard``.
    Raises ConfigError (a malformed shard, too few clips)."""
    entries, record = select_shard(dataset.entries, parse_shard(shard))
    return dataclasses.replace(dataset, entries=entries, shard=record)


def shard_summary(record: dict[str, Any], base_fingerprint: str) -> dict[str, Any]:
    """Return result.json's ``shard`` block of a shard run: the shard, the unit kept, how many clips and
    samples it holds of the split's, and ``base_fingerprint`` (that of the unsharded run, which the merge
    of all shards equals). Raises nothing."""
    return {
        "shard": record["shard"],
        "unit": record["unit"],
        "clips": len(record["clips"]),
        "samples": sum(clip["samples"] for clip in record["clips"]),
        "clips_total": record["clips_total"],
        "samples_total": record["samples_total"],
        "base_fingerprint": base_fingerprint,
    }


def _plain(value: Any) -> Any:
    """``value`` as JSON values (arrays as lists of floats; Python floats keep every bit through JSON)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value.item() if isinstance(value, np.generic) else value


def write_shard_state(
    path: Path, record: dict[str, Any], state: dict[str, Any] | None, summary: dict[str, Any]
) -> Path:
    """Write ``shard_state.json`` of a shard run atomically: its ``summary`` (``shard_summary``), its clips
    (index among the split's clips, scene, phase, samples, in order) and the loop's final ``state`` less the
    previous frame TS holds (the TS and SGC sums exactly, the alignment fits, the per-sample timings, the
    FLOP count): what ``rpx merge`` needs to combine the shards exactly. Returns ``path``. Raises OSError."""
    state = dict(state or {})
    temporal = state.get("temporal")
    if temporal is not None:  # the previous frame is of no use across shards: clips are whole
        state["temporal"] = {key: temporal[key] for key in ("score_sum", "score_partials", "pairs")}
    payload = {"version": SHARD_STATE_VERSION, **summary, "clip_list": record["clips"], "state": _plain(state)}
    return write_text_atomic(path, json.dumps(payload) + "\n")
