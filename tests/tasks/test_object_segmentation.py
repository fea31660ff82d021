"""object_segmentation: mIoU, segmentation TS, SGC, loader, adapter and end-to-end CLI runs (the HF fast path
is in test_object_segmentation_hf.py).

Longer than the 400-line guide on purpose: the metric, baseline and CLI tests share the plain reference
formulas defined here (naive_miou, and naive_sgc next to the SGC run), and the sections follow the task's
pipeline, so one module keeps each formula next to every use.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from rpx_tasks.contracts.segmentation import SegmentationGroundTruth
from rpx_tasks.dataset import open_split
from rpx_tasks.errors import AdapterError, ManifestError, MetricError, ModelError
from rpx_tasks.manifest import manifest_relpath
from rpx_tasks.metrics.boundaries import boundary_precision_recall, depth_edges, mask_boundary
from rpx_tasks.metrics.segmentation import class_ious, label_pair_score, mean_iou
from rpx_tasks.metrics.segmentation import segmentation_metrics as compute_metrics
from rpx_tasks.models.numpy_function import wrap_numpy_function
from rpx_tasks.models.segmentation_baselines import background_only, colour_segmentation
from rpx_tasks.readiness import coherence_accumulator, temporal_accumulator
from rpx_tasks.readiness.coherence import GeometricCoherence
from rpx_tasks.readiness.rotation import rotate_labels_about_centre
from rpx_tasks.readiness.temporal_stability import SegmentationTemporalStability
from rpx_tasks.sample import Sample
from rpx_tasks.tasks import get_task
from rpx_tasks.tasks.object_segmentation import validate_prediction
from tests.support.bench_cli import bench
from tests.support.run_folders import REPORT_FILES

SPEC = get_task("object_segmentation")


def gt(mask, depth=None) -> SegmentationGroundTruth:
    return SegmentationGroundTruth(mask=np.asarray(mask, np.int32), depth_m=depth)


def miou(pred, mask) -> float:
    return compute_metrics(np.asarray(pred, np.int32), gt(mask))["miou"]


def naive_miou(pred: np.ndarray, mask: np.ndarray) -> float:
    """§1.4 written out class by class."""
    classes = [c for c in np.unique(mask) if c >= 0]
    if not classes:
        return 1.0
    ious = []
    for c in classes:
        union = np.sum((pred == c) | (mask == c))
        ious.append(np.sum((pred == c) & (mask == c)) / union if union else 1.0)
    return float(np.mean(ious))


# ---------------------------------------------------------------- mIoU


def test_miou_is_higher_is_better_and_the_spec_builds_its_ts_and_sgc_accumulators():
    assert SPEC.higher_is_better("miou") is True
    assert isinstance(temporal_accumulator(SPEC), SegmentationTemporalStability)
    assert isinstance(coherence_accumulator(SPEC), GeometricCoherence)


def test_miou_perfect_and_empty_ground_truth():
    mask = np.array([[0, 0, 1], [2, 2, 1]])
    assert miou(mask, mask) == 1.0
    assert miou(np.zeros((2, 3)), np.full((2, 3), -1)) == 1.0  # no class >= 0 in the GT
    assert miou(np.zeros((0, 0)), np.zeros((0, 0))) == 1.0


def test_miou_partial_overlap_by_hand():
    # class 0: |P=0 and G=0| = 1, union 2 -> 1/2; class 1: 2 / 3
    assert miou([[0, 1, 1, 1]], [[0, 0, 1, 1]]) == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_predicted_classes_absent_from_the_ground_truth_are_ignored():
    # class 5 is no class; it only costs class 0 one pixel: 3 / 4
    assert miou([[0, 5], [0, 0]], [[0, 0], [0, 0]]) == pytest.approx(0.75)


def test_background_counts_as_a_class_and_minus_one_is_ignored():
    assert miou([[1, 1]], [[0, 1]]) == pytest.approx((0 + 1 / 2) / 2)
    assert miou([[0, 0]], [[0, 1]]) == pytest.approx((1 / 2 + 0) / 2)
    # -1 is not a class, but a prediction of 1 on that pixel is still in class 1's union
    assert miou([[1, 1]], [[-1, 1]]) == pytest.approx(0.5)
    assert miou([[7, 1]], [[-1, 1]]) == 1.0


@pytest.mark.parametrize("labels", [(0, 1, 2, 3, -1), (0, 70_000, 2**30, 5, -1), (-(2**31), 0, 2**31 - 1, 9, 10)])
def test_miou_matches_the_formula_on_random_maps_with_any_label_values(labels):
    rng = np.random.default_rng(3)
    values = np.array(labels, np.int64).astype(np.int32)
    mask = values[rng.integers(0, len(values), (37, 41))]
    pred = np.where(rng.random((37, 41)) < 0.7, mask, values[rng.integers(0, len(values), (37, 41))])
    assert miou(pred, mask) == pytest.approx(naive_miou(pred, mask), abs=1e-12)


def test_class_ious_union_zero_is_one():
    np.testing.assert_allclose(
        class_ious(np.zeros((2, 2), np.int32), np.zeros((2, 2), np.int32), np.array([0, 4])), [1.0, 1.0]
    )


def test_metric_errors_name_the_problem():
    with pytest.raises(MetricError, match="SegmentationGroundTruth"):
        compute_metrics(np.zeros((2, 2), np.int32), np.zeros((2, 2), np.int32))
    with pytest.raises(MetricError, match="differ in shape"):
        compute_metrics(np.zeros((2, 3), np.int32), gt(np.zeros((2, 2))))
    with pytest.raises(MetricError, match="integers"):
        mean_iou(np.zeros((2, 2), np.float32), np.zeros((2, 2), np.int32))


# ---------------------------------------------------------------- prediction validation and numpy adapter


def sample(h: int = 4, w: int = 6, *, scene="scene_a", phase="clutter", idx=0, pose=None, ground_truth=None) -> Sample:
    return Sample(
        id=f"{scene}-{phase}-{idx}",
        rgb=np.zeros((h, w, 3), np.uint8),
        ground_truth=ground_truth,
        scene=scene,
        phase=phase,
        frame_idx=idx,
        camera_pose=pose,
    )


def test_validation_rejects_wrong_type_dims_shape_and_dtype_naming_the_sample():
    s = sample()
    assert validate_prediction(np.zeros((4, 6), np.int64), s).dtype == np.int64
    assert validate_prediction(np.zeros((4, 6), bool), s).dtype == np.int32
    cases = [
        ([[0]], "numpy array"),
        (np.zeros((4, 6, 1), np.int32), "2 dims"),
        (np.zeros((6, 4), np.int32), "differs from the frame"),
        (np.zeros((4, 6), np.float32), "integer"),
    ]
    for bad, words in cases:
        with pytest.raises(ModelError, match=words) as info:
            validate_prediction(bad, s)
        assert s.id in str(info.value) and info.value.hint


def test_numpy_adapter_casts_and_resizes_nearest():
    s = sample(4, 6)
    half = np.array([[1, 2, 3], [4, 5, 6]], np.int64)
    model = wrap_numpy_function(SPEC, lambda rgb: half, "half")
    (out,) = model.predict([s])
    assert out.dtype == np.int32 and out.shape == (4, 6)
    np.testing.assert_array_equal(out, np.repeat(np.repeat(half, 2, axis=0), 2, axis=1))
    (from_bool,) = wrap_numpy_function(SPEC, lambda rgb: np.ones((4, 6), bool), "b").predict([s])
    assert from_bool.dtype == np.int32 and from_bool.sum() == 24
    (from_floats,) = wrap_numpy_function(SPEC, lambda rgb: [[1.0] * 6] * 4, "f").predict([s])
    assert from_floats.dtype == np.int32 and np.all(from_floats == 1)


@pytest.mark.parametrize(
    "output, words",
    [
        (np.zeros((4, 6, 3)), "2-D array"),
        (np.zeros(6), "2-D array"),
        (np.full((4, 6), 0.5), "whole numbers"),
        (np.full((4, 6), np.nan), "whole numbers"),
        ("mask", "2-D array"),
        (np.full((4, 6), 2**40), "int32"),
    ],
)
def test_numpy_adapter_errors_say_what_is_wrong(output, words):
    model = wrap_numpy_function(SPEC, lambda rgb: output, "bad")
    with pytest.raises(AdapterError, match=words) as info:
        model.predict([sample()])
    assert "scene_a-clutter-0" in str(info.value) and "fn(rgb" in info.value.hint


# ---------------------------------------------------------------- temporal stability


def z_pose(angle_deg: float) -> np.ndarray:
    a = math.radians(angle_deg)
    pose = np.eye(4)
    pose[:2, :2] = [[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]
    return pose


def blocks(h: int = 90, w: int = 120) -> np.ndarray:
    mask = np.zeros((h, w), np.int32)
    mask[10:40, 15:50] = 1
    mask[50:80, 60:110] = 7
    mask[20:35, 80:100] = 3
    return mask


def run_ts(frames) -> dict:
    ts = temporal_accumulator(SPEC)
    for s, mask in frames:
        ts.update(s, mask)
    return ts.result()


def test_label_pair_score_by_hand():
    # classes {0, 1}: class 0 -> 1 / 2, class 1 -> 1 / 3 (the -1 pixel is in no class)
    assert label_pair_score(np.array([[0, 1], [1, 1]]), np.array([[0, 0], [1, -1]])) == pytest.approx(
        (1 / 2 + 1 / 3) / 2
    )
    assert label_pair_score(np.full((2, 2), -1), np.full((2, 2), -1)) == 1.0
    assert label_pair_score(np.array([[2, 2]]), np.array([[3, 3]])) == 0.0  # union of labels: 2 and 3, both IoU 0


def test_ts_identical_single_and_clip_boundaries():
    mask = blocks()
    assert run_ts([(sample(idx=i), mask) for i in range(3)]) == {"score": 1.0, "pairs": 2}
    assert run_ts([(sample(), mask)]) == {"score": None, "pairs": 0}
    other = np.roll(mask, 30, axis=1)
    frames = [
        (sample(idx=0), mask),
        (sample(idx=1), mask),
        (sample(phase="interaction", idx=0), other),
        (sample(phase="interaction", idx=1), other),
        (sample(scene="scene_b", phase="interaction", idx=1), mask),
    ]
    assert run_ts(frames) == {"score": 1.0, "pairs": 2}


def test_ts_pair_value_is_the_mean_class_iou():
    a = np.zeros((4, 4), np.int32)
    a[:, 2:] = 1
    b = np.zeros((4, 4), np.int32)
    b[:, 1:] = 1  # class 0: 4 / 8, class 1: 8 / 12
    assert run_ts([(sample(4, 4, idx=0), a), (sample(4, 4, idx=1), b)])["score"] == pytest.approx((0.5 + 8 / 12) / 2)


def opencv_nearest_rotate(labels: np.ndarray, angle_deg: float) -> np.ndarray:
    """cv2.warpAffine(labels, getRotationMatrix2D((w/2, h/2), angle, 1), (w, h), INTER_NEAREST, borderValue=-1)
    written out as OpenCV computes it: source = inverse(M) @ (x, y, 1) in 1/1024-pixel fixed point
    (the x term and the y + offset terms rounded separately), then rounded half up."""
    h, w = labels.shape
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    cx, cy = w / 2, h / 2
    forward = np.array([[c, s, (1 - c) * cx - s * cy], [-s, c, s * cx + (1 - c) * cy], [0, 0, 1.0]])
    inv = np.linalg.inv(forward)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)

    def fixed(row):
        return (np.rint(row[0] * xs * 1024) + np.rint((row[1] * ys + row[2]) * 1024) + 512).astype(np.int64) >> 10

    sx, sy = fixed(inv[0]), fixed(inv[1])
    inside = (sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)
    out = np.full((h, w), -1, np.int32)
    out[inside] = labels[sy[inside], sx[inside]]
    return out


@pytest.mark.parametrize("angle", [2.5, -7.0, 33.0, 90.0, -150.0])
def test_nearest_label_rotation_matches_the_opencv_convention(angle):
    labels = np.random.default_rng(1).integers(0, 50, (45, 67)).astype(np.int32)
    got = rotate_labels_about_centre(labels, angle)
    want = opencv_nearest_rotate(labels, angle)
    assert got.dtype == np.int32 and got.shape == labels.shape
    assert np.mean(got == want) > 0.998  # positions within ~1e-4 px of a half pixel may round either way
    assert np.array_equal(rotate_labels_about_centre(labels, 0.0), labels)


def test_ts_warp_undoes_the_camera_roll():
    mask, theta = blocks(), 10.0
    turned = rotate_labels_about_centre(mask, -theta)
    turned[turned < 0] = 0  # the camera sees background in the corners
    with_poses = run_ts([(sample(idx=0, pose=z_pose(3.0)), mask), (sample(idx=1, pose=z_pose(3.0 + theta)), turned)])
    without = run_ts([(sample(idx=0), mask), (sample(idx=1), turned)])
    assert with_poses["score"] > 0.95 and without["score"] < with_poses["score"] - 0.1


def test_ts_rejects_non_integer_or_non_2d_masks():
    ts = temporal_accumulator(SPEC)
    with pytest.raises(MetricError, match="integers"):
        ts.update(sample(), np.zeros((4, 6), np.float32))
    with pytest.raises(MetricError, match="2 dims"):
        ts.update(sample(), np.zeros((4, 6, 2), np.int32))


# ---------------------------------------------------------------- SGC


def step_pair() -> tuple[np.ndarray, np.ndarray]:
    mask = np.zeros((10, 12), np.int32)
    mask[:, 6:] = 1
    depth = np.where(mask == 1, 2.0, 1.0).astype(np.float32)
    return mask, depth


def test_boundaries_by_hand():
    np.testing.assert_array_equal(mask_boundary(np.array([[0, 0, 1, 1]]), dilation=0), [[False, True, False, False]])
    # central differences: gx = [0, 0.5, 0.5, 0]; the first and last columns stay 0
    np.testing.assert_array_equal(
        depth_edges(np.array([[0.0, 0.0, 1.0, 1.0]]), dilation=0), [[False, True, True, False]]
    )
    np.testing.assert_array_equal(depth_edges(np.array([[0.0, 0.0, 0.15, 0.15]]), dilation=0), [[False] * 4])
    assert mask_boundary(np.array([[0, 0, 1, 1]]), dilation=1).tolist() == [[True, True, True, False]]


def test_sgc_perfectly_aligned_step_by_hand():
    mask, depth = step_pair()
    # mask edge: column 5, dilated to columns 3..7 (50 px); depth edges: columns 5, 6 -> 3..8 (60 px)
    precision, recall = boundary_precision_recall(mask, depth)
    assert precision == 1.0 and recall == pytest.approx(50 / 60)
    sgc = GeometricCoherence()
    sgc.update(sample(10, 12, ground_truth=gt(mask, depth)), mask)
    result = sgc.result()
    assert result["score"] == pytest.approx(2 * (50 / 60) / (1 + 50 / 60))
    assert (result["samples"], result["skipped_no_depth"]) == (1, 0)


def test_sgc_empty_flat_and_misaligned():
    assert GeometricCoherence().result() == {
        "score": 0.0,
        "precision": 0.0,
        "recall": 0.0,
        "samples": 0,
        "skipped_no_depth": 0,
    }
    flat = np.ones((10, 12), np.float32)
    assert boundary_precision_recall(np.zeros((10, 12), np.int32), flat) == (1.0, 1.0)  # no edges at all: 0/0 -> 1
    mask, depth = step_pair()
    assert boundary_precision_recall(mask, flat) == (0.0, 1.0)  # mask edges, no depth edge
    assert boundary_precision_recall(np.zeros_like(mask), depth) == (1.0, 0.0)
    with pytest.raises(MetricError, match="differs from depth shape"):
        boundary_precision_recall(mask, flat[:, :5])


def test_sgc_accumulator_means_over_samples_and_counts_those_without_depth():
    mask, depth = step_pair()
    sgc = coherence_accumulator(SPEC)
    sgc.update(sample(10, 12, idx=0, ground_truth=gt(mask, depth)), mask)  # p 1, r 5/6
    sgc.update(sample(10, 12, idx=1, ground_truth=gt(mask, np.ones((10, 12), np.float32))), mask)  # p 0, r 1
    sgc.update(sample(10, 12, idx=2, ground_truth=gt(mask)), mask)  # no depth
    result = sgc.result()
    p, r = 0.5, (50 / 60 + 1) / 2
    assert result["precision"] == pytest.approx(p) and result["recall"] == pytest.approx(r)
    assert result["score"] == pytest.approx(2 * p * r / (p + r))
    assert (result["samples"], result["skipped_no_depth"]) == (2, 1)


# ---------------------------------------------------------------- loader


def _png(path: Path, array: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path.name


@pytest.fixture()
def tiny_split(tmp_path) -> Path:
    """One 20x30 frame with instance 1 at rows 2-9 / cols 2-9 and instance 2 at rows 12-17 / cols 18-25."""
    clip = tmp_path / "scenes" / "scene_000" / "0"
    _png(clip / "rgb" / "00000.png", np.full((20, 30, 3), 128, np.uint8))
    mask = np.zeros((20, 30), np.uint16)
    mask[2:10, 2:10] = 1
    mask[12:18, 18:26] = 2
    _png(clip / "mask" / "00000.png", mask)
    _png(clip / "depth" / "00000.png", np.full((20, 30), 2000, np.uint16))
    return tmp_path


def _write_manifest(root: Path, **overrides) -> Path:
    entry = {
        "id": "scene_000__0__00000",
        "scene_id": "scene_000",
        "phase": 0,
        "frame_idx": 0,
        "difficulty": "hard",
        "rgb": "scenes/scene_000/0/rgb/00000.png",
        "mask": "scenes/scene_000/0/mask/00000.png",
        "depth": "scenes/scene_000/0/depth/00000.png",
    }
    entry.update(overrides)
    entry = {k: v for k, v in entry.items() if v is not None}
    path = root / manifest_relpath("object_segmentation", "hard")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"task": "object_segmentation", "split": "hard", "root": None, "samples": [entry]}))
    return path


def _decode(root: Path, **overrides) -> Sample:
    split = open_split(_write_manifest(root, **overrides), SPEC)
    return split.decode(split.entries[0])


def test_loader_reads_the_mask_and_lazily_the_depth(tiny_split):
    s = _decode(tiny_split)
    truth = s.ground_truth
    assert isinstance(truth, SegmentationGroundTruth) and truth.mask.dtype == np.int32 and truth.mask.shape == (20, 30)
    assert np.unique(truth.mask).tolist() == [0, 1, 2] and np.count_nonzero(truth.mask == 1) == 64
    assert truth.depth_m is None  # not decoded until SGC asks
    depth = truth.depth()
    assert depth.dtype == np.float32 and np.all(depth == 2.0)
    assert _decode(tiny_split, depth=None).ground_truth.depth() is None


def test_loader_errors_name_sample_and_file(tiny_split):
    clip = tiny_split / "scenes" / "scene_000" / "0"
    with pytest.raises(ManifestError) as info:
        _decode(tiny_split, mask="scenes/scene_000/0/mask/missing.png")
    assert "scene_000__0__00000" in str(info.value) and "missing.png" in str(info.value)
    _png(clip / "mask" / "rgb.png", np.zeros((20, 30, 3), np.uint8))
    with pytest.raises(ManifestError, match="not 2-D") as info:
        _decode(tiny_split, mask="scenes/scene_000/0/mask/rgb.png")
    assert "scene_000__0__00000" in str(info.value) and "rgb.png" in str(info.value)
    _png(clip / "mask" / "small.png", np.zeros((10, 30), np.uint16))
    with pytest.raises(ManifestError, match="the RGB frame 20x30") as info:
        _decode(tiny_split, mask="scenes/scene_000/0/mask/small.png")
    assert "small.png" in str(info.value)
    (clip / "mask" / "junk.png").write_bytes(b"not a png")
    with pytest.raises(ManifestError, match="junk.png"):
        _decode(tiny_split, mask="scenes/scene_000/0/mask/junk.png")


def test_depth_errors_surface_when_the_split_opens_and_when_sgc_reads_it(tiny_split, resolve):
    clip = tiny_split / "scenes" / "scene_000" / "0"
    _png(clip / "depth" / "rgb.png", np.zeros((20, 30, 3), np.uint8))
    with pytest.raises(ManifestError, match="not 2-D") as info:
        _decode(tiny_split, depth="scenes/scene_000/0/depth/rgb.png")
    assert "scene_000__0__00000" in str(info.value)
    entry = json.loads(_write_manifest(tiny_split, depth="scenes/scene_000/0/depth/rgb.png").read_text())["samples"][0]
    with pytest.raises(ManifestError, match="not 2-D"):
        SPEC.load_ground_truth(entry, resolve).depth()
    _png(clip / "depth" / "small.png", np.zeros((10, 30), np.uint16))
    with pytest.raises(ManifestError, match="the RGB frame 20x30"):
        _decode(tiny_split, depth="scenes/scene_000/0/depth/small.png")
    entry["depth"] = "scenes/scene_000/0/depth/small.png"
    with pytest.raises(ManifestError, match="has shape"):
        SPEC.load_ground_truth(entry, resolve).depth()
    # a depth file that was not downloaded means "no depth": SGC skips the sample
    assert _decode(tiny_split, depth="scenes/scene_000/0/depth/absent.png").ground_truth.depth() is None


def test_manifest_without_mask_key_is_rejected(tiny_split):
    with pytest.raises(ManifestError, match="'mask'"):
        open_split(_write_manifest(tiny_split, mask=None), SPEC)


# ---------------------------------------------------------------- sample data and baselines


def _samples(root: Path, split: str) -> list[dict]:
    return json.loads((root / manifest_relpath("object_segmentation", split)).read_text())["samples"]


def _rgb_and_mask(root: Path, entry: dict) -> tuple[np.ndarray, np.ndarray]:
    rgb = np.asarray(Image.open(root / entry["rgb"]).convert("RGB"))
    return rgb, np.asarray(Image.open(root / entry["mask"])).astype(np.int32)


def test_sample_manifest_has_masks_depth_and_poses(sample_dataset):
    samples = _samples(sample_dataset, "all")
    assert len(samples) == 72
    for entry in samples:
        assert set(entry) >= {"id", "rgb", "mask", "depth", "pose", "scene_id", "phase", "frame_idx", "difficulty"}
        assert entry["mask"] == entry["rgb"].replace("/rgb/", "/mask/")
    phases = {}
    for entry in samples[::4]:
        phases.setdefault(entry["phase"], []).append(_rgb_and_mask(sample_dataset, entry)[1].max())
    assert min(phases[0]) >= 3 and min(phases[1]) >= 1  # clutter has several objects, interaction the arm


def test_colour_baseline_beats_background_only_on_sample_data(sample_dataset):
    colour, background = [], []
    for entry in _samples(sample_dataset, "all"):
        rgb, mask = _rgb_and_mask(sample_dataset, entry)
        prediction = colour_segmentation(rgb)
        assert prediction.dtype == np.int32 and prediction.shape == mask.shape
        colour.append(naive_miou(prediction, mask))
        background.append(naive_miou(background_only(rgb), mask))
    assert np.mean(colour) > 0.6 and np.mean(colour) > np.mean(background) + 0.25  # measured 0.72 vs 0.32
    with pytest.raises(AdapterError, match=r"\(H, W, 3\)"):
        colour_segmentation(np.zeros((4, 4), np.uint8))


# ---------------------------------------------------------------- end to end


def test_cli_run_writes_the_four_files_with_reference_miou(sample_dataset, tmp_path, capsys):
    manifest = sample_dataset / manifest_relpath("object_segmentation", "all")
    out = tmp_path / "out"
    assert bench("object_segmentation", manifest, out, "--model", "colour_segmentation") == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == REPORT_FILES
    rows = pq.read_table(out / "per_sample_metrics.parquet").to_pylist()
    entries = {e["id"]: e for e in _samples(sample_dataset, "all")}
    assert len(rows) == len(entries) == 72 and "miou" in rows[0]
    for row in rows:
        rgb, mask = _rgb_and_mask(sample_dataset, entries[row["id"]])
        assert row["miou"] == pytest.approx(naive_miou(colour_segmentation(rgb), mask), abs=1e-5)
    result = json.loads((out / "result.json").read_text())
    assert result["task"] == "object_segmentation" and result["primary_metric"] == "miou"
    assert result["aggregated"]["miou"]["higher_is_better"] is True
    assert result["readiness"]["wps"]["direction"] == "higher_is_better"
    assert result["readiness"]["ts"]["pairs"] == 72 - 18 and 0 < result["readiness"]["ts"]["score"] <= 1
    assert result["readiness"]["sgc"] is None
    assert "miou" in (out / "summary.md").read_text()


def naive_sgc(pairs) -> dict:
    """§8.4 written out with explicit loops over the dilation and the pixels' neighbours."""

    def dilate(edge):
        for _ in range(2):
            grown = edge.copy()
            h, w = edge.shape
            for y in range(h):
                for x in range(w):
                    if edge[y, x]:
                        for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                            if 0 <= y + dy < h and 0 <= x + dx < w:
                                grown[y + dy, x + dx] = True
            edge = grown
        return edge

    ps, rs = [], []
    for mask, depth in pairs:
        m = np.zeros(mask.shape, bool)
        m[:-1] |= mask[:-1] != mask[1:]
        m[:, :-1] |= mask[:, :-1] != mask[:, 1:]
        gx, gy = np.zeros_like(depth), np.zeros_like(depth)
        gx[:, 1:-1] = (depth[:, 2:] - depth[:, :-2]) / 2
        gy[1:-1] = (depth[2:] - depth[:-2]) / 2
        m, d = dilate(m), dilate(np.hypot(gx, gy) > 0.1)
        tp, fp, fn = np.sum(m & d), np.sum(m & ~d), np.sum(~m & d)
        ps.append(tp / (tp + fp) if tp + fp else 1.0)
        rs.append(tp / (tp + fn) if tp + fn else 1.0)
    p, r = np.mean(ps), np.mean(rs)
    return {"precision": p, "recall": r, "score": 2 * p * r / (p + r) if p + r else 0.0}


