"""Bad-input catalogue, sample files and label values (issue 9, requirement 2): a corrupt file, a label map
of the wrong size or a label value outside its domain fails ``rpx bench`` with exit 1 when the split opens,
before the model is built, naming the sample, the field and the value or file, and the report already in the
output folder stays byte-identical (harness: ``tests/support/bad_inputs.py``; broken files are written under
the test's ``tmp_path`` and named by absolute path)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

from tests.support.bad_inputs import (
    RECORDED_BASELINE,
    SAMPLE,
    BadCase,
    Breaks,
    Draft,
    run_case,
    set_fields,
    set_file,
)

NAN = float("nan")
# A 16-bit depth map (millimetres) and a label map of half the sample frames' size (96 x 128).
SMALL_DEPTH = np.full((48, 64), 1500, np.uint16)
SMALL_MASK = np.zeros((48, 64), np.uint8)
GOOD_QUATERNION = [0.0, 0.0, 0.0, 1.0]


def _files(task: str, name: str, breaks: Breaks, *culprits: str) -> BadCase:
    """A case whose split cannot open: run with the recorded baseline, which must never be built."""
    options = ("--model-kwarg", f"task={task}")
    return BadCase(task, name, culprits, breaks, model=RECORDED_BASELINE, options=options, family="files")


def _truncated(key: str) -> Breaks:
    """The broken sample's ``key`` file cut to its first half (a PNG keeps its header; an npz loses its zip
    directory)."""

    def write(draft: Draft) -> str:
        data = draft.files.sample_bytes(draft.entry[key])
        return draft.files.raw("truncated" + draft.entry[key].rsplit("/", 1)[-1], data[: len(data) // 2])

    return set_file(key, write)


def _png(key: str, name: str, array: np.ndarray) -> Breaks:
    return set_file(key, lambda draft: draft.files.png(name, array))


def _small_depth_frame(draft: Draft) -> None:
    """video_depth: the second frame of the broken clip gets a depth map smaller than its RGB frame."""
    draft.entry["depth_filenames"][1] = draft.files.png("depth-small.png", SMALL_DEPTH)


def _three_channel_mask(draft: Draft) -> str:
    return draft.files.png("mask.png", np.zeros((96, 128, 3), np.uint8))


def _pose(name: str, position, orientation=GOOD_QUATERNION, **extra) -> Breaks:
    """A pose .npz of ``position`` and ``orientation`` (left out when None)."""

    def write(draft: Draft) -> str:
        arrays = {"position": np.asarray(position, float), **extra}
        if orientation is not None:
            arrays["orientation"] = np.asarray(orientation, float)
        path = draft.files.folder / f"{name}.npz"
        np.savez(path, **arrays)
        return str(path)

    return write


def _json(name: str, value: Any) -> Callable[[Draft], str]:
    return lambda draft: draft.files.text(name, value)


def _points_with(row: int, point) -> Callable[[Draft], str]:
    """The broken sample's points0 with ``point`` at ``row``."""

    def write(draft: Draft) -> str:
        points = np.load(draft.files.sample_root / draft.entry["points0"]).astype(np.float64)
        visibility = np.load(draft.files.sample_root / draft.entry["visibility"])
        row_visible = int(np.flatnonzero(visibility)[row])
        points[row_visible] = point
        return draft.files.npy("points0.npy", points)

    return write


def _one_point_fewer(key: str) -> Callable[[Draft], str]:
    def write(draft: Draft) -> str:
        return draft.files.npy(f"{key}.npy", np.load(draft.files.sample_root / draft.entry[key])[:-1])

    return write


def _visibility_of_two(draft: Draft) -> str:
    visibility = np.load(draft.files.sample_root / draft.entry["visibility"]).astype(np.int64)
    visibility[0] = 2
    return draft.files.npy("visibility.npy", visibility)


def _depths_with(index: int, value: float) -> Callable[[Draft], str]:
    def write(draft: Draft) -> str:
        depths = draft.files.sample_json(draft.entry["depths"])
        depths[index] = value
        return draft.files.text("depths.json", depths)

    return write


def _one_depth_fewer(draft: Draft) -> str:
    return draft.files.text("depths.json", draft.files.sample_json(draft.entry["depths"])[:-1])


