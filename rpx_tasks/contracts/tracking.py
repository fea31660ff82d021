"""Object-tracking types: tracklets of boxes over a clip's time steps."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Tracklet:
    """One track: ``track_id``, ``boxes`` (T, 4) float32 [x1, y1, x2, y2] (row t = time step t)
    and optional ``scores`` (T,) float32."""

    track_id: str
    boxes: np.ndarray
    scores: np.ndarray | None = None


@dataclass
class TrackletGroundTruth:
    """The ground-truth tracks of one sample."""

    tracks: list[Tracklet] = field(default_factory=list)


@dataclass
class TrackletPrediction:
    """The predicted tracks of one sample."""

    tracks: list[Tracklet] = field(default_factory=list)
