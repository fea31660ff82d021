"""Bad-input catalogue, configuration (issue 9, requirement 2): a wrong option or model fails ``rpx bench``
with exit 2 (usage) or 1 (an RPX error with a hint) naming the option or value, before any flow run starts
(so before any download), and the report already in the output folder stays byte-identical (harness:
``tests/support/bad_inputs.py``)."""

from __future__ import annotations

import pytest

from tests.support.bad_inputs import BadCase, run_case

MODELS = "tests.support.bad_models:"


def _config(
    task: str,
    name: str,
    options: tuple[str, ...],
    *culprits: str,
    model: str | None = "baseline",
    exit_code: int = 1,
) -> BadCase:
    """``task`` run with ``options`` (and ``model``): it must exit ``exit_code`` naming ``culprits``."""
    return BadCase(task, name, culprits, model=model, options=options, exit_code=exit_code, family="config")


CASES = [
    _config("video_depth", "frame budget 0", ("--frame-budget", "0"), "frame_budget", "0"),
    _config("video_depth", "stride without budget", ("--sampling", "stride"), "--sampling stride", "--frame-budget"),
    _config("monocular_depth", "split extreme", ("--split", "extreme"), "--split", "'extreme'", exit_code=2),
    _config("monocular_depth", "batch size text", ("--batch-size", "two"), "--batch-size", "'two'", exit_code=2),
    _config("monocular_depth", "model kwarg not taken", ("--model-kwarg", "scale=2"), "scale", "ground_plane_prior"),
    _config(
        "monocular_depth",
        "another task's model",
        (),
        "colour_segmentation",
        "object_segmentation",
        model="colour_segmentation",
    ),
    _config(
        "monocular_depth",
        "alignment typo",
        ("--alignment", "ls_afine"),
        "'ls_afine'",
        "--alignment",
        "did you mean 'ls_affine'",
    ),
    _config(
        "object_detection",
        "alignment",
        ("--alignment", "ls_affine"),
        "object_detection takes no alignment",
        "--alignment",
    ),
    _config("object_detection", "batch size 0", ("--batch-size", "0"), "batch_size", "0"),
    _config(
        "object_detection",
        "two model selectors",
        ("--hf-checkpoint", "hustvl/yolos-tiny"),
        "hf_checkpoint",
        "model_name",
    ),
    _config(
        "object_detection",
        "malformed checkpoint id",
        ("--hf-checkpoint", "not a/valid//id"),
        "'not a/valid//id'",
        model=None,
    ),
    _config("object_segmentation", "device gpu0", ("--device", "gpu0"), "'gpu0'", "--device"),
    _config("object_segmentation", "max samples 0", ("--max-samples", "0"), "max_samples", "0"),
    _config(
        "sparse_depth",
        "unknown model",
        (),
        "'sparse_ground_plane_priro'",
        "did you mean 'sparse_ground_plane_prior'",
        model="sparse_ground_plane_priro",
    ),
    _config(
        "sparse_depth", "vocabulary", ("--vocabulary", "red box"), "sparse_depth takes no vocabulary", "--vocabulary"
    ),
    _config(
        "object_tracking",
        "hf checkpoint",
        ("--hf-checkpoint", "org/tracker"),
        "object_tracking",
        "--hf-checkpoint",
        model=None,
    ),
    _config(
        "object_tracking",
        "module missing",
        (),
        "'tests.support.no_such_module'",
        model="tests.support.no_such_module:track",
    ),
    _config(
        "relative_camera_pose",
        "hf checkpoint",
        ("--hf-checkpoint", "org/pose"),
        "relative_camera_pose",
        "--hf-checkpoint",
        model=None,
    ),
    _config(
        "relative_camera_pose",
        "attribute missing",
        (),
        "'pose_two_by_tw'",
        "did you mean 'pose_two_by_two'",
        model=MODELS + "pose_two_by_tw",
    ),
    _config(
        "keypoint_matching",
        "model kwarg not KEY=VALUE",
        ("--model-kwarg", "1st=2"),
        "--model-kwarg",
        "'1st=2'",
        exit_code=2,
    ),
    _config("keypoint_matching", "builtin sample typo", ("--manifest", "builtin:samples"), "builtin:samples"),
    _config("keypoint_matching", "signature of another task", (), "depth_nan", "rgb_b", model=MODELS + "depth_nan"),
    _config("visual_grounding", "vocabulary", ("--vocabulary", "@words.txt"), "visual_grounding takes no vocabulary"),
    _config(
        "visual_grounding",
        "unknown model",
        (),
        "'colour_phrase_grounderr'",
        "did you mean 'colour_phrase_grounder'",
        model="colour_phrase_grounderr",
    ),
    _config(
        "open_vocab_detection",
        "vocabulary file missing",
        ("--vocabulary", "@/nowhere/words.json"),
        "/nowhere/words.json",
    ),
    _config("open_vocab_detection", "empty phrase in --vocabulary", ("--vocabulary", "red box,,mug"), "'red box,,mug'"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_bad_option_fails_before_any_flow_run_and_keeps_the_earlier_report(
    case, earlier_reports, tmp_path, capsys, prefect_client
):
    earlier_reports.report(case.task, capsys)  # its flow run comes before the count
    flow_runs = prefect_client.count_flow_runs()
    run_case(case, earlier_reports, tmp_path, capsys)
    assert prefect_client.count_flow_runs() == flow_runs, "a flow run started: the mistake was found too late"
