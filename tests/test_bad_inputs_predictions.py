"""Bad-input catalogue, predictions (issue 9, requirement 2): a model that returns the wrong shape, NaN,
the wrong type or the wrong count fails its run with exit 1 naming the first sample and what is wrong,
and the report already in the output folder stays byte-identical (harness: ``tests/support/bad_inputs.py``,
models: ``tests/support/bad_models.py``)."""

from __future__ import annotations

import pytest

from rpx_tasks.tasks import task_names
from tests.support.bad_inputs import FIRST, BadCase, run_case
from tests.support.bad_models import WrongCount

MODELS = "tests.support.bad_models:"


def _returns(task: str, function: str, *culprits: str) -> BadCase:
    """``task`` run with the numpy function ``function`` of bad_models; the first sample is named."""
    return BadCase(task, function, (FIRST, *culprits), model=MODELS + function, family="predictions")


def _model(task: str, factory: str, *culprits: str) -> BadCase:
    """``task`` run with the Model factory ``factory`` of bad_models (built for ``task``)."""
    options = ("--model-kwarg", f"task={task}")
    return BadCase(task, factory, (FIRST, *culprits), model=MODELS + factory, options=options, family="predictions")


WRONG_COUNT = [_model(task, WrongCount.__name__, "0 predictions", "batch of 1") for task in task_names()]

CASES = [
    *WRONG_COUNT,
    _model("monocular_depth", "WrongType", "str"),
    _returns("monocular_depth", "depth_nan", "NaN"),
    _returns("monocular_depth", "depth_three_channels", "2-D"),
    _returns("monocular_depth", "depth_text", "str"),
    _returns("sparse_depth", "sparse_one_short", "31", "32"),
    _returns("sparse_depth", "sparse_nan", "NaN"),
    _returns("sparse_depth", "sparse_no_depths_key", "'depths'"),
    _returns("object_segmentation", "mask_fractional", "whole"),
    _returns("object_segmentation", "mask_flat", "2-D"),
    _returns("object_detection", "boxes_of_three_numbers", "boxes"),
    _returns("object_detection", "boxes_nan", "non-finite"),
    _returns("object_detection", "boxes_without_labels", "labels"),
    _returns("open_vocab_detection", "phrases_one_label_short", "labels"),
    _returns("open_vocab_detection", "phrases_nan_score", "NaN"),
    _returns("open_vocab_detection", "phrases_none", "NoneType"),
    _returns("object_tracking", "tracks_without_boxes", "boxes"),
    _returns("object_tracking", "tracks_nan", "NaN"),
    _returns("object_tracking", "tracks_text", "str"),
    _returns("relative_camera_pose", "pose_two_by_two", "(2, 2)"),
    _returns("relative_camera_pose", "pose_nan_translation", "translation"),
    _returns("relative_camera_pose", "pose_without_translation", "translation"),
    _returns("keypoint_matching", "matches_of_different_lengths", "3", "2"),
    _returns("keypoint_matching", "matches_nan", "NaN"),
    _returns("visual_grounding", "grounding_text", "str"),
    _returns("visual_grounding", "grounding_nan", "non-finite"),
    _returns("video_depth", "clip_one_frame_short", "T=", "shape"),
    _returns("novel_view_synthesis", "view_nan", "NaN"),
    _returns("novel_view_synthesis", "view_flat", "(H, W, 3)"),
    _returns("novel_view_synthesis", "view_text", "str"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_bad_prediction_fails_the_run_and_keeps_the_earlier_report(case, earlier_reports, tmp_path, capsys):
    run_case(case, earlier_reports, tmp_path, capsys)
