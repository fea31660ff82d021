"""Every field of every sample is checked when the split is opened (issue 9, requirement 2).

Each case copies the built-in sample data's ``hard`` manifest of a task, breaks one field of its
second sample and asserts that ``open_split`` raises a ManifestError naming that sample, the field
and the offending value, before anything is decoded or any model loaded. The sample files are only
read; broken files are written under the test's ``tmp_path`` and named by absolute path.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from PIL import Image

from rpx_tasks.bench import run_bench
from rpx_tasks.config import RunConfig
from rpx_tasks.dataset import open_split
from rpx_tasks.errors import ManifestError
from rpx_tasks.sample_data.builtin import builtin_manifest_path
from rpx_tasks.tasks import get_task, iter_tasks

NAN = float("nan")


class Files:
    """Writes broken sample files under ``tmp_path``; each method returns the file's absolute path."""

    def __init__(self, folder: Path, sample_root: Path):
        self.folder = folder
        self.sample_root = sample_root

    def png(self, name: str, array: np.ndarray) -> str:
        path = self.folder / name
        Image.fromarray(array).save(path)
        return str(path)

    def raw(self, name: str, data: bytes) -> str:
        path = self.folder / name
        path.write_bytes(data)
        return str(path)

    def pose_npz(self, name: str, position, orientation) -> str:
        path = self.folder / name
        np.savez(path, position=np.asarray(position, float), orientation=np.asarray(orientation, float))
        return str(path)

    def npy(self, name: str, array) -> str:
        path = self.folder / name
        np.save(path, np.asarray(array))
        return str(path)

    def copy_of(self, entry: dict, key: str, name: str) -> str:
        """A copy of the entry's ``key`` file outside any scenes/<scene>/<phase>/ folder."""
        path = self.folder / name
        shutil.copyfile(self.sample_root / entry[key], path)
        return str(path)


Mutation = Callable[[dict, Files], None]


def _break(task: str, mutate: Mutation, sample_dataset: Path, tmp_path: Path) -> tuple[ManifestError, str]:
    """Open a copy of ``task``'s built-in hard manifest whose second sample ``mutate`` broke.

    Returns the ManifestError and the id of the broken sample.
    """
    manifest = json.loads(builtin_manifest_path(task, "hard", root=sample_dataset).read_text())
    samples = copy.deepcopy(manifest["samples"][:3])
    mutate(samples[1], Files(tmp_path, sample_dataset))
    broken = {"task": task, "root": str(sample_dataset), "samples": samples}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(ManifestError) as info:
        open_split(path, get_task(task))
    return info.value, samples[1]["id"]


def _assert_names(error: ManifestError, sample_id: str, key: str, value: str) -> None:
    text = str(error)
    assert sample_id in text, text
    assert key in text, text
    assert value in text, text
    sample = str(error.details.get("sample"))
    assert sample == sample_id or sample.startswith(f"{sample_id}__"), error.details  # a clip's frame: <clip>__<stem>
    assert error.details.get("key") == key, error.details


def _set(**fields: Any) -> Mutation:
    def mutate(entry: dict, files: Files) -> None:
        entry.update(fields)

    return mutate


def _drop(key: str) -> Mutation:
    def mutate(entry: dict, files: Files) -> None:
        entry.pop(key)

    return mutate


def _with_file(key: str, write: Callable[[Files], str]) -> Mutation:
    def mutate(entry: dict, files: Files) -> None:
        entry[key] = write(files)

    return mutate


# --------------------------------------------------------------------------- fields every task shares