def test_cli_run_with_sgc_scores_geometric_coherence(sample_dataset, tmp_path, capsys):
    manifest = sample_dataset / manifest_relpath("object_segmentation", "hard")
    assert bench("object_segmentation", manifest, tmp_path / "sgc", "--model", "colour_segmentation", "--sgc") == 0, (
        capsys.readouterr().err
    )
    sgc = json.loads((tmp_path / "sgc" / "result.json").read_text())["readiness"]["sgc"]
    entries = _samples(sample_dataset, "hard")
    assert sgc["samples"] == len(entries) == 24 and sgc["skipped_no_depth"] == 0
    assert 0 < sgc["score"] < 1
    # the same formula on every sample of the run
    full = naive_sgc(
        [
            (
                colour_segmentation(_rgb_and_mask(sample_dataset, e)[0]),
                np.asarray(Image.open(sample_dataset / e["depth"])).astype(np.float32) / 1000,
            )
            for e in entries
        ]
    )
    for key in ("precision", "recall", "score"):
        assert sgc[key] == pytest.approx(full[key], abs=1e-9)


def test_sgc_skips_samples_without_depth(sample_dataset, tmp_path, capsys):
    manifest = json.loads((sample_dataset / manifest_relpath("object_segmentation", "hard")).read_text())
    for entry in manifest["samples"]:
        del entry["depth"]
    manifest["root"] = str(sample_dataset)
    path = tmp_path / "no_depth.json"
    path.write_text(json.dumps(manifest))
    assert bench("object_segmentation", path, tmp_path / "nodepth", "--model", "colour_segmentation", "--sgc") == 0, (
        capsys.readouterr().err
    )
    sgc = json.loads((tmp_path / "nodepth" / "result.json").read_text())["readiness"]["sgc"]
    assert sgc == {"score": 0.0, "precision": 0.0, "recall": 0.0, "samples": 0, "skipped_no_depth": 24}
