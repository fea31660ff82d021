"""Tasks whose unit is a whole (scene, phase) clip (``video_depth``): what such a task declares.

A clip task's manifest has one entry per clip. When the split is opened the entry is expanded
into one frame entry per frame (``ClipUnit.expand``), trimmed by the run's frame selection
(``FrameSelection``: ``--frame-budget`` / ``--sampling``), so decoding, batching, timing and the
FLOP count work frame by frame as for every other task, and a clip is never decoded whole
unless its model needs the whole sequence (``whole_clip``). Each frame Sample carries where it
sits in its clip (``CLIP_KEY`` in ``Sample.metadata``: the clip's id, the frame's position, the
clip's frame count). The benchmark loop cuts batches at clip ends, calls a stateful model's
``reset()`` before each clip, and scores the frames of a clip with one ``ClipScoring`` that
returns the clip's metrics at its last frame: one row per clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Literal, Protocol

from rpx_tasks.errors import ConfigError
from rpx_tasks.sample import Sample

CLIP_KEY = "_rpx_clip"  # reserved: set by the split for clip tasks only
SAMPLING_MODES: tuple[str, ...] = ("all", "stride")
Sampling = Literal["all", "stride"]


@dataclass(frozen=True)
class ClipPosition:
    """Where a frame sits in its clip: the clip's id, the frame's position (0-based) and the frame count."""

    clip_id: str
    position: int
    frames: int

    def as_metadata(self) -> dict[str, Any]:
        """The JSON form kept in a frame entry's ``metadata[CLIP_KEY]``."""
        return {"id": self.clip_id, "position": self.position, "frames": self.frames}


def clip_position(sample: Sample) -> ClipPosition | None:
    """The clip position of a frame Sample of a clip task, or None for a sample of a frame task."""
    value = (sample.metadata or {}).get(CLIP_KEY)
    if not isinstance(value, dict):
        return None
    return ClipPosition(str(value["id"]), int(value["position"]), int(value["frames"]))


def starts_clip(sample: Sample) -> bool:
    """Whether ``sample`` is the first frame of its clip (False for samples of frame tasks)."""
    where = clip_position(sample)
    return where is not None and where.position == 0


def ends_clip(sample: Sample) -> bool:
    """Whether ``sample`` is the last frame of its clip (False for samples of frame tasks)."""
    where = clip_position(sample)
    return where is not None and where.position == where.frames - 1


@dataclass(frozen=True)
class FrameSelection:
    """Which frames of each clip a run scores: all of them (``budget`` None), or at most ``budget``.

    ``sampling="all"`` keeps the first ``budget`` frames; ``"stride"`` keeps every k-th frame from the
    first, with the smallest k that leaves at most ``budget`` (k = ceil(T / budget)).
    """

    budget: int | None = None
    sampling: Sampling = "all"

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLING_MODES:
            raise ConfigError(
                f"Unknown frame sampling {self.sampling!r}.", hint=f"use one of: {', '.join(SAMPLING_MODES)}"
            )
        if self.budget is not None and (isinstance(self.budget, bool) or not isinstance(self.budget, int)):
            raise ConfigError(f"frame_budget must be an integer, got {self.budget!r}.", hint="e.g. --frame-budget 64")
        if self.budget is not None and self.budget < 1:
            raise ConfigError(f"frame_budget must be at least 1, got {self.budget}.", hint="e.g. --frame-budget 64")
        if self.sampling == "stride" and self.budget is None:
            raise ConfigError(
                "--sampling stride needs --frame-budget N (the stride is chosen so that at most N frames remain).",
                hint="add --frame-budget N, or use --sampling all",
            )

    def select(self, frames: list[Any]) -> list[Any]:
        """The frames of one clip (in clip order) this selection keeps, in order."""
        if self.budget is None or len(frames) <= self.budget:
            return list(frames)
        if self.sampling == "all":
            return list(frames[: self.budget])
        return list(frames[:: math.ceil(len(frames) / self.budget)])

    def record(self) -> dict[str, Any]:
        """The selection as result.json keeps it."""
        return {"frame_budget": self.budget, "sampling": self.sampling}


class ClipScoring(Protocol):
    """Scores one clip frame by frame: ``add(prediction, ground_truth)`` in clip order, then ``finish()``
    returns the clip's metrics (name -> float or None) and its alignment fit (``{"scale", "shift"}``, or
    None when the run does not align)."""

    def add(self, prediction: Any, ground_truth: Any) -> None: ...

    def finish(self) -> tuple[dict[str, float | None], dict[str, float | None] | None]: ...


# expand(entry, resolve) -> the clip's frame entries, in clip order, each with its own id, rgb and labels.
ClipExpansion = Callable[[dict, Callable[..., Any]], list[dict]]
# scoring(alignment mode, fscore) -> a fresh ClipScoring for the next clip.
ClipScoringFactory = Callable[[str, bool], ClipScoring]
# invoke(fn, frames of one whole clip) -> one raw output per frame (fn takes the stacked clip).
ClipInvoke = Callable[[Callable[..., Any], list[Sample]], list[Any]]
# clip_entry(frame entries of one built-in sample clip) -> the clip's manifest entry.
SampleClipEntry = Callable[[list[dict]], dict]


@dataclass(frozen=True)
class ClipUnit:
    """What a clip task declares besides its TaskSpec: how a clip entry becomes frame entries (``expand``),
    how a clip is scored (``scoring``), how a numpy function of the whole clip is called (``numpy_invoke``:
    models built from it get ``whole_clip = True``) and how the built-in sample data's frame entries of a
    clip become its manifest entry (``sample_clip_entry``). ``frame_keys``: the file keys every frame entry
    has besides ``rgb`` (checked like a frame task's ``required_keys``; the TaskSpec's ``required_keys``
    are the clip entry's)."""

    expand: ClipExpansion
    scoring: ClipScoringFactory
    numpy_invoke: ClipInvoke
    sample_clip_entry: SampleClipEntry
    frame_keys: tuple[str, ...] = ()