COMMON_CASES = [
    ("phase", _set(phase="dusk"), "'dusk'"),
    ("phase", _set(phase=7), "7"),
    ("phase", _set(phase=None), "None"),
    ("phase", _set(phase="٣"), "'٣'"),
    ("difficulty", _set(difficulty="extreme"), "'extreme'"),
    ("difficulty", _set(difficulty=2), "2"),
    ("scene_id", _set(scene_id=""), "''"),
    ("scene_id", _set(scene_id=5), "5"),
    ("scene", _set(scene=["s"]), "['s']"),
    ("frame_idx", _set(frame_idx=-1), "-1"),
    ("frame_idx", _set(frame_idx="12a"), "'12a'"),
    ("frame_idx", _set(frame_idx=1.5), "1.5"),
    ("frame_idx", _set(frame_idx=True), "True"),
    ("metadata", _set(metadata="notes"), "'notes'"),
    ("rgb", _set(rgb="scenes/nowhere/0/rgb/00000.png"), "scenes/nowhere/0/rgb/00000.png"),
    ("rgb", _with_file("rgb", lambda files: files.raw("rgb.png", b"\x89PNG not really")), "rgb.png"),
    ("rgb", _set(rgb="scenes/../../outside.png"), "scenes/../../outside.png"),
    ("pose", _set(pose=3), "3"),
]


# Keys of a frame entry that a clip task's clip entry does not have (its frames get them from its file lists).
CLIP_ENTRY_HAS_NOT = ("rgb", "frame_idx", "pose")


@pytest.mark.parametrize("task", [spec.name for spec in iter_tasks()])
@pytest.mark.parametrize("key, mutate, value", COMMON_CASES, ids=[f"{c[0]}={c[2]}" for c in COMMON_CASES])
def test_a_bad_common_field_is_refused_at_open_for_every_task(task, key, mutate, value, sample_dataset, tmp_path):
    if get_task(task).clip is not None and key in CLIP_ENTRY_HAS_NOT:
        pytest.skip(
            f"a {task} entry is a clip: its frames' {key} come from its file lists (tests/tasks/test_{task}.py)"
        )
    error, sample_id = _break(task, mutate, sample_dataset, tmp_path)
    _assert_names(error, sample_id, key, value)


def test_a_phase_is_required_where_no_path_shows_one(sample_dataset, tmp_path):
    def mutate(entry: dict, files: Files) -> None:
        entry.pop("phase")
        entry["rgb"] = files.copy_of(entry, "rgb", "frame.png")

    error, sample_id = _break("object_detection", mutate, sample_dataset, tmp_path)
    _assert_names(error, sample_id, "phase", "None")
    assert "is missing" in error.message


def test_a_phase_that_disagrees_with_its_path_is_refused(sample_dataset, tmp_path):
    error, sample_id = _break("monocular_depth", _set(phase="clean"), sample_dataset, tmp_path)
    _assert_names(error, sample_id, "phase", "'clean'")
    assert "disagrees with the phase folder '0'" in error.message


def test_the_phase_may_come_from_the_path_alone_and_difficulty_may_be_absent(sample_dataset, tmp_path):
    manifest = json.loads(builtin_manifest_path("monocular_depth", "hard", root=sample_dataset).read_text())
    for entry in manifest["samples"]:
        del entry["phase"], entry["difficulty"]
    manifest["root"] = str(sample_dataset)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    dataset = open_split(path, get_task("monocular_depth"), split="hard")
    sample = dataset.decode(dataset.entries[0])
    assert (sample.phase, sample.difficulty) == ("clutter", "hard")


def test_a_repeated_or_empty_id_is_refused(sample_dataset, tmp_path):
    def repeat(entry: dict, files: Files) -> None:
        entry["id"] = "scene_004__0__00000"

    error, _ = _break("monocular_depth", repeat, sample_dataset, tmp_path)
    _assert_names(error, "scene_004__0__00000", "id", "appears twice")
    error, _ = _break("monocular_depth", _set(id=" "), sample_dataset, tmp_path)
    assert "'id' ' '" in error.message and error.details["key"] == "id" and error.details["sample"] == 1


