"""What a novel_view_synthesis sample carries besides its source frame: the target view and the source depth.

The source frame is the sample's ``rgb`` and its camera->world pose the sample's ``camera_pose``;
:class:`NovelView` holds the rest (the task's ground truth): the target frame the prediction is
scored against, the target camera's pose and, when the manifest has one, the source frame's
depth (an input of depth-based models, never scored). Poses are stored as decoded, T265
camera->world; ``rpx_tasks.tasks.novel_view_synthesis`` hands models both poses in OpenCV axes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NovelView:
    """The target of one novel-view sample.

    - ``target_rgb``: (H, W, 3) uint8, the frame the predicted view is scored against;
    - ``target_pose``: (4, 4) float64 camera->world of the target frame in the stored T265 axes,
      or None when the sample has none (a model then cannot be called: AdapterError);
    - ``source_depth``: (H, W) float32 metres of the source frame (0 = invalid), or None.
    """

    target_rgb: np.ndarray
    target_pose: np.ndarray | None
    source_depth: np.ndarray | None = None


__all__ = ["NovelView"]
