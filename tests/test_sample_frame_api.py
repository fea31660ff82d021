"""The frame API the sample data hands a task's ``sample_entry`` hook: fields, label writers,
object lists and instance maps, clip pairing, back-projection and projection."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

from rpx_tasks.constants import scaled_intrinsics
from rpx_tasks.contracts.spec import TaskSpec
from rpx_tasks.decoding import decode_label_map, decode_pose, decode_rgb
from rpx_tasks.errors import ConfigError
from rpx_tasks.manifest import manifest_relpath
from rpx_tasks.sample_data import (
    MIN_OBJECT_PIXELS,
    OCCLUDER_DEPTH_RANGE_M,
    PAIR_STRIDE,
    SampleFrame,
    SampleObject,
    colour_name,
    write_sample_dataset,
)
from rpx_tasks.tasks import get_task, register_task, unregister_task

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
        unregister_task(PROBE)
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
    manifest = json.loads((root / manifest_relpath(PROBE, "all")).read_text())
    assert [s["frame_idx"] for s in manifest["samples"]] == [0, 2, 3] * 9
    depth = json.loads((root / manifest_relpath("monocular_depth", "all")).read_text())
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
    manifest = json.loads((root / manifest_relpath(PROBE, "hard")).read_text())
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
