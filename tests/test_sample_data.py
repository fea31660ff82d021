"""The procedural RPX-layout dataset: layout, determinism, data conventions, content, baselines."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rpx_tasks.constants import scaled_intrinsics
from rpx_tasks.contracts.spec import TaskSpec
from rpx_tasks.decoding import decode_label_map, decode_pose, decode_rgb
from rpx_tasks.errors import AdapterError, ConfigError
from rpx_tasks.models.baselines import constant_depth, ground_plane_depth
from rpx_tasks.sample_data import (
    MAX_VALID_DEPTH_M,
    MIN_OBJECT_PIXELS,
    OCCLUDER_DEPTH_RANGE_M,
    PAIR_STRIDE,
    SampleFrame,
    SampleObject,
    camera_rotation,
    colour_name,
    rotation_to_quaternion_xyzw,
    write_sample_dataset,
)
from rpx_tasks.tasks import _REGISTRY as TASK_REGISTRY
from rpx_tasks.tasks import get_task, iter_tasks, register_task

SPLITS = ("easy", "medium", "hard")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_sample_dataset(tmp_path_factory.mktemp("sample"))


def _manifest(root: Path, split: str) -> dict:
    return json.loads((root / "manifests" / "monocular_depth" / f"{split}.json").read_text())


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


def test_manifests_have_the_hub_schema(dataset):
    for split in SPLITS:
        manifest = _manifest(dataset, split)
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


def test_every_manifest_path_exists_and_stays_inside_the_root(dataset):
    samples = _all_samples(dataset)
    assert len(samples) == 3 * 24
    for sample in samples:
        for key in ("rgb", "depth", "pose"):
            path = sample[key]
            assert not Path(path).is_absolute() and ".." not in path and "\\" not in path
            assert (dataset / path).is_file()


def test_ids_are_unique_and_samples_are_ordered_by_scene_phase_frame(dataset):
    samples = _all_samples(dataset)
    assert len({s["id"] for s in samples}) == len(samples)
    keys = [(s["scene_id"], s["phase"], s["frame_idx"]) for s in samples]
    assert keys == sorted(keys)
    assert [s["id"] for s in samples] == [s["id"] for split in SPLITS for s in _manifest(dataset, split)["samples"]]


def test_difficulty_is_assigned_scene_wise_in_scene_order(dataset):
    difficulty_of = {}
    for sample in _all_samples(dataset):
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


def test_every_task_with_a_sample_hook_gets_four_manifests(dataset):
    tasks = [spec.name for spec in iter_tasks() if spec.sample_entry is not None]
    assert "monocular_depth" in tasks
    assert sorted(p.name for p in (dataset / "manifests").iterdir()) == sorted(tasks)
    for task in tasks:
        ids = []
        for split in SPLITS:
            manifest = json.loads((dataset / "manifests" / task / f"{split}.json").read_text())
            assert set(manifest) == {"task", "split", "root", "samples"}
            assert (manifest["task"], manifest["split"], manifest["root"]) == (task, split, None)
            assert all(sample["difficulty"] == split for sample in manifest["samples"])
            ids += [sample["id"] for sample in manifest["samples"]]
        everything = json.loads((dataset / "manifests" / task / "all.json").read_text())
        assert everything["split"] == "all" and [s["id"] for s in everything["samples"]] == ids


def test_the_tree_holds_nothing_but_manifests_and_files_they_reference(dataset):
    files = {p.relative_to(dataset).as_posix() for p in dataset.rglob("*") if p.is_file()}
    manifests = {f for f in files if f.startswith("manifests/")}
    referenced = set()
    for manifest in manifests:
        for sample in json.loads((dataset / manifest).read_text())["samples"]:
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


def test_writing_one_split_gives_the_same_files_as_the_full_dataset(dataset, tmp_path):
    hard_only = write_sample_dataset(tmp_path, splits="hard")
    manifests = sorted(p.name for p in (hard_only / "manifests" / "monocular_depth").iterdir())
    assert manifests == ["all.json", "hard.json"]
    assert _manifest(hard_only, "hard") == _manifest(dataset, "hard")
    for sample in _manifest(hard_only, "all")["samples"]:
        for key in ("rgb", "depth", "pose"):
            assert (hard_only / sample[key]).read_bytes() == (dataset / sample[key]).read_bytes()


# --------------------------------------------------------------------------- data conventions


def test_rgb_is_8_bit_rgb_of_the_requested_size_with_real_content(dataset):
    sample = _all_samples(dataset)[0]
    with Image.open(dataset / sample["rgb"]) as image:
        assert image.mode == "RGB"
        rgb = np.asarray(image)
    assert rgb.shape == (96, 128, 3) and rgb.dtype == np.uint8
    assert rgb.std() > 10


def test_depth_is_16_bit_millimetres_with_invalid_zeros(dataset):
    for sample in _all_samples(dataset):
        with Image.open(dataset / sample["depth"]) as image:
            assert image.mode == "I;16"
            depth = np.asarray(image)
        assert depth.dtype == np.uint16 and depth.shape == (96, 128)
        invalid = depth == 0
        assert 0.005 < invalid.mean() < 0.5
        assert depth[~invalid].min() >= 200 and depth[~invalid].max() <= MAX_VALID_DEPTH_M * 1000


def test_poses_are_camera_to_world_positions_and_unit_xyzw_quaternions(dataset):
    for sample in _all_samples(dataset):
        with np.load(dataset / sample["pose"]) as pose:
            assert set(pose.files) == {"position", "orientation"}
            assert pose["position"].shape == (3,) and pose["position"].dtype == np.float64
            assert pose["orientation"].shape == (4,) and pose["orientation"].dtype == np.float64
            assert np.linalg.norm(pose["orientation"]) == pytest.approx(1.0, abs=1e-9)
            assert pose["position"][1] == pytest.approx(1.2, abs=0.1)  # camera height, Y up


def test_consecutive_frames_roll_a_little_and_move_a_little(dataset):
    samples = _all_samples(dataset)
    for a, b in _consecutive_pairs(samples):
        roll = abs(_in_plane_rotation_deg(dataset, a, b))
        assert 0.2 < roll < 2.5
        step = np.linalg.norm(_pose_matrix(dataset, b)[:3, 3] - _pose_matrix(dataset, a)[:3, 3])
        assert 0.001 < step < 0.05


def test_pose_roll_matches_the_image_rotation(dataset):
    """Rotating frame t+1 by +theta (counter-clockwise, as the TS warp does) re-aligns it with frame t."""
    errors = {+1: [], -1: []}
    hard = _manifest(dataset, "hard")["samples"]
    for a, b in _consecutive_pairs(hard):
        theta = _in_plane_rotation_deg(dataset, a, b)
        depth_a = _depth_m(dataset, a)
        for sign in errors:
            warped = np.asarray(Image.fromarray(_depth_m(dataset, b)).rotate(sign * theta, Image.BILINEAR))
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


def test_clutter_is_nearer_than_clean(dataset):
    def mean_depth(phase: int) -> float:
        depths = [_depth_m(dataset, s) for s in _phase_frames(dataset, phase)]
        return float(np.mean([depth[depth > 0].mean() for depth in depths]))

    assert mean_depth(0) < mean_depth(2) - 0.1


def test_only_the_interaction_phase_has_a_near_occluder(dataset):
    near_limit = OCCLUDER_DEPTH_RANGE_M[1] + 0.1

    def near_fraction(sample: dict) -> float:
        depth = _depth_m(dataset, sample)
        return float(((depth > 0) & (depth < near_limit)).mean())

    assert all(near_fraction(s) > 0.01 for s in _phase_frames(dataset, 1))
    assert all(near_fraction(s) == 0 for s in _phase_frames(dataset, 0) + _phase_frames(dataset, 2))


def test_depth_edges_are_rgb_edges(dataset):
    """RGB is rendered from the same geometry: where depth jumps, the image has an edge too."""
    ratios = []
    for sample in _all_samples(dataset):
        grey = np.asarray(Image.open(dataset / sample["rgb"])).astype(np.float32).mean(axis=2)
        depth = _depth_m(dataset, sample)
        rgb_step = np.abs(grey[:, 4:] - grey[:, :-4])  # 4 px apart: the jump itself is invalid in depth
        depth_step = np.abs(depth[:, 4:] - depth[:, :-4])
        valid = (depth[:, 4:] > 0) & (depth[:, :-4] > 0)
        edge, flat = valid & (depth_step > 0.3), valid & (depth_step < 0.05)
        if edge.any():
            ratios.append(rgb_step[edge].mean() / rgb_step[flat].mean())
    assert len(ratios) > len(_all_samples(dataset)) // 2
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


def test_ground_plane_baseline_beats_a_constant_guess(dataset):
    ground, constant = [], []
    for sample in _all_samples(dataset):
        rgb = np.asarray(Image.open(dataset / sample["rgb"]))
        gt = _depth_m(dataset, sample)
        ground.append(_absrel(ground_plane_depth(rgb), gt))
        constant.append(_absrel(constant_depth(rgb), gt))
    assert np.mean(ground) < 0.35
    assert np.mean(ground) < np.mean(constant) - 0.1


# --------------------------------------------------------------------------- the frame API for task authors

PROBE = "zz_sample_frame_probe"


def _probe_spec(entry) -> TaskSpec:
    """A task that only records the frames it is handed (a copy of monocular_depth with another sample_entry)."""
    return dataclasses.replace(get_task("monocular_depth"), name=PROBE, display_name="probe", sample_entry=entry)


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    """A one-scene-per-split dataset written with a probe task registered: (root, frames in clip order)."""
    frames: list[SampleFrame] = []

    def entry(frame: SampleFrame):
        frames.append(frame)
        if frame.frame_idx == 1:
            return None
        return {
            **frame.base_entry(),
            "mask": frame.write_png("probe_mask", frame.instances),
            "objects": frame.write_json(
                "probe_objects",
                [
                    {"id": o.id, "label": o.label, "colour": o.colour, "box": o.box, "pixels": o.pixels}
                    for o in frame.objects
                ],
            ),
        }

    register_task(_probe_spec(entry))
    try:
        root = write_sample_dataset(tmp_path_factory.mktemp("probe"), scenes_per_split=1)
    finally:
        TASK_REGISTRY.pop(PROBE)
    frames.sort(key=lambda f: (f.scene, f.phase_idx, f.frame_idx))
    return root, frames


def _clips(frames):
    clips: dict[tuple[str, int], list[SampleFrame]] = {}
    for frame in frames:
        clips.setdefault((frame.scene, frame.phase_idx), []).append(frame)
    return clips


def test_the_hook_sees_every_frame_once_and_none_entries_are_skipped(probed):
    root, frames = probed
    assert len(frames) == 3 * 3 * 4
    assert len({(f.scene, f.phase_idx, f.frame_idx) for f in frames}) == len(frames)
    manifest = json.loads((root / "manifests" / PROBE / "all.json").read_text())
    assert [s["frame_idx"] for s in manifest["samples"]] == [0, 2, 3] * 9
    depth = json.loads((root / "manifests" / "monocular_depth" / "all.json").read_text())
    assert len(depth["samples"]) == 36


def test_frame_fields_match_the_files_written(probed):
    root, frames = probed
    for frame in frames[:6]:
        assert (frame.height, frame.width) == (96, 128) and frame.stem == f"{frame.frame_idx:05d}"
        assert frame.paths == {
            "rgb": f"scenes/{frame.scene}/{frame.phase_idx}/rgb/{frame.stem}.png",
            "depth": f"scenes/{frame.scene}/{frame.phase_idx}/depth/{frame.stem}.png",
            "pose": f"scenes/{frame.scene}/{frame.phase_idx}/pose/{frame.stem}.npz",
        }
        np.testing.assert_array_equal(decode_rgb(root / frame.paths["rgb"], "s"), frame.rgb)
        np.testing.assert_array_equal(np.asarray(Image.open(root / frame.paths["depth"])), frame.depth_mm)
        np.testing.assert_array_equal(decode_pose(root / frame.paths["pose"], "s"), frame.pose)
        assert frame.pose.dtype == np.float64 and frame.pose.shape == (4, 4)
        assert frame.intrinsics == scaled_intrinsics(128, 96)
        assert frame.base_entry() == {
            "id": f"{frame.scene}__{frame.phase_idx}__{frame.stem}",
            "scene_id": frame.scene,
            "phase": frame.phase_idx,
            "frame_idx": frame.frame_idx,
            "difficulty": frame.split,
            "rgb": frame.paths["rgb"],
        }


def test_instance_maps_are_written_as_16_bit_labels(probed):
    root, frames = probed
    manifest = json.loads((root / "manifests" / PROBE / "hard.json").read_text())
    by_id = {f.base_entry()["id"]: f for f in frames}
    for sample in manifest["samples"]:
        frame = by_id[sample["id"]]
        assert sample["mask"] == f"scenes/{frame.scene}/{frame.phase_idx}/probe_mask/{frame.stem}.png"
        with Image.open(root / sample["mask"]) as image:
            assert image.mode == "I;16"
        np.testing.assert_array_equal(decode_label_map(root / sample["mask"], sample["id"]), frame.instances)
        listed = json.loads((root / sample["objects"]).read_text())
        assert [o["id"] for o in listed] == [o.id for o in frame.objects]


def test_objects_are_the_instances_with_enough_pixels_and_their_boxes(probed):
    _, frames = probed
    for frame in frames:
        assert frame.instances.dtype == np.int32 and frame.instances.shape == (96, 128)
        ids, counts = np.unique(frame.instances, return_counts=True)
        big = {int(i): int(c) for i, c in zip(ids, counts) if i > 0 and c >= MIN_OBJECT_PIXELS}
        assert [o.id for o in frame.objects] == sorted(big)
        for obj in frame.objects:
            assert isinstance(obj, SampleObject) and obj.pixels == big[obj.id]
            rows, cols = np.nonzero(frame.instances == obj.id)
            np.testing.assert_array_equal(obj.box, [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
            assert obj.box.dtype == np.float64
            assert obj.label in {"box", "crate", "bottle", "arm"}
            assert obj.colour in {
                "black",
                "grey",
                "white",
                "red",
                "orange",
                "yellow",
                "green",
                "cyan",
                "blue",
                "purple",
                "pink",
            }


def test_ids_are_stable_per_clip_and_numbered_left_to_right(probed):
    _, frames = probed
    for (scene, phase), clip in _clips(frames).items():
        names: dict[int, tuple[str, str]] = {}
        for frame in clip:
            for obj in frame.objects:
                assert names.setdefault(obj.id, (obj.label, obj.colour)) == (obj.label, obj.colour)
        first = clip[0]
        centroids = [
            np.nonzero(first.instances == i)[1].mean()
            for i in range(1, first.instances.max() + 1)
            if (first.instances == i).any()
        ]
        assert centroids == sorted(centroids)
        arms = [o for f in clip for o in f.objects if o.label == "arm"]
        assert bool(arms) == (phase == 1)
        if arms:
            assert len({o.id for o in arms}) == 1 and all(o.moving for o in arms)
            depth = first.depth_mm[first.instances == arms[0].id]
            assert np.median(depth[depth > 0]) < (OCCLUDER_DEPTH_RANGE_M[1] + 0.1) * 1000


def test_the_dark_hard_object_is_black_and_clutter_has_several_objects(probed):
    _, frames = probed
    hard_clutter = [f for f in frames if f.split == "hard" and f.phase_idx == 0]
    assert all(len(f.objects) >= 3 for f in hard_clutter)
    assert colour_name((0.06, 0.06, 0.07)) == "black" and colour_name((0.9, 0.1, 0.1)) == "red"
    assert colour_name((0.2, 0.3, 0.9)) == "blue" and colour_name((0.5, 0.5, 0.52)) == "grey"


def test_later_is_the_frame_two_ahead_clamped_to_the_last(probed):
    _, frames = probed
    assert PAIR_STRIDE == 2
    for clip in _clips(frames).values():
        last = len(clip) - 1
        for frame in clip:
            assert frame.frames_in_clip == len(clip)
            if frame.frame_idx == last:
                assert frame.later is None
            else:
                assert frame.later is clip[min(frame.frame_idx + PAIR_STRIDE, last)]


def test_backproject_then_project_returns_the_same_pixels(probed):
    _, frames = probed
    frame = frames[0]
    rows, cols = np.nonzero(frame.depth_mm > 0)
    pixels = np.stack([cols, rows], axis=1).astype(np.float64) + 0.25
    world = frame.backproject(pixels)
    assert world.shape == (len(pixels), 3) and np.isfinite(world).all()
    back, visible = frame.project(world)
    np.testing.assert_allclose(back, pixels, atol=1e-9)
    assert visible.mean() > 0.99
    invalid = np.argwhere(frame.depth_mm == 0)[:5, ::-1].astype(np.float64)
    outside = np.array([[-5.0, 3.0], [3.0, 500.0]])
    assert np.isnan(frame.backproject(np.concatenate([invalid, outside]))).all()


def test_points_land_on_the_same_object_in_the_later_frame(probed):
    _, frames = probed
    checked = 0
    for frame in frames:
        if frame.later is None:
            continue
        static = [o.id for o in frame.objects if not o.moving and o.pixels > 100]
        for object_id in static:
            rows, cols = np.nonzero((frame.instances == object_id) & (frame.depth_mm > 0))
            world = frame.backproject(np.stack([cols, rows], axis=1))
            pixels, visible = frame.later.project(world)
            landed = np.rint(pixels[visible]).astype(int)
            same = frame.later.instances[landed[:, 1], landed[:, 0]] == object_id
            assert visible.mean() > 0.7 and same.mean() > 0.95
            checked += 1
    assert checked > 20


def test_project_hides_points_behind_the_camera_outside_the_image_or_occluded(probed):
    _, frames = probed
    frame = next(f for f in frames if f.phase_idx == 1)  # the arm occludes the room behind it
    arm = next(o for o in frame.objects if o.label == "arm")
    rows, cols = np.nonzero((frame.instances == arm.id) & (frame.depth_mm > 0))
    pixel = np.array([[cols[0], rows[0]]], np.float64)
    camera_centre, forward = frame.pose[:3, 3], -frame.pose[:3, 2]
    ray = frame.backproject(pixel)[0] - camera_centre
    behind_the_arm = camera_centre + ray * 3.0  # same pixel, three times further: hidden
    behind_the_camera = camera_centre - forward
    beside = camera_centre + forward + 5 * frame.pose[:3, 0]  # far to the right: outside the image
    pixels, visible = frame.project(np.stack([behind_the_arm, behind_the_camera, beside]))
    np.testing.assert_allclose(pixels[0], pixel[0], atol=1e-9)
    assert np.isnan(pixels[1]).all()
    assert visible.tolist() == [False, False, False]


def test_label_writers_are_deterministic_and_reject_bad_input(probed, tmp_path):
    _, frames = probed
    frame = SampleFrame(
        **{
            **{
                k: getattr(frames[0], k)
                for k in (
                    "scene",
                    "phase_idx",
                    "frame_idx",
                    "frames_in_clip",
                    "split",
                    "rgb",
                    "depth_mm",
                    "instances",
                    "objects",
                    "pose",
                    "intrinsics",
                )
            },
            "root": tmp_path,
        }
    )
    grey = frame.write_png("grey", frame.rgb[..., 0])
    rgb = frame.write_png("colour", frame.rgb)
    assert grey == f"scenes/{frame.scene}/0/grey/00000.png"
    with Image.open(tmp_path / grey) as image:
        assert image.mode == "L"
    np.testing.assert_array_equal(decode_rgb(tmp_path / rgb, "s"), frame.rgb)
    first = (tmp_path / frame.write_png("labels", frame.instances.astype(np.int64))).read_bytes()
    assert (tmp_path / frame.write_png("labels", frame.instances)).read_bytes() == first
    path = frame.write_json("nested/boxes", {"boxes": np.arange(4.0), "n": np.int64(3)})
    assert path == f"scenes/{frame.scene}/0/nested/boxes/00000.json"
    assert json.loads((tmp_path / path).read_text()) == {"boxes": [0.0, 1.0, 2.0, 3.0], "n": 3}
    npy = frame.write_npy("points", np.arange(6, dtype=np.float32).reshape(3, 2))
    np.testing.assert_array_equal(np.load(tmp_path / npy), np.arange(6, dtype=np.float32).reshape(3, 2))
    for bad in (
        np.full((4, 4), -1, np.int32),
        np.full((4, 4), 70000, np.int32),
        np.zeros((4, 4), np.float32),
        np.zeros((4, 4, 2), np.uint8),
    ):
        with pytest.raises(ConfigError, match="PNG|0-65535"):
            frame.write_png("bad", bad)
    for folder in ("../escape", "/abs", ""):
        with pytest.raises(ConfigError, match="relative path"):
            frame.write_json(folder, [])
    with pytest.raises(ConfigError, match="JSON"):
        frame.write_json("bad", {"x": object()})
