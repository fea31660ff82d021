"""Models that return the wrong thing, for the bad-input catalogue (``tests/test_bad_inputs_predictions.py``).

``rpx bench <task> --model tests.support.bad_models:<name>`` runs them. The numpy functions follow
their task's signature (``rpx ls``) but return a wrong shape, NaN, a wrong type or a wrong count;
:class:`WrongCount` and :class:`WrongType` are Model factories for any task (``--model-kwarg
task=<task>``) whose ``predict`` returns one prediction too few, or not a list.
:func:`recorded_baseline` is the task's default baseline, recorded in :data:`BUILT` when built.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# The task of every model recorded_baseline built (the catalogue clears it before each case).
BUILT: list[str] = []

NAN = float("nan")


def recorded_baseline(task: str = "monocular_depth", device: str = "cpu") -> Any:
    """A factory: the default weight-free baseline of ``task``, appended to BUILT when built."""
    from rpx_tasks.model_selection import default_baseline, resolve_model
    from rpx_tasks.tasks import get_task

    BUILT.append(task)
    return resolve_model(get_task(task), model_name=default_baseline(task).name, device=device)


class WrongCount:
    """A Model factory for any ``task`` whose predict returns one prediction fewer than the batch has samples."""

    def __init__(self, task: str = "monocular_depth", device: str = "cpu"):
        self.task = task
        self.name = "wrong_count"
        self.torch_module = None

    def setup(self) -> None:
        """Nothing to set up."""

    def predict(self, batch: list[Any]) -> list[Any]:
        """``len(batch) - 1`` placeholders."""
        return [None] * (len(batch) - 1)


class WrongType(WrongCount):
    """A Model factory for any ``task`` whose predict returns a string instead of a list of predictions."""

    def predict(self, batch: list[Any]) -> Any:  # type: ignore[override]
        """Not a list."""
        return "predictions"


# --------------------------------------------------------------------------- monocular_depth: fn(rgb)


def depth_nan(rgb: np.ndarray) -> np.ndarray:
    """A depth map of NaN."""
    return np.full(rgb.shape[:2], NAN, np.float32)


def depth_three_channels(rgb: np.ndarray) -> np.ndarray:
    """A (H, W, 3) array instead of (H, W)."""
    return np.ones(rgb.shape, np.float32)


def depth_text(rgb: np.ndarray) -> str:
    """A string instead of an array."""
    return "far away"


# --------------------------------------------------------------------------- sparse_depth: fn(rgb, coords)


def sparse_one_short(rgb: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """One depth fewer than there are coordinates."""
    return np.ones(len(coords) - 1, np.float32)


def sparse_nan(rgb: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """NaN depths."""
    return np.full(len(coords), NAN, np.float32)


def sparse_no_depths_key(rgb: np.ndarray, coords: np.ndarray) -> dict:
    """A dict without 'depths'."""
    return {"depth": np.ones(len(coords), np.float32)}


# --------------------------------------------------------------------------- object_segmentation: fn(rgb)


def mask_fractional(rgb: np.ndarray) -> np.ndarray:
    """Fractional instance ids."""
    return np.full(rgb.shape[:2], 0.5, np.float32)


def mask_flat(rgb: np.ndarray) -> np.ndarray:
    """A 1-D array instead of (H, W)."""
    return np.zeros(rgb.shape[0] * rgb.shape[1], np.int32)


# --------------------------------------------------------------------------- object_detection: fn(rgb)


def boxes_of_three_numbers(rgb: np.ndarray) -> dict:
    """Boxes of three numbers (5 values that do not reshape to (-1, 4))."""
    return {"boxes": [[1.0, 2.0, 3.0], [4.0, 5.0]], "scores": [0.9], "labels": ["box"]}


def boxes_nan(rgb: np.ndarray) -> dict:
    """A NaN box coordinate."""
    return {"boxes": [[1.0, 2.0, NAN, 8.0]], "scores": [0.9], "labels": ["box"]}


def boxes_without_labels(rgb: np.ndarray) -> dict:
    """Boxes and scores but no 'labels'."""
    return {"boxes": [[1.0, 2.0, 5.0, 8.0]], "scores": [0.9]}


# --------------------------------------------------------------------------- open_vocab_detection: fn(rgb, vocabulary)


def phrases_one_label_short(rgb: np.ndarray, vocabulary: list[str]) -> dict:
    """Two boxes and scores but one label."""
    return {"boxes": [[1.0, 2.0, 5.0, 8.0], [2.0, 3.0, 6.0, 9.0]], "scores": [0.9, 0.8], "labels": vocabulary[:1]}


def phrases_nan_score(rgb: np.ndarray, vocabulary: list[str]) -> dict:
    """A NaN score."""
    return {"boxes": [[1.0, 2.0, 5.0, 8.0]], "scores": [NAN], "labels": vocabulary[:1]}


def phrases_none(rgb: np.ndarray, vocabulary: list[str]) -> None:
    """None instead of boxes."""
    return None


# --------------------------------------------------------------------------- object_tracking: fn(rgb)


def tracks_without_boxes(rgb: np.ndarray) -> list:
    """A track with no 'boxes'."""
    return [{"track_id": "a", "scores": [0.5]}]


def tracks_nan(rgb: np.ndarray) -> list:
    """A track with a NaN box coordinate."""
    return [{"track_id": "a", "boxes": [[1.0, NAN, 5.0, 8.0]]}]


def tracks_text(rgb: np.ndarray) -> str:
    """A string instead of tracks."""
    return "track 1"


# --------------------------------------------------------------------------- relative_camera_pose: fn(rgb_a, rgb_b)


def pose_two_by_two(rgb_a: np.ndarray, rgb_b: np.ndarray) -> dict:
    """A (2, 2) rotation."""
    return {"rotation": np.eye(2), "translation": np.zeros(3)}


def pose_nan_translation(rgb_a: np.ndarray, rgb_b: np.ndarray) -> dict:
    """A NaN translation."""
    return {"rotation": np.eye(3), "translation": [0.0, NAN, 0.0]}


def pose_without_translation(rgb_a: np.ndarray, rgb_b: np.ndarray) -> dict:
    """No 'translation'."""
    return {"rotation": np.eye(3)}


# --------------------------------------------------------------------------- keypoint_matching: fn(rgb_a, rgb_b)


def matches_of_different_lengths(rgb_a: np.ndarray, rgb_b: np.ndarray) -> dict:
    """Three points in frame A, two in frame B."""
    return {"points0": np.ones((3, 2)), "points1": np.ones((2, 2))}


def matches_nan(rgb_a: np.ndarray, rgb_b: np.ndarray) -> dict:
    """A NaN point."""
    return {"points0": [[1.0, NAN]], "points1": [[1.0, 2.0]]}


# --------------------------------------------------------------------------- visual_grounding: fn(rgb, text)


def grounding_text(rgb: np.ndarray, text: str) -> str:
    """The expression back instead of boxes."""
    return text


def grounding_nan(rgb: np.ndarray, text: str) -> dict:
    """A NaN box."""
    return {"boxes": [[NAN, 2.0, 5.0, 8.0]], "scores": [0.9]}


# --------------------------------------------------------------------------- novel_view_synthesis


def view_nan(rgb: np.ndarray, source_pose: np.ndarray, target_pose: np.ndarray) -> np.ndarray:
    """A float view of NaN."""
    return np.full(rgb.shape, NAN)


def view_flat(rgb: np.ndarray, source_pose: np.ndarray, target_pose: np.ndarray) -> np.ndarray:
    """An (H, W) grey view instead of (H, W, 3)."""
    return rgb[..., 0]


def view_text(rgb: np.ndarray, source_pose: np.ndarray, target_pose: np.ndarray) -> str:
    """A string instead of an image."""
    return "view"


def clip_one_frame_short(rgb_seq: np.ndarray) -> np.ndarray:
    """video_depth ``fn(rgb_seq)``: one depth map fewer than the clip has frames."""
    return np.ones((len(rgb_seq) - 1, *rgb_seq.shape[1:3]), np.float32)