@pytest.mark.parametrize(
    "task, key, mutate, value",
    [
        ("monocular_depth", "depth", _set(depth=None), "None"),
        ("monocular_depth", "depth", _set(depth=5), "5"),
        ("monocular_depth", "depth", _set(depth="scenes/scene_004/0/depth/gone.png"), "gone.png"),
        ("monocular_depth", "depth", _set(depth="../depth.png"), "../depth.png"),
        ("object_detection", "boxes", _set(boxes="scenes/scene_004/0/boxes/gone.json"), "gone.json"),
        ("sparse_depth", "depths", _set(depths=None), "None"),
        ("object_segmentation", "mask", _set(mask=""), "''"),
    ],
)
def test_a_bad_path_field_is_refused_at_open(task, key, mutate, value, sample_dataset, tmp_path):
    error, sample_id = _break(task, mutate, sample_dataset, tmp_path)
    _assert_names(error, sample_id, key, value)


def test_a_malformed_camera_pose_is_refused_at_open(sample_dataset, tmp_path):
    zero = _with_file("pose", lambda files: files.pose_npz("zero.npz", [0, 0, 0], [0, 0, 0, 0]))
    error, sample_id = _break("monocular_depth", zero, sample_dataset, tmp_path)
    assert sample_id in error.message and "zero.npz" in error.message and "quaternion" in error.message
    assert error.details["key"] == "pose"


def test_a_missing_pose_file_is_allowed_only_where_the_task_does_not_need_poses(sample_dataset, tmp_path):
    manifest = json.loads(builtin_manifest_path("monocular_depth", "hard", root=sample_dataset).read_text())
    manifest["samples"][0]["pose"] = "scenes/scene_004/0/pose/not_downloaded.npz"
    manifest["root"] = str(sample_dataset)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    assert len(open_split(path, get_task("monocular_depth"))) == len(manifest["samples"])


# --------------------------------------------------------------------------- label values, per task family

RGB_SHAPE = (96, 128)  # (H, W) of the built-in sample frames

