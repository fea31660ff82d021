import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rpx_tasks.dataset import open_split
from rpx_tasks.decoding import decode_pose, quaternion_xyzw_to_matrix
from rpx_tasks.errors import ManifestError
from rpx_tasks.manifest import clip_folder, dataset_root, manifest_relpath, phase_name, scene_phase_pairs
from rpx_tasks.tasks import get_task

DEPTH = get_task("monocular_depth")


def _write_frame(root: Path, scene: str, phase: int, frame: int, *, depth_mm: int = 2000) -> dict:
    clip = root / "scenes" / scene / str(phase)
    for sub in ("rgb", "depth", "pose"):
        (clip / sub).mkdir(parents=True, exist_ok=True)
    stem = f"{frame:05d}"
    Image.fromarray(np.full((6, 8, 3), 100 + frame, np.uint8)).save(clip / "rgb" / f"{stem}.png")
    depth = np.full((6, 8), depth_mm, np.uint16)
    depth[0, 0] = 0
    Image.fromarray(depth).save(clip / "depth" / f"{stem}.png")
    np.savez(
        clip / "pose" / f"{stem}.npz", position=np.array([0.1 * frame, 0, 0]), orientation=np.array([0, 0, 0, 1.0])
    )
    rel = f"scenes/{scene}/{phase}"
    return {
        "id": f"{scene}__{phase}__{stem}",
        "scene_id": scene,
        "phase": phase,
        "frame_idx": frame,
        "difficulty": "hard",
        "rgb": f"{rel}/rgb/{stem}.png",
        "depth": f"{rel}/depth/{stem}.png",
        "pose": f"{rel}/pose/{stem}.npz",
    }


def _write_manifest(root: Path, samples: list, **extra) -> Path:
    path = root / manifest_relpath("monocular_depth", "hard")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"task": "monocular_depth", "root": None, "samples": samples, **extra}))
    return path


@pytest.fixture()
def tiny(tmp_path):
    samples = [
        _write_frame(tmp_path, "scene_b", 2, 1),
        _write_frame(tmp_path, "scene_a", 0, 1),
        _write_frame(tmp_path, "scene_a", 0, 0),
    ]
    return tmp_path, samples


def test_null_root_is_the_folder_holding_manifests_and_samples_sort_by_clip(tiny):
    root, samples = tiny
    dataset = open_split(_write_manifest(root, samples), DEPTH)
    assert dataset.root == root.resolve()
    assert [e["id"] for e in dataset.entries] == ["scene_a__0__00000", "scene_a__0__00001", "scene_b__2__00001"]
    batches = list(dataset.iter_batches(2))
    assert [len(b) for b in batches] == [2, 1]
    first = batches[0][0]
    assert first.rgb.shape == (6, 8, 3) and first.rgb.dtype == np.uint8
    assert first.ground_truth.dtype == np.float32 and first.ground_truth[0, 0] == 0.0
    assert first.ground_truth[1, 1] == pytest.approx(2.0)
    assert (first.scene, first.phase, first.difficulty, first.frame_idx) == ("scene_a", "clutter", "hard", 0)
    assert first.camera_pose.shape == (4, 4)
    assert batches[1][0].phase == "clean"


def test_max_samples_keeps_the_first_entries_of_the_manifest(tiny):
    root, samples = tiny
    dataset = open_split(_write_manifest(root, samples), DEPTH, max_samples=2)
    assert sorted(e["id"] for e in dataset.entries) == ["scene_a__0__00001", "scene_b__2__00001"]


def test_order_is_preserved_with_many_prefetching_workers(tmp_path):
    samples = [_write_frame(tmp_path, "s", 0, i) for i in range(23)]
    dataset = open_split(_write_manifest(tmp_path, samples), DEPTH)
    seen = [s.frame_idx for batch in dataset.iter_batches(4, prefetch_batches=3, workers=4) for s in batch]
    assert seen == list(range(23))


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda m: m.pop("task"), "no 'task'"),
        (lambda m: m.update(task="teleportation"), "unknown task 'teleportation'"),
        (lambda m: m.pop("samples"), "no 'samples'"),
        (lambda m: m.update(samples={"a": 1}), "must be a list"),
        (lambda m: m.update(samples=[]), "has no samples"),
        (lambda m: m["samples"][0].pop("id"), "has no 'id'"),
        (lambda m: m["samples"][1].update(id=m["samples"][0]["id"]), "appears twice"),
        (lambda m: m["samples"][0].pop("rgb"), "has no 'rgb'"),
        (lambda m: m["samples"][0].pop("depth"), "has no 'depth' field"),
        (lambda m: m["samples"][0].update(depth="../outside/00000.png"), "escapes the dataset root"),
        (lambda m: m["samples"][0].update(rgb="scenes/../../etc/passwd"), "escapes the dataset root"),
    ],
)
def test_every_bad_manifest_is_a_manifest_error(tiny, mutate, fragment):
    root, samples = tiny
    manifest = {"task": "monocular_depth", "root": None, "samples": samples}
    mutate(manifest)
    path = root / manifest_relpath("monocular_depth", "bad")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match=fragment):
        open_split(path, DEPTH)


