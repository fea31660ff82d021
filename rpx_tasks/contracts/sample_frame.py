"""What a task's ``TaskSpec.sample_entry(frame)`` may use of a built-in sample frame.

The procedural generator (``rpx_tasks.sample_data``, a layer above the tasks) hands every task
one concrete ``rpx_tasks.sample_data.frame.SampleFrame`` per rendered frame; these protocols
name the part of it that tasks rely on, so that task modules can type their ``sample_entry``
without importing the generator. See the :mod:`rpx_tasks.sample_data` package docstring ("For
task authors") for what each member holds. Labels and colour words are the ``SAMPLE_*``
vocabulary of :mod:`rpx_tasks.constants`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np


class SampleObject(Protocol):
    """One object visible in a sample frame: ``id`` (its value in ``SampleFrame.instances``),
    ``label`` (category), ``colour`` (colour word), ``box`` float64 [x1, y1, x2, y2] of its
    visible pixels and ``pixels`` their count; ``moving`` is True for objects that move with the
    camera (the arm)."""

    @property
    def id(self) -> int: ...

    @property
    def label(self) -> str: ...

    @property
    def colour(self) -> str: ...

    @property
    def box(self) -> np.ndarray: ...

    @property
    def pixels(self) -> int: ...

    @property
    def moving(self) -> bool: ...


class SampleFrame(Protocol):
    """One rendered frame of the built-in sample data, as a task's ``sample_entry`` sees it.

    Arrays are the frame as written; do not modify them. ``later`` is the frame ``PAIR_STRIDE``
    frames later in the clip (None for the clip's last frame).
    """

    @property
    def scene(self) -> str: ...

    @property
    def phase_idx(self) -> int: ...

    @property
    def phase(self) -> str: ...

    @property
    def frame_idx(self) -> int: ...

    @property
    def frames_in_clip(self) -> int: ...

    @property
    def split(self) -> str: ...

    @property
    def stem(self) -> str: ...

    @property
    def height(self) -> int: ...

    @property
    def width(self) -> int: ...

    @property
    def paths(self) -> dict[str, str]: ...

    @property
    def rgb(self) -> np.ndarray: ...

    @property
    def depth_mm(self) -> np.ndarray: ...

    @property
    def instances(self) -> np.ndarray: ...

    @property
    def objects(self) -> Sequence[SampleObject]: ...

    @property
    def pose(self) -> np.ndarray: ...

    @property
    def intrinsics(self) -> tuple[float, float, float, float]: ...

    @property
    def later(self) -> SampleFrame | None: ...

    def object(self, object_id: int) -> SampleObject | None: ...

    def base_entry(self) -> dict: ...

    def write_png(self, folder: str, array: np.ndarray) -> str: ...

    def write_json(self, folder: str, obj: Any) -> str: ...

    def write_npy(self, folder: str, array: np.ndarray) -> str: ...

    def backproject(self, pixels: np.ndarray) -> np.ndarray: ...

    def project(self, world: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