LABEL_CASES = [
    # per-pixel maps: header only, size and channels
    (
        "monocular_depth",
        "depth",
        _with_file("depth", lambda f: f.png("small.png", np.zeros((10, 20), np.uint16))),
        "the RGB frame 96x128",
    ),
    (
        "monocular_depth",
        "depth",
        _with_file("depth", lambda f: f.png("colour.png", np.zeros((*RGB_SHAPE, 3), np.uint8))),
        "colour.png",
    ),
    ("object_segmentation", "mask", _with_file("mask", lambda f: f.raw("mask.png", b"garbage")), "mask.png"),
    (
        "object_segmentation",
        "mask",
        _with_file("mask", lambda f: f.png("wide.png", np.zeros((96, 129), np.uint8))),
        "is 96x129",
    ),
    (
        "object_segmentation",
        "depth",
        _with_file("depth", lambda f: f.png("d.png", np.zeros((48, 64), np.uint16))),
        "is 48x64",
    ),
    # boxes
    ("object_detection", "boxes", _set(boxes=[{"bbox": [10, 5, 2, 8], "label": "box"}]), "[10, 5, 2, 8]"),
    ("object_detection", "boxes", _set(boxes=[{"bbox": [1, 2, 3], "label": "box"}]), "[1, 2, 3]"),
    ("object_detection", "boxes", _set(boxes=[{"bbox": [NAN, 2, 3, 4], "label": "box"}]), "nan"),
    ("object_detection", "boxes", _set(boxes=[{"bbox": [1, 2, 3, 4], "label": 1.5}]), "1.5"),
    ("object_detection", "boxes", _set(boxes=[{"bbox": [1, 2, 3, 4], "label": ""}]), "empty label ''"),
    ("open_vocab_detection", "boxes", _set(boxes=[{"bbox": [1, 9, 3, 4], "label": "box"}]), "[1, 9, 3, 4]"),
    ("open_vocab_detection", "vocabulary", _set(vocabulary=["box", 2.5]), "2.5"),
    ("open_vocab_detection", "vocabulary", _set(vocabulary=["box", " "]), "' '"),
    ("open_vocab_detection", "vocabulary", _set(vocabulary="scenes/no/vocabulary.json"), "vocabulary.json"),
    ("visual_grounding", "text", _set(text="  "), "'  '"),
    ("visual_grounding", "text", _set(text=7), "7"),
    ("visual_grounding", "boxes", _set(boxes=[[5, 5, 1, 1]]), "[5, 5, 1, 1]"),
    ("visual_grounding", "boxes", _set(boxes=[[1, 2, 3, 4, 5]]), "[1, 2, 3, 4, 5]"),
    ("visual_grounding", "labels", _set(labels=[{"name": "box"}]), "{'name': 'box'}"),
    # poses and pairs
    (
        "relative_camera_pose",
        "pose_a",
        _with_file("pose_a", lambda f: f.pose_npz("zero.npz", [0, 0, 0], [0, 0, 0, 0])),
        "zero.npz",
    ),
    (
        "relative_camera_pose",
        "pose_b",
        _with_file("pose_b", lambda f: f.pose_npz("nan.npz", [NAN, 0, 0], [0, 0, 0, 1])),
        "nan.npz",
    ),
    ("relative_camera_pose", "pose_b", _with_file("pose_b", lambda f: f.npy("short.npy", np.zeros(5))), "(5,)"),
    ("relative_camera_pose", "pose_a", _set(pose_a="scenes/scene_004/0/pose/gone.npz"), "gone.npz"),
    ("relative_camera_pose", "rgb_b", _drop("rgb_b"), "None"),
    ("relative_camera_pose", "rgb_b", _set(rgb_b="scenes/scene_004/0/rgb/gone.png"), "gone.png"),
    # novel view synthesis: the target frame and the target camera
    (
        "novel_view_synthesis",
        "target_rgb",
        _with_file("target_rgb", lambda f: f.png("small.png", np.zeros((48, 64, 3), np.uint8))),
        "is 48x64",
    ),
    ("novel_view_synthesis", "target_rgb", _set(target_rgb="scenes/scene_004/0/rgb/gone.png"), "gone.png"),
    (
        "novel_view_synthesis",
        "target_pose",
        _with_file("target_pose", lambda f: f.pose_npz("nan.npz", [NAN, 0, 0], [0, 0, 0, 1])),
        "nan.npz",
    ),
    ("novel_view_synthesis", "target_pose", _set(target_pose=[[1, 0], [0, 1]]), "[[1, 0], [0, 1]]"),
    # keypoints
    ("keypoint_matching", "points0", _set(points0=[[1, 1], [2, 2]], points1=[[1, 1]], visibility=None), "2 points"),
    ("keypoint_matching", "visibility", _set(points0=[[1, 1]], points1=[[1, 1]], visibility=[1, 0]), "2 values"),
    ("keypoint_matching", "visibility", _set(points0=[[1, 1]], points1=[[1, 1]], visibility=[2]), "2.0"),
    ("keypoint_matching", "points1", _set(points0=[[1, 1]], points1=[[1, 300]], visibility=[1]), "[1.0, 300.0]"),
    ("keypoint_matching", "points0", _set(points0=[[-3, 1]], points1=[[1, 1]], visibility=None), "[-3.0, 1.0]"),
    ("keypoint_matching", "points0", _set(points0=[[1, 1, 1]], points1=[[1, 1]], visibility=None), "(1, 3)"),
    ("keypoint_matching", "rgb_b", _set(rgb_b=None), "None"),
    # video depth: a frame of a clip
    (
        "video_depth",
        "depth",
        lambda entry, files: entry["depth_filenames"].__setitem__(
            1, files.png("small.png", np.zeros((10, 20), np.uint16))
        ),
        "the RGB frame 96x128",
    ),
    # sparse depth
    ("sparse_depth", "depths", _set(coordinates=[[1, 1], [2, 2]], depths=[1.0, -0.5]), "-0.5"),
    ("sparse_depth", "depths", _set(coordinates=[[1, 1]], depths=[NAN]), "NaN"),
    ("sparse_depth", "coordinates", _set(coordinates=[[1, 1], [2, 2]], depths=[1.0]), "2 points"),
    ("sparse_depth", "coordinates", _set(coordinates=[[1, 1], [500, 2]], depths=[1.0, 2.0]), "[500.0, 2.0]"),
    ("sparse_depth", "coordinates", _set(coordinates=[[1, 1, 1]], depths=[1.0]), "(1, 3)"),
    # tracking
    (
        "object_tracking",
        "tracks",
        _set(tracks=[{"track_id": "a", "boxes": [[1, 1, 5, 5]]}, {"track_id": "a", "boxes": [[2, 2, 6, 6]]}]),
        "repeats track_id 'a'",
    ),
    ("object_tracking", "tracks", _set(tracks=[{"track_id": 1.5, "boxes": [[1, 1, 5, 5]]}]), "1.5"),
    ("object_tracking", "tracks", _set(tracks=[{"track_id": "", "boxes": [[1, 1, 5, 5]]}]), "''"),
    ("object_tracking", "tracks", _set(tracks=[{"boxes": [[1, 1, 5, 5]]}]), "['track_id']"),
    ("object_tracking", "tracks", _set(tracks=[{"track_id": "a", "boxes": [[9, 1, 5, 5]]}]), "[9.0, 1.0, 5.0, 5.0]"),
    ("object_tracking", "tracks", _set(tracks=[{"track_id": "a", "boxes": [[1, 1, 5]]}]), "(1, 3)"),
    (
        "object_tracking",
        "mask",
        _with_file("mask", lambda f: f.png("m.png", np.zeros((10, 10), np.uint8))),
        "is 10x10",
    ),
]