def test_missing_and_invalid_manifest_files(tmp_path):
    with pytest.raises(ManifestError, match="not found"):
        open_split(tmp_path / "nope.json", DEPTH)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        open_split(bad, DEPTH)
    bad.write_text("[1, 2]")
    with pytest.raises(ManifestError, match="must be a JSON object"):
        open_split(bad, DEPTH)


def _decode_all(path):
    return [s for b in open_split(path, DEPTH).iter_batches(1) for s in b]


def test_file_errors_name_the_sample_and_the_file_when_the_split_opens(tiny):
    root, samples = tiny
    path = _write_manifest(root, samples)
    target = root / samples[2]["depth"]
    target.unlink()
    with pytest.raises(ManifestError) as missing:
        open_split(path, DEPTH)
    assert "scene_a__0__00000" in missing.value.message and str(target) in missing.value.message
    target.write_bytes(b"\x89PNG garbage")
    with pytest.raises(ManifestError, match="not a readable image"):
        open_split(path, DEPTH)
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(target)
    with pytest.raises(ManifestError, match="is not 2-D"):
        open_split(path, DEPTH)


def test_a_corrupt_image_passes_the_open_checks_and_fails_at_decode_naming_sample_and_file(tiny):
    root, samples = tiny
    path = _write_manifest(root, samples)
    target = root / samples[2]["depth"]
    data = target.read_bytes()
    # Pixel data zeroed in the middle: header and IEND intact (the split opens), the pixels do not decode.
    middle = len(data) // 2
    target.write_bytes(data[:middle] + bytes(len(data) // 4) + data[middle + len(data) // 4 :])
    with pytest.raises(ManifestError, match="not a decodable image") as info:
        _decode_all(path)
    assert "scene_a__0__00000" in info.value.message and str(target) in info.value.message


def test_pose_files_decode_and_reject_bad_content(tmp_path):
    np.save(tmp_path / "p.npy", np.array([1.0, 2.0, 3.0, 0, 0, np.sin(0.25), np.cos(0.25)]))
    pose = decode_pose(tmp_path / "p.npy", "s")
    assert pose[:3, 3].tolist() == [1.0, 2.0, 3.0]
    assert np.allclose(pose[:3, :3], [[np.cos(0.5), -np.sin(0.5), 0], [np.sin(0.5), np.cos(0.5), 0], [0, 0, 1]])
    assert np.allclose(quaternion_xyzw_to_matrix(np.array([0, 0, 0, 2.0])), np.eye(3))
    np.save(tmp_path / "short.npy", np.zeros(5))
    with pytest.raises(ManifestError, match=r"shape \(5,\)"):
        decode_pose(tmp_path / "short.npy", "s")
    np.savez(tmp_path / "nopos.npz", orientation=np.array([0, 0, 0, 1.0]))
    with pytest.raises(ManifestError, match="lacks 'position'"):
        decode_pose(tmp_path / "nopos.npz", "s")
    np.savez(tmp_path / "zero.npz", position=np.zeros(3), orientation=np.zeros(4))
    with pytest.raises(ManifestError, match="zero/non-finite"):
        decode_pose(tmp_path / "zero.npz", "s")


def test_clip_extraction_finds_scenes_anywhere_and_falls_back_to_fields():
    assert clip_folder({"rgb": "extracted/scenes/s7/1/rgb/00042.png"}) == ("s7", "1")
    assert clip_folder({"rgb": "scenes/s7/2/rgb/0.png"}) == ("s7", "2")
    assert clip_folder({"rgb": "frames/0.png", "scene_id": "s9", "phase": "interaction"}) == ("s9", "1")
    assert clip_folder({"rgb": "frames/0.png"}) is None
    manifest = {
        "samples": [{"rgb": "scenes/b/0/rgb/1.png"}, {"rgb": "scenes/a/1/rgb/1.png"}, {"rgb": "scenes/b/0/rgb/2.png"}]
    }
    assert scene_phase_pairs(manifest) == [("a", "1"), ("b", "0")]
    assert scene_phase_pairs({"scenes": [{"scene": "z", "phase": 2}], "samples": manifest["samples"]}) == [("z", "2")]
    assert [phase_name(v) for v in (0, "1", "clean", 7, True, None)] == [
        "clutter",
        "interaction",
        "clean",
        None,
        None,
        None,
    ]


def test_explicit_relative_root_resolves_against_the_manifest_folder(tmp_path):
    manifest_path = tmp_path / "m" / "x.json"
    assert dataset_root({"root": "../data"}, manifest_path) == (tmp_path / "data").resolve()
    assert dataset_root({"root": None}, manifest_path) == (tmp_path / "m").resolve()


def test_a_manifest_of_another_task_is_refused():
    from rpx_tasks.manifest import check_manifest

    manifest = {"task": "object_segmentation", "samples": []}
    with pytest.raises(ManifestError, match="not 'monocular_depth'") as info:
        check_manifest(
            manifest,
            source="m.json",
            known_tasks=["monocular_depth", "object_segmentation"],
            expected_task="monocular_depth",
        )
    assert "rpx bench object_segmentation" in info.value.hint
