"""The procedural RPX-layout dataset: layout, determinism, data conventions, content, baselines."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rpx_tasks.constants import scaled_intrinsics
from rpx_tasks.errors import AdapterError, ConfigError
from rpx_tasks.manifest import MANIFESTS_DIR, manifest_relpath
from rpx_tasks.models.baselines import constant_depth, ground_plane_depth
from rpx_tasks.sample_data import (
    MAX_VALID_DEPTH_M,
    OCCLUDER_DEPTH_RANGE_M,
    camera_rotation,
    rotation_to_quaternion_xyzw,
    write_sample_dataset,
)
from rpx_tasks.tasks import iter_tasks

SPLITS = ("easy", "medium", "hard")


def _manifest(root: Path, split: str) -> dict:
    return json.loads((root / manifest_relpath("monocular_depth", split)).read_text())


def _all_samples(root: Path) -> list[dict]:
    return _manifest(root, "all")["samples"]


def _depth_m(root: Path, sample: dict) -> np.ndarray:
    return np.asarray(Image.open(root / sample["depth"])).astype(np.float32) / 1000


def _pose_matrix(root: Path, sample: dict) -> np.ndarray:
    with np.load(root / sample["pose"]) as pose:
        x, y, z, w = pose["orientation"]
        position = pose["position"]
    rotation = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )
    matrix = np.eye(4)
    matrix[:3, :3], matrix[:3, 3] = rotation, position
    return matrix


def _consecutive_pairs(samples: list[dict]):
    for a, b in zip(samples, samples[1:]):
        if (a["scene_id"], a["phase"]) == (b["scene_id"], b["phase"]):
            yield a, b


def _in_plane_rotation_deg(root: Path, a: dict, b: dict) -> float:
    relative = np.linalg.inv(_pose_matrix(root, a)) @ _pose_matrix(root, b)
    return math.degrees(math.atan2(relative[1, 0], relative[0, 0]))


def _absrel(pred: np.ndarray, gt: np.ndarray) -> float:
    valid = gt > 0
    return float(np.mean(np.abs(pred[valid] - gt[valid]) / gt[valid]))


# --------------------------------------------------------------------------- layout


def test_manifests_have_the_hub_schema(sample_dataset):
    for split in SPLITS:
        manifest = _manifest(sample_dataset, split)
        assert manifest["task"] == "monocular_depth"
        assert manifest["split"] == split
        assert manifest["root"] is None
        assert len(manifest["samples"]) == 2 * 3 * 4  # scenes x phases x frames
        for sample in manifest["samples"]:
            assert sample["difficulty"] == split
            stem = f"{sample['frame_idx']:05d}"
            assert sample["id"] == f"{sample['scene_id']}__{sample['phase']}__{stem}"
            prefix = f"scenes/{sample['scene_id']}/{sample['phase']}"
            assert sample["rgb"] == f"{prefix}/rgb/{stem}.png"
            assert sample["depth"] == f"{prefix}/depth/{stem}.png"
            assert sample["pose"] == f"{prefix}/pose/{stem}.npz"
        assert {s["phase"] for s in manifest["samples"]} == {0, 1, 2}


def test_every_manifest_path_exists_and_stays_inside_the_root(sample_dataset):
    samples = _all_samples(sample_dataset)
    assert len(samples) == 3 * 24
    for sample in samples:
        for key in ("rgb", "depth", "pose"):
            path = sample[key]
            assert not Path(path).is_absolute() and ".." not in path and "\\" not in path
            assert (sample_dataset / path).is_file()


def test_ids_are_unique_and_samples_are_ordered_by_scene_phase_frame(sample_dataset):
    samples = _all_samples(sample_dataset)
    assert len({s["id"] for s in samples}) == len(samples)
    keys = [(s["scene_id"], s["phase"], s["frame_idx"]) for s in samples]
    assert keys == sorted(keys)
    assert [s["id"] for s in samples] == [
        s["id"] for split in SPLITS for s in _manifest(sample_dataset, split)["samples"]
    ]


def test_difficulty_is_assigned_scene_wise_in_scene_order(sample_dataset):
    difficulty_of = {}
    for sample in _all_samples(sample_dataset):
        assert difficulty_of.setdefault(sample["scene_id"], sample["difficulty"]) == sample["difficulty"]
    assert difficulty_of == {
        "scene_000": "easy",
        "scene_001": "easy",
        "scene_002": "medium",
        "scene_003": "medium",
        "scene_004": "hard",
        "scene_005": "hard",
    }


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_every_task_with_a_sample_hook_gets_four_manifests(sample_dataset):
    tasks = [spec.name for spec in iter_tasks() if spec.sample_entry is not None]
    assert "monocular_depth" in tasks
    assert sorted(p.name for p in (sample_dataset / MANIFESTS_DIR).iterdir()) == sorted(tasks)
    for task in tasks:
        ids = []
        for split in SPLITS:
            manifest = json.loads((sample_dataset / manifest_relpath(task, split)).read_text())
            assert set(manifest) == {"task", "split", "root", "samples"}
            assert (manifest["task"], manifest["split"], manifest["root"]) == (task, split, None)
            assert all(sample["difficulty"] == split for sample in manifest["samples"])
            ids += [sample["id"] for sample in manifest["samples"]]
        everything = json.loads((sample_dataset / manifest_relpath(task, "all")).read_text())
        assert everything["split"] == "all" and [s["id"] for s in everything["samples"]] == ids


def test_the_tree_holds_nothing_but_manifests_and_files_they_reference(sample_dataset):
    files = {p.relative_to(sample_dataset).as_posix() for p in sample_dataset.rglob("*") if p.is_file()}
    manifests = {f for f in files if f.startswith(f"{MANIFESTS_DIR}/")}
    referenced = set()
    for manifest in manifests:
        for sample in json.loads((sample_dataset / manifest).read_text())["samples"]:
            referenced |= {value for value in _strings(sample) if value.startswith("scenes/")}
    assert referenced <= files
    assert files == referenced | manifests


# --------------------------------------------------------------------------- determinism


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_generation_is_byte_identical_for_the_same_arguments(tmp_path):
    kwargs = dict(scenes_per_split=1, frames_per_clip=2, height=48, width=64, seed=7)
    first = _tree_bytes(write_sample_dataset(tmp_path / "a", **kwargs))
    second = _tree_bytes(write_sample_dataset(tmp_path / "b", **kwargs))
    assert first == second
    other_seed = _tree_bytes(write_sample_dataset(tmp_path / "c", **{**kwargs, "seed": 8}))
    assert other_seed.keys() == first.keys()
    assert all(other_seed[k] != first[k] for k in first if k.endswith(".png"))


def test_rejects_non_positive_sizes_and_unknown_splits(tmp_path):
    with pytest.raises(ConfigError, match=">= 1"):
        write_sample_dataset(tmp_path, frames_per_clip=0)
    with pytest.raises(ConfigError, match="subset"):
        write_sample_dataset(tmp_path, splits=["hard", "extreme"])


def test_writing_one_split_gives_the_same_files_as_the_full_dataset(sample_dataset, tmp_path):
    hard_only = write_sample_dataset(tmp_path, splits="hard")
    manifests = sorted(p.name for p in (hard_only / manifest_relpath("monocular_depth", "all")).parent.iterdir())
    assert manifests == ["all.json", "hard.json"]
    assert _manifest(hard_only, "hard") == _manifest(sample_dataset, "hard")
    for sample in _manifest(hard_only, "all")["samples"]:
        for key in ("rgb", "depth", "pose"):
            assert (hard_only / sample[key]).read_bytes() == (sample_dataset / sample[key]).read_bytes()


# --------------------------------------------------------------------------- data conventions


def test_rgb_is_8_bit_rgb_of_the_requested_size_with_real_content(sample_dataset):
    sample = _all_samples(sample_dataset)[0]
    with Image.open(sample_dataset / sample["rgb"]) as image:
        assert image.mode == "RGB"
        rgb = np.asarray(image)
    assert rgb.shape == (96, 128, 3) and rgb.dtype == np.uint8
    assert rgb.std() > 10


def test_depth_is_16_bit_millimetres_with_invalid_zeros(sample_dataset):
    for sample in _all_samples(sample_dataset):
        with Image.open(sample_dataset / sample["depth"]) as image:
            assert image.mode == "I;16"
            depth = np.asarray(image)
        assert depth.dtype == np.uint16 and depth.shape == (96, 128)
        invalid = depth == 0
        assert 0.005 < invalid.mean() < 0.5
        assert depth[~invalid].min() >= 200 and depth[~invalid].max() <= MAX_VALID_DEPTH_M * 1000


def test_poses_are_camera_to_world_positions_and_unit_xyzw_quaternions(sample_dataset):
    for sample in _all_samples(sample_dataset):
        with np.load(sample_dataset / sample["pose"]) as pose:
            assert set(pose.files) == {"position", "orientation"}
            assert pose["position"].shape == (3,) and pose["position"].dtype == np.float64
            assert pose["orientation"].shape == (4,) and pose["orientation"].dtype == np.float64
            assert np.linalg.norm(pose["orientation"]) == pytest.approx(1.0, abs=1e-9)
            assert pose["position"][1] == pytest.approx(1.2, abs=0.1)  # camera height, Y up


def test_consecutive_frames_roll_a_little_and_move_a_little(sample_dataset):
    samples = _all_samples(sample_dataset)
    for a, b in _consecutive_pairs(samples):
        roll = abs(_in_plane_rotation_deg(sample_dataset, a, b))
        assert 0.2 < roll < 2.5
        step = np.linalg.norm(_pose_matrix(sample_dataset, b)[:3, 3] - _pose_matrix(sample_dataset, a)[:3, 3])
        assert 0.001 < step < 0.05


def test_pose_roll_matches_the_image_rotation(sample_dataset):
    """Rotating frame t+1 by +theta (counter-clockwise, as the TS warp does) re-aligns it with frame t."""
    errors = {+1: [], -1: []}
    hard = _manifest(sample_dataset, "hard")["samples"]
    for a, b in _consecutive_pairs(hard):
        theta = _in_plane_rotation_deg(sample_dataset, a, b)
        depth_a = _depth_m(sample_dataset, a)
        for sign in errors:
            warped = np.asarray(Image.fromarray(_depth_m(sample_dataset, b)).rotate(sign * theta, Image.BILINEAR))
            valid = (depth_a > 0) & (warped > 0)
            errors[sign].append(np.abs(depth_a - warped)[valid].mean())
    assert np.mean(errors[+1]) < np.mean(errors[-1])


def test_quaternion_conversion_round_trips():
    for yaw, pitch, roll in [(0, 0, 0), (0.3, -0.1, 0.05), (3.0, 0.2, -1.2), (-2.5, 1.4, 2.9)]:
        rotation = camera_rotation(yaw, pitch, roll)
        x, y, z, w = rotation_to_quaternion_xyzw(rotation)
        assert w >= 0
        rebuilt = np.array(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
            ]
        )
        np.testing.assert_allclose(rebuilt, rotation, atol=1e-12)


def test_intrinsics_scale_the_rpx_d435_camera():
    assert scaled_intrinsics(640, 480) == (615.0, 615.0, 320.0, 240.0)
    assert scaled_intrinsics(128, 96) == (123.0, 123.0, 64.0, 48.0)


def test_full_resolution_frames(tmp_path):
    root = write_sample_dataset(tmp_path, scenes_per_split=1, frames_per_clip=1, height=480, width=640)
    sample = _manifest(root, "hard")["samples"][0]
    assert np.asarray(Image.open(root / sample["rgb"])).shape == (480, 640, 3)
    assert _depth_m(root, sample).shape == (480, 640)


# --------------------------------------------------------------------------- content


def _phase_frames(root: Path, phase: int) -> list[dict]:
    return [s for s in _all_samples(root) if s["phase"] == phase]


def test_clutter_is_nearer_than_clean(sample_dataset):
    def mean_depth(phase: int) -> float:
        depths = [_depth_m(sample_dataset, s) for s in _phase_frames(sample_dataset, phase)]
        return float(np.mean([depth[depth > 0].mean() for depth in depths]))

    assert mean_depth(0) < mean_depth(2) - 0.1


def test_only_the_interaction_phase_has_a_near_occluder(sample_dataset):
    near_limit = OCCLUDER_DEPTH_RANGE_M[1] + 0.1

    def near_fraction(sample: dict) -> float:
        depth = _depth_m(sample_dataset, sample)
        return float(((depth > 0) & (depth < near_limit)).mean())

    assert all(near_fraction(s) > 0.01 for s in _phase_frames(sample_dataset, 1))
    assert all(near_fraction(s) == 0 for s in _phase_frames(sample_dataset, 0) + _phase_frames(sample_dataset, 2))


def test_depth_edges_are_rgb_edges(sample_dataset):
    """RGB is rendered from the same geometry: where depth jumps, the image has an edge too."""
    ratios = []
    for sample in _all_samples(sample_dataset):
        grey = np.asarray(Image.open(sample_dataset / sample["rgb"])).astype(np.float32).mean(axis=2)
        depth = _depth_m(sample_dataset, sample)
        rgb_step = np.abs(grey[:, 4:] - grey[:, :-4])  # 4 px apart: the jump itself is invalid in depth
        depth_step = np.abs(depth[:, 4:] - depth[:, :-4])
        valid = (depth[:, 4:] > 0) & (depth[:, :-4] > 0)
        edge, flat = valid & (depth_step > 0.3), valid & (depth_step < 0.05)
        if edge.any():
            ratios.append(rgb_step[edge].mean() / rgb_step[flat].mean())
    assert len(ratios) > len(_all_samples(sample_dataset)) // 2
    assert np.mean(ratios) > 3


# --------------------------------------------------------------------------- baselines


def test_baselines_return_float32_metres_of_the_image_size():
    rgb = np.zeros((96, 128, 3), np.uint8)
    for baseline in (ground_plane_depth, constant_depth):
        depth = baseline(rgb)
        assert depth.shape == (96, 128) and depth.dtype == np.float32
        assert np.all(np.isfinite(depth)) and np.all(depth > 0)
    with pytest.raises(AdapterError, match=r"\(H, W, 3\)"):
        ground_plane_depth(np.zeros((96, 128), np.uint8))


def test_ground_plane_baseline_beats_a_constant_guess(sample_dataset):
    ground, constant = [], []
    for sample in _all_samples(sample_dataset):
        rgb = np.asarray(Image.open(sample_dataset / sample["rgb"]))
        gt = _depth_m(sample_dataset, sample)
        ground.append(_absrel(ground_plane_depth(rgb), gt))
        constant.append(_absrel(constant_depth(rgb), gt))
    assert np.mean(ground) < 0.35
    assert np.mean(ground) < np.mean(constant) - 0.1