@pytest.mark.parametrize("task, key, mutate, value", LABEL_CASES, ids=[f"{c[0]}-{c[1]}-{c[3]}" for c in LABEL_CASES])
def test_a_bad_label_value_is_refused_at_open(task, key, mutate, value, sample_dataset, tmp_path):
    error, sample_id = _break(task, mutate, sample_dataset, tmp_path)
    text = str(error)
    assert sample_id in text and key in text and value in text, text
    sample = str(error.details.get("sample"))
    assert sample == sample_id or sample.startswith(f"{sample_id}__"), error.details  # a clip's frame


def test_every_task_has_label_cases_and_an_entry_check():
    assert {case[0] for case in LABEL_CASES} == {spec.name for spec in iter_tasks()}
    assert all(spec.check_entry is not None for spec in iter_tasks())


# --------------------------------------------------------------------------- valid splits, and the run order


@pytest.mark.parametrize("task", [spec.name for spec in iter_tasks()])
def test_the_built_in_split_of_every_task_opens_and_decodes(task, sample_dataset):
    spec = get_task(task)
    manifest_path = builtin_manifest_path(task, "all", root=sample_dataset)
    dataset = open_split(manifest_path, spec)
    samples = json.loads(manifest_path.read_text())["samples"]
    frames = sum(len(s["frame_filenames"]) for s in samples) if spec.clip is not None else len(samples)
    assert len(dataset) == frames > 0
    first = dataset.decode(dataset.entries[0])
    assert first.phase in ("clutter", "interaction", "clean") and first.difficulty in ("easy", "medium", "hard")


def test_a_bad_sample_fails_the_run_before_the_model_is_loaded(sample_dataset, tmp_path):
    manifest = json.loads(builtin_manifest_path("monocular_depth", "hard", root=sample_dataset).read_text())
    manifest["samples"][-1]["difficulty"] = "extreme"
    manifest["root"] = str(sample_dataset)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    built = []

    def factory(device: str = "cpu"):
        built.append(device)
        raise AssertionError("the model must not be built for a split that does not open")

    config = RunConfig(task="monocular_depth", model=factory, manifest=str(path), output_dir=str(tmp_path / "out"))
    with pytest.raises(ManifestError, match="'extreme'"):
        run_bench(config)
    assert built == [] and not (tmp_path / "out").exists()
