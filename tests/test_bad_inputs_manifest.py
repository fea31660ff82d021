"""Bad-input catalogue, manifests (issue 9, requirement 2): a manifest or sample entry with a value outside
its field's domain fails ``rpx bench`` with exit 1 when the split opens, before the model is built, naming
the sample, the field and the value (or the manifest), and the report already in the output folder stays
byte-identical (harness: ``tests/support/bad_inputs.py``)."""

from __future__ import annotations

import pytest

from tests.support.bad_inputs import (
    BROKEN,
    MANIFEST,
    RECORDED_BASELINE,
    SAMPLE,
    BadCase,
    Breaks,
    Draft,
    drop_fields,
    run_case,
    set_fields,
)


def _manifest(task: str, name: str, breaks: Breaks, *culprits: str) -> BadCase:
    """A case whose split cannot open: run with the recorded baseline, which must never be built."""
    options = ("--model-kwarg", f"task={task}")
    return BadCase(task, name, culprits, breaks, model=RECORDED_BASELINE, options=options, family="manifest")


def _set_top(**fields) -> Breaks:
    def breaks(draft: Draft) -> None:
        draft.manifest.update(fields)

    return breaks


def _not_json(draft: Draft) -> None:
    draft.text = '{"task": "monocular_depth", "samples": [,]}'


def _duplicate_id(draft: Draft) -> None:
    draft.manifest["samples"][BROKEN + 1]["id"] = draft.entry["id"]


def _not_an_object(draft: Draft) -> None:
    draft.manifest["samples"][BROKEN] = "scene_004/0/00001"


def _one_depth_frame(draft: Draft) -> None:
    draft.entry["depth_filenames"] = draft.entry["depth_filenames"][:1]


CASES = [
    _manifest("video_depth", "frame lists of two lengths", _one_depth_frame, SAMPLE, "'depth_filenames'", "1 names"),
    _manifest("video_depth", "required key missing", drop_fields("frame_filenames"), SAMPLE, "'frame_filenames'"),
    _manifest("monocular_depth", "unknown phase", set_fields(phase="dusk"), SAMPLE, "'phase'", "'dusk'"),
    _manifest("monocular_depth", "not JSON", _not_json, MANIFEST, "not valid JSON"),
    _manifest("monocular_depth", "required key missing", drop_fields("depth"), SAMPLE, "'depth'"),
    _manifest(
        "object_detection", "difficulty extreme", set_fields(difficulty="extreme"), SAMPLE, "'difficulty'", "'extreme'"
    ),
    _manifest("object_detection", "unknown task", _set_top(task="object_detectoin"), MANIFEST, "'object_detectoin'"),
    _manifest("object_detection", "samples not a list", _set_top(samples={"id": "a"}), MANIFEST, "'samples'", "dict"),
    _manifest("sparse_depth", "negative frame index", set_fields(frame_idx=-1), SAMPLE, "'frame_idx'", "-1"),
    _manifest("sparse_depth", "no samples", _set_top(samples=[]), MANIFEST, "no samples"),
    _manifest("sparse_depth", "required key missing", drop_fields("coordinates"), SAMPLE, "'coordinates'"),
    _manifest("object_segmentation", "duplicate id", _duplicate_id, SAMPLE, "twice"),
    _manifest("object_segmentation", "root not a string", _set_top(root=5), MANIFEST, "'root'", "int"),
    _manifest("object_segmentation", "phase true", set_fields(phase=True), SAMPLE, "'phase'", "True"),
    _manifest("keypoint_matching", "empty id", set_fields(id=""), f"#{BROKEN}", "''"),
    _manifest("keypoint_matching", "empty second frame path", set_fields(rgb_b=""), SAMPLE, "'rgb_b'", "''"),
    _manifest("relative_camera_pose", "required key missing", drop_fields("pose_b"), SAMPLE, "'pose_b'"),
    _manifest("relative_camera_pose", "sample not an object", _not_an_object, f"#{BROKEN}", "'scene_004/0/00001'"),
    _manifest(
        "object_tracking",
        "path escaping the root",
        set_fields(mask="../../../etc/passwd"),
        SAMPLE,
        "'mask'",
        "'../../../etc/passwd'",
    ),
    _manifest("object_tracking", "phase against its path", set_fields(phase=2), SAMPLE, "'phase'", "disagrees"),
    _manifest("object_tracking", "neither tracks nor mask", drop_fields("mask"), SAMPLE, "'tracks'", "'mask'"),
    _manifest(
        "visual_grounding",
        "missing file",
        set_fields(rgb="scenes/nowhere/0/rgb/00000.png"),
        SAMPLE,
        "'rgb'",
        "scenes/nowhere/0/rgb/00000.png",
    ),
    _manifest("visual_grounding", "empty scene", set_fields(scene_id=""), SAMPLE, "'scene_id'", "''"),
    _manifest(
        "open_vocab_detection",
        "task mismatch",
        _set_top(task="object_detection"),
        MANIFEST,
        "'object_detection'",
        "'open_vocab_detection'",
    ),
    _manifest(
        "open_vocab_detection", "metadata not an object", set_fields(metadata="notes"), SAMPLE, "'metadata'", "'notes'"
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_bad_manifest_fails_when_the_split_opens_and_keeps_the_earlier_report(
    case, earlier_reports, tmp_path, capsys
):
    run_case(case, earlier_reports, tmp_path, capsys)