def _coordinates_with(index: int, point) -> Callable[[Draft], str]:
    def write(draft: Draft) -> str:
        coordinates = np.load(draft.files.sample_root / draft.entry["coordinates"]).astype(np.float32)
        coordinates[index] = point
        return draft.files.npy("coordinates.npy", coordinates)

    return write


BOX = [10.0, 20.0, 30.0, 40.0]
TRACK = {"track_id": "7", "boxes": [BOX]}

CASES = [
    # video_depth: a frame of a clip (named <clip id>__<stem>)
    _files("video_depth", "depth frame smaller than rgb", _small_depth_frame, SAMPLE, "'depth'", "48x64"),
    # monocular_depth: the RGB frame, the depth map and the camera pose
    _files("monocular_depth", "truncated rgb png", _truncated("rgb"), SAMPLE, "rgb", "truncated00001.png"),
    _files(
        "monocular_depth", "depth smaller than rgb", _png("depth", "depth.png", SMALL_DEPTH), SAMPLE, "'depth'", "48x64"
    ),
    _files(
        "monocular_depth",
        "pose not an npz",
        set_file("pose", lambda d: d.files.raw("pose.npz", b"not a zip")),
        SAMPLE,
        "pose.npz",
    ),
    _files("monocular_depth", "truncated pose npz", _truncated("pose"), SAMPLE, "truncated00001.npz"),
    # object_segmentation: mask and (for SGC) depth
    _files(
        "object_segmentation", "mask smaller than rgb", _png("mask", "mask.png", SMALL_MASK), SAMPLE, "'mask'", "48x64"
    ),
    _files(
        "object_segmentation",
        "mask of three channels",
        set_file("mask", _three_channel_mask),
        SAMPLE,
        "'mask'",
        "3 channels",
    ),
    _files("object_segmentation", "truncated mask png", _truncated("mask"), SAMPLE, "truncated00001.png"),
    _files(
        "object_segmentation",
        "depth smaller than rgb",
        _png("depth", "depth.png", SMALL_DEPTH),
        SAMPLE,
        "'depth'",
        "48x64",
    ),
    # relative_camera_pose: both poses and the second frame
    _files(
        "relative_camera_pose",
        "zero-norm quaternion",
        set_file("pose_b", _pose("pose_b", [0, 0, 0], [0] * 4)),
        SAMPLE,
        "pose_b.npz",
        "quaternion",
    ),
    _files(
        "relative_camera_pose",
        "NaN position",
        set_file("pose_a", _pose("pose_a", [0, NAN, 0])),
        SAMPLE,
        "pose_a.npz",
        "non-finite",
    ),
    _files(
        "relative_camera_pose",
        "pose without orientation",
        set_file("pose_a", _pose("pose_a", [0, 0, 0], None)),
        SAMPLE,
        "pose_a.npz",
        "'orientation'",
    ),
    _files(
        "relative_camera_pose",
        "second frame missing",
        set_fields(rgb_b="scenes/scene_004/0/rgb/09999.png"),
        SAMPLE,
        "'rgb_b'",
        "09999.png",
    ),
    # keypoint_matching: the correspondences
    _files(
        "keypoint_matching",
        "arrays of different lengths",
        set_file("points1", _one_point_fewer("points1")),
        SAMPLE,
        "points1",
    ),
    _files("keypoint_matching", "truncated npy", _truncated("points1"), SAMPLE, "points1", "truncated00001.npy"),
    _files(
        "keypoint_matching", "NaN keypoint", set_file("points0", _points_with(0, [NAN, 3.0])), SAMPLE, "points0", "NaN"
    ),
    _files(
        "keypoint_matching",
        "visibility of 2",
        set_file("visibility", _visibility_of_two),
        SAMPLE,
        "'visibility'",
        "2.0",
    ),
    _files(
        "keypoint_matching",
        "point outside the frame",
        set_file("points0", _points_with(0, [500.0, 3.0])),
        SAMPLE,
        "'points0'",
        "500.0",
    ),
    # object_detection: the box file
    _files(
        "object_detection",
        "box x1 < x0",
        set_file("boxes", _json("b.json", [{"bbox": [30, 20, 10, 40], "label": "box"}])),
        SAMPLE,
        "boxes",
        "[30, 20, 10, 40]",
    ),
    _files(
        "object_detection",
        "box of 3 numbers",
        set_file("boxes", _json("b.json", [{"bbox": [1, 2, 3], "label": "box"}])),
        SAMPLE,
        "boxes",
        "[1, 2, 3]",
    ),
    _files(
        "object_detection",
        "empty label",
        set_file("boxes", _json("b.json", [{"bbox": BOX, "label": ""}])),
        SAMPLE,
        "boxes",
        "empty label",
    ),
    _files(
        "object_detection",
        "boxes not JSON",
        set_file("boxes", lambda d: d.files.raw("b.json", b"[{bbox")),
        SAMPLE,
        "boxes",
        "b.json",
    ),
    # open_vocab_detection: boxes and vocabulary
    _files(
        "open_vocab_detection",
        "NaN box",
        set_fields(boxes=[{"bbox": [1.0, NAN, 3.0, 4.0], "label": "red box"}]),
        SAMPLE,
        "boxes",
        "nan",
    ),
    _files(
        "open_vocab_detection",
        "vocabulary not a list",
        set_file("vocabulary", _json("v.json", {"red": "box"})),
        SAMPLE,
        "'vocabulary'",
        "{'red': 'box'}",
    ),
    _files(
        "open_vocab_detection",
        "empty vocabulary phrase",
        set_fields(vocabulary=["red box", " "]),
        SAMPLE,
        "'vocabulary'",
        "' '",
    ),
    # sparse_depth: coordinates and depths
    _files("sparse_depth", "negative depth", set_file("depths", _depths_with(3, -0.5)), SAMPLE, "'depths'", "-0.5"),
    _files(
        "sparse_depth",
        "NaN coordinate",
        set_file("coordinates", _coordinates_with(2, [NAN, 1.0])),
        SAMPLE,
        "'coordinates'",
        "NaN",
    ),
    _files(
        "sparse_depth",
        "coordinate outside the frame",
        set_file("coordinates", _coordinates_with(2, [4.0, 900.0])),
        SAMPLE,
        "'coordinates'",
        "900.0",
    ),
    _files("sparse_depth", "one depth fewer", set_file("depths", _one_depth_fewer), SAMPLE, "depths"),
    # object_tracking: the tracks file
    _files(
        "object_tracking",
        "tracklet without id",
        set_file("tracks", _json("t.json", [{"boxes": [BOX]}])),
        SAMPLE,
        "tracks",
        "track_id",
    ),
    _files(
        "object_tracking",
        "duplicate tracklet ids",
        set_file("tracks", _json("t.json", [TRACK, TRACK])),
        SAMPLE,
        "tracks",
        "'7'",
    ),
    _files(
        "object_tracking",
        "inverted track box",
        set_file("tracks", _json("t.json", [{"track_id": "7", "boxes": [[30.0, 20.0, 10.0, 40.0]]}])),
        SAMPLE,
        "tracks",
        "[30.0, 20.0, 10.0, 40.0]",
    ),
    # visual_grounding: text, boxes and labels inline
    _files("visual_grounding", "empty text", set_fields(text="  "), SAMPLE, "'text'", "'  '"),
    _files(
        "visual_grounding", "box of 3 numbers", set_fields(boxes=[[1.0, 2.0, 3.0]]), SAMPLE, "boxes", "[1.0, 2.0, 3.0]"
    ),
    _files("visual_grounding", "empty label", set_fields(labels=[""]), SAMPLE, "'labels'", "['']"),
    _files("visual_grounding", "NaN box", set_fields(boxes=[[NAN, 2.0, 3.0, 4.0]]), SAMPLE, "boxes", "nan"),
]


PARAMS = [pytest.param(case, id=case.id) for case in CASES]


@pytest.mark.parametrize("case", PARAMS)
def test_a_bad_file_or_label_fails_when_the_split_opens_and_keeps_the_earlier_report(
    case, earlier_reports, tmp_path, capsys
):
    run_case(case, earlier_reports, tmp_path, capsys)
