"""relative_camera_pose: metric formulas, pose loading, numpy adapter, end-to-end CLI runs."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from rpx_tasks.contracts.pose import RelativePose
from rpx_tasks.errors import AdapterError, ConfigError, ManifestError, MetricError, ModelError
from rpx_tasks.manifest import manifest_relpath
from rpx_tasks.metrics.pose import pose_metrics
from rpx_tasks.model_selection import resolve_model
from rpx_tasks.models.numpy_function import wrap_numpy_function
from rpx_tasks.models.pose_baselines import identity_pose, image_motion_pose
from rpx_tasks.sample import Sample
from rpx_tasks.tasks import get_task
from rpx_tasks.tasks.relative_camera_pose import load_ground_truth
from tests.support.bench_cli import bench_all
from tests.support.run_folders import REPORT_FILES

SPEC = get_task("relative_camera_pose")


def rot_z(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])


def pose(rotation=None, translation=(0.0, 0.0, 0.0)) -> RelativePose:
    return RelativePose(np.eye(3) if rotation is None else np.asarray(rotation, float), np.asarray(translation, float))


# --------------------------------------------------------------------------- metrics


def test_perfect_prediction_has_zero_errors():
    gt = pose(rot_z(12.0), (0.1, -0.2, 0.3))
    metrics = pose_metrics(pose(rot_z(12.0), (0.1, -0.2, 0.3)), gt)
    assert metrics == pytest.approx(
        {
            "rotation_error_deg": 0.0,
            "translation_error_m": 0.0,
            "translation_angular_deg": 0.0,
            "pose_error_max_deg": 0.0,
        },
        abs=1e-5,
    )


def test_ninety_and_one_eighty_degree_rotations():
    assert pose_metrics(pose(), pose(rot_z(90.0), (1, 0, 0)))["rotation_error_deg"] == pytest.approx(90.0)
    # trace -1: (tr - 1) / 2 = -1 exactly at the clip edge
    assert pose_metrics(pose(), pose(np.diag([-1.0, -1.0, 1.0]), (1, 0, 0)))["rotation_error_deg"] == pytest.approx(
        180.0
    )
    # R_pred^T R_gt: a 30 degree prediction of a 100 degree truth is 70 degrees off
    assert pose_metrics(pose(rot_z(30.0)), pose(rot_z(100.0)))["rotation_error_deg"] == pytest.approx(70.0)


def test_non_orthonormal_rotation_is_clipped_not_an_error():
    metrics = pose_metrics(pose(np.eye(3) * 1.5, (1, 0, 0)), pose(translation=(1, 0, 0)))
    assert metrics["rotation_error_deg"] == 0.0  # (4.5 - 1) / 2 = 1.75 clipped to 1


def test_quaternion_xyzw_equals_the_matrix():
    truth = pose(rot_z(30.0), (0, 0, 1))
    half = math.radians(15.0)
    xyzw = [0.0, 0.0, math.sin(half), math.cos(half)]
    as_matrix = pose_metrics(pose(rot_z(30.0), (0, 0, 1)), truth)
    as_quaternion = pose_metrics(RelativePose(np.array(xyzw), np.array([0.0, 0, 1])), truth)
    assert as_quaternion == pytest.approx(as_matrix, abs=1e-6)
    assert as_quaternion["rotation_error_deg"] == pytest.approx(0.0, abs=1e-5)
    # An unnormalised quaternion is normalised first.
    scaled = pose_metrics(RelativePose(np.array(xyzw) * 3, np.array([0.0, 0, 1])), truth)
    assert scaled["rotation_error_deg"] == pytest.approx(0.0, abs=1e-5)
    # The same numbers read as w, x, y, z would be a different rotation: the order is xyzw only.
    wxyz = [math.cos(half), 0.0, 0.0, math.sin(half)]
    assert pose_metrics(RelativePose(np.array(wxyz), np.array([0.0, 0, 1])), truth)["rotation_error_deg"] > 100


def test_validated_quaternion_prediction_scores_like_the_matrix():
    sample = Sample(id="s", rgb=np.zeros((4, 4, 3), np.uint8), ground_truth=pose(rot_z(30.0)))
    half = math.radians(15.0)
    validated = SPEC.validate_prediction(
        {"rotation": [0, 0, math.sin(half), math.cos(half)], "translation": [0, 0, 0]}, sample
    )
    np.testing.assert_allclose(validated.rotation, rot_z(30.0), atol=1e-12)


def test_translation_errors_hand_computed():
    metrics = pose_metrics(pose(translation=(1.0, 0.0, 0.0)), pose(translation=(0.0, 1.0, 0.0)))
    assert metrics["translation_error_m"] == pytest.approx(math.sqrt(2.0))
    assert metrics["translation_angular_deg"] == pytest.approx(90.0)
    assert metrics["pose_error_max_deg"] == pytest.approx(90.0)
    opposite = pose_metrics(pose(translation=(0.0, 0.0, 2.0)), pose(translation=(0.0, 0.0, -1.0)))
    assert opposite["translation_error_m"] == pytest.approx(3.0) and opposite[
        "translation_angular_deg"
    ] == pytest.approx(180.0)
    # same direction, different length: no angle, only a distance
    scaled = pose_metrics(pose(translation=(0.0, 3.0, 4.0)), pose(translation=(0.0, 6.0, 8.0)))
    assert scaled["translation_error_m"] == pytest.approx(5.0) and scaled["translation_angular_deg"] == pytest.approx(
        0.0, abs=1e-5
    )


def test_near_zero_translation_angle_is_180():
    for predicted, true in (((0, 0, 0), (1, 0, 0)), ((1, 0, 0), (0, 0, 0)), ((1e-10, 0, 0), (1e-10, 0, 0))):
        metrics = pose_metrics(pose(rot_z(10.0), predicted), pose(translation=true))
        assert metrics["translation_angular_deg"] == 180.0
        assert metrics["pose_error_max_deg"] == 180.0
    # just above the 1e-9 threshold the angle is defined again
    assert pose_metrics(pose(translation=(2e-9, 0, 0)), pose(translation=(1, 0, 0)))[
        "translation_angular_deg"
    ] == pytest.approx(0.0)


def test_pose_error_max_takes_the_rotation_when_it_is_larger():
    metrics = pose_metrics(pose(rot_z(45.0), (1, 0, 0)), pose(translation=(1, 0.1, 0)))
    assert metrics["pose_error_max_deg"] == pytest.approx(45.0)
    assert metrics["translation_angular_deg"] == pytest.approx(math.degrees(math.atan(0.1)))


def test_metric_type_errors_name_the_expected_class():
    with pytest.raises(MetricError, match="RelativePose"):
        pose_metrics({"rotation": np.eye(3), "translation": np.zeros(3)}, pose())
    with pytest.raises(MetricError, match="RelativePose"):
        pose_metrics(pose(), np.eye(4))
    with pytest.raises(MetricError, match="quaternion"):
        pose_metrics(RelativePose(np.zeros(4), np.zeros(3)), pose())


def test_every_metric_is_an_error_lower_is_better():
    assert all(not SPEC.higher_is_better(name) for name in SPEC.metric_names)


# --------------------------------------------------------------------------- ground truth


def _write_npz(path, position, orientation_xyzw):
    np.savez(path, position=np.asarray(position, float), orientation=np.asarray(orientation_xyzw, float))
    return path.name


def test_identity_rotation_and_one_metre_x(tmp_path, resolve):
    entry = {
        "id": "p",
        "pose_a": _write_npz(tmp_path / "a.npz", [0, 0, 0], [0, 0, 0, 1]),
        "pose_b": _write_npz(tmp_path / "b.npz", [1, 0, 0], [0, 0, 0, 1]),
    }
    gt = load_ground_truth(entry, resolve)
    np.testing.assert_allclose(gt.rotation, np.eye(3))
    np.testing.assert_allclose(gt.translation, [1, 0, 0])
    assert gt.rotation.dtype == np.float64 and gt.translation.dtype == np.float64


def test_relative_pose_is_inv_pa_times_pb_in_opencv_axes(tmp_path, resolve):
    # A: turned 90 degrees about the vertical (T265 Y up) at (1, 2, 3); B: 1 m to A's camera right.
    s = math.sqrt(0.5)
    entry = {"id": "p", "pose_a": _write_npz(tmp_path / "a.npz", [1, 2, 3], [0, s, 0, s])}
    np.save(tmp_path / "b.npy", np.array([1, 2, 2, 0, s, 0, s], float))  # A's +X is world -Z
    entry["pose_b"] = "b.npy"
    gt = load_ground_truth(entry, resolve)
    np.testing.assert_allclose(gt.translation, [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(gt.rotation, np.eye(3), atol=1e-12)
    # B 1 m above A (world Y up): in OpenCV axes that is -1 m along y (y points down)
    entry["pose_b"] = _write_npz(tmp_path / "up.npz", [1, 3, 3], [0, s, 0, s])
    np.testing.assert_allclose(load_ground_truth(entry, resolve).translation, [0, -1, 0], atol=1e-12)
    # B additionally rolled +90 degrees about its T265 Z (backward) axis: -90 degrees about OpenCV z (forward)
    roll = [0, 0, math.sin(math.pi / 4), math.cos(math.pi / 4)]
    entry["pose_b"] = _write_npz(tmp_path / "c.npz", [1, 2, 3], _quat_mul([0, s, 0, s], roll))
    gt = load_ground_truth(entry, resolve)
    np.testing.assert_allclose(gt.rotation, rot_z(-90.0), atol=1e-12)
    np.testing.assert_allclose(gt.translation, [0, 0, 0], atol=1e-12)


def _t265_pose_after(pose_a_t265: np.ndarray, rotation_cv: np.ndarray, translation_cv) -> np.ndarray:
    """Camera->world T265 pose of a camera that moved by (rotation_cv, translation_cv), given in
    camera A's OpenCV axes, written out axis by axis: OpenCV (right, down, forward) is T265
    (right, -up, -backward), so a vector v_cv is (v_x, -v_y, -v_z) in A's T265 axes."""
    cv_in_t265 = np.array([[1.0, 0, 0], [0, -1.0, 0], [0, 0, -1.0]])  # rows: T265 x, y, z of an OpenCV vector
    right, down, forward = (cv_in_t265 @ rotation_cv[:, k] for k in range(3))  # B's axes in A's T265 axes
    b_in_a = np.eye(4)
    b_in_a[:3, :3] = np.stack([right, -down, -forward], axis=1)  # B's T265 axes: right, up, backward
    b_in_a[:3, 3] = cv_in_t265 @ np.asarray(translation_cv, float)
    return pose_a_t265 @ b_in_a


def test_ground_truth_is_the_camera_motion_in_opencv_axes_and_a_perfect_prediction_scores_zero(tmp_path, resolve):
    from scipy.spatial.transform import Rotation

    # Known motion in camera A's OpenCV axes: turn 10 degrees right (yaw about y), tilt 4 degrees up
    # (pitch about x), roll 6 degrees (about z); move 0.1 m right, 0.05 m up, 0.5 m forward.
    motion = Rotation.from_euler("yxz", [10.0, 4.0, 6.0], degrees=True).as_matrix()
    shift = np.array([0.1, -0.05, 0.5])
    pose_a = np.eye(4)
    pose_a[:3, :3] = Rotation.from_euler("xyz", [20.0, -35.0, 5.0], degrees=True).as_matrix()
    pose_a[:3, 3] = [0.4, 1.2, -2.0]
    pose_b = _t265_pose_after(pose_a, motion, shift)
    entry = {"id": "known-motion"}
    for key, matrix in (("pose_a", pose_a), ("pose_b", pose_b)):
        entry[key] = _write_npz(tmp_path / f"{key}.npz", matrix[:3, 3], Rotation.from_matrix(matrix[:3, :3]).as_quat())
    gt = load_ground_truth(entry, resolve)
    np.testing.assert_allclose(gt.rotation, motion, atol=1e-12)
    np.testing.assert_allclose(gt.translation, shift, atol=1e-12)
    sample = Sample(id="known-motion", rgb=np.zeros((4, 4, 3), np.uint8), ground_truth=gt)
    as_matrix = SPEC.validate_prediction({"rotation": motion, "translation": shift}, sample)
    as_quaternion = SPEC.validate_prediction((Rotation.from_matrix(motion).as_quat(), shift), sample)
    for prediction in (as_matrix, as_quaternion):
        metrics = SPEC.compute_metrics(prediction, gt)
        assert set(metrics) == set(SPEC.metric_names)
        assert metrics == pytest.approx(dict.fromkeys(SPEC.metric_names, 0.0), abs=1e-5)
    # The same motion read in the stored T265 axes would be several degrees and > 100 degrees off.
    flip = np.diag([1.0, -1.0, -1.0])
    t265 = SPEC.compute_metrics(RelativePose(flip @ motion @ flip, flip @ shift), gt)
    assert t265["rotation_error_deg"] > 5 and t265["translation_angular_deg"] > 100


def _quat_mul(q1, q2):
    x1, y1, z1, w1 = q1
    x2, y2, z2, w2 = q2
    return [
        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
        w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
    ]


def test_missing_pose_file_names_sample_and_file(tmp_path, resolve):
    entry = {"id": "pair-7", "pose_a": _write_npz(tmp_path / "a.npz", [0, 0, 0], [0, 0, 0, 1]), "pose_b": "nope.npz"}
    with pytest.raises(ManifestError) as info:
        load_ground_truth(entry, resolve)
    assert "pair-7" in str(info.value) and "nope.npz" in str(info.value) and "hint" in str(info.value)
    assert info.value.details["key"] == "pose_b"


@pytest.mark.parametrize(
    "writer, words",
    [
        (lambda p: np.savez(p / "bad.npz", position=np.zeros(3)), "orientation"),
        (lambda p: np.savez(p / "bad.npz", position=np.zeros(2), orientation=[0, 0, 0, 1.0]), "shape"),
        (lambda p: np.savez(p / "bad.npz", position=np.zeros(3), orientation=np.zeros(4)), "quaternion"),
        (lambda p: (p / "bad.npz").write_bytes(b"not a zip"), "cannot be read"),
    ],
)
def test_malformed_pose_files_are_manifest_errors(tmp_path, resolve, writer, words):
    writer(tmp_path)
    entry = {"id": "pair-8", "pose_a": "bad.npz", "pose_b": _write_npz(tmp_path / "b.npz", [0, 0, 0], [0, 0, 0, 1])}
    with pytest.raises(ManifestError) as info:
        load_ground_truth(entry, resolve)
    assert "pair-8" in str(info.value) and "bad.npz" in str(info.value) and words in str(info.value)


def test_npy_pose_of_the_wrong_length_and_non_path_values(tmp_path, resolve):
    np.save(tmp_path / "six.npy", np.zeros(6))
    entry = {"id": "pair-9", "pose_a": "six.npy", "pose_b": "six.npy"}
    with pytest.raises(ManifestError, match=r"six\.npy.*\(7,\)"):
        load_ground_truth(entry, resolve)
    with pytest.raises(ManifestError, match="pose_a.*path"):
        load_ground_truth({"id": "pair-9", "pose_a": [0, 0, 0, 0, 0, 0, 1], "pose_b": "six.npy"}, resolve)


def test_manifest_without_pose_b_fails_when_opened(tmp_path):
    from rpx_tasks.dataset import open_split

    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "a.png")
    manifest = {
        "task": "relative_camera_pose",
        "root": None,
        "samples": [{"id": "x", "rgb": "a.png", "pose_a": "a.npz"}],
    }
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="pose_b"):
        open_split(tmp_path / "m.json", SPEC)


# --------------------------------------------------------------------------- numpy adapter


def _pair_sample(with_b: bool = True) -> Sample:
    rgb = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    return Sample(id="pair-1", rgb=rgb, ground_truth=pose(), metadata={"rgb_b": rgb.copy()} if with_b else {})


def test_numpy_function_gets_both_frames_and_outputs_become_float64():
    seen = {}

    def fn(rgb_a, rgb_b):
        seen["shapes"] = (rgb_a.shape, rgb_b.shape)
        return (np.eye(3, dtype=np.float32), [0.5, 0, 0])

    model = wrap_numpy_function(SPEC, fn, "tuple_pose")
    (prediction,) = model.predict([_pair_sample()])
    assert seen["shapes"] == ((24, 32, 3), (24, 32, 3))
    assert isinstance(prediction, RelativePose)
    assert prediction.rotation.dtype == np.float64 and prediction.translation.dtype == np.float64
    assert isinstance(SPEC.validate_prediction(prediction, _pair_sample()), RelativePose)
    dict_model = wrap_numpy_function(SPEC, lambda a, b: {"rotation": [0, 0, 0, 1], "translation": [[1], [2], [3]]}, "d")
    (prediction,) = dict_model.predict([_pair_sample()])
    np.testing.assert_allclose(prediction.rotation, np.eye(3))
    np.testing.assert_allclose(prediction.translation, [1, 2, 3])


def test_missing_second_frame_is_an_adapter_error():
    model = wrap_numpy_function(SPEC, identity_pose, "identity")
    with pytest.raises(AdapterError, match="requires a second RGB frame") as info:
        model.predict([_pair_sample(with_b=False)])
    assert "pair-1" in str(info.value) and "rgb_b" in info.value.hint


@pytest.mark.parametrize(
    "output, words",
    [
        ({"rotation": np.eye(3)}, "'translation'"),
        ({"translation": np.zeros(3)}, "'rotation'"),
        ({"rot": np.eye(3), "trans": np.zeros(3)}, "'rotation', 'translation'"),
        ((np.eye(3), np.zeros(3), 1.0), "length 3"),
        ("pose", "str"),
        ((np.eye(2), np.zeros(3)), "(2, 2)"),
        ((np.zeros(5), np.zeros(3)), "(5,)"),
        ((np.eye(3), np.zeros(4)), "'translation' must hold 3 numbers"),
        ((np.zeros(4), np.zeros(3)), "quaternion"),
        ((np.eye(3), [np.nan, 0, 0]), "NaN"),
        ((np.eye(3), ["a", "b", "c"]), "'translation'"),
    ],
)
def test_adapter_errors_say_what_is_wrong(output, words):
    model = wrap_numpy_function(SPEC, lambda a, b: output, "bad")
    with pytest.raises(AdapterError) as info:
        model.predict([_pair_sample()])
    assert words in str(info.value) and "pair-1" in str(info.value) and "rotation" in info.value.hint


def test_validation_errors_are_model_errors_and_dicts_are_accepted():
    sample = _pair_sample()
    with pytest.raises(ModelError, match="relative_camera_pose") as info:
        SPEC.validate_prediction(np.eye(4), sample)
    assert not isinstance(info.value, AdapterError)
    with pytest.raises(ModelError, match="'translation'"):
        SPEC.validate_prediction({"rotation": np.eye(3)}, sample)
    validated = SPEC.validate_prediction({"rotation": np.eye(3), "translation": (1, 2, 3)}, sample)
    assert isinstance(validated, RelativePose) and validated.translation.tolist() == [1.0, 2.0, 3.0]


def test_hf_checkpoint_is_a_config_error_with_the_numpy_signature():
    with pytest.raises(ConfigError) as info:
        resolve_model(SPEC, hf_checkpoint="some/pose-model")
    assert "no --hf-checkpoint fast path" in str(info.value)
    assert "fn(rgb_a" in info.value.hint and "rotation" in info.value.hint and "translation" in info.value.hint


# --------------------------------------------------------------------------- end to end


def _pose_from_file(path):
    """Camera->world from a stored pose, written independently of the package (Hamilton xyzw)."""
    with np.load(path) as data:
        position, (x, y, z, w) = data["position"], data["orientation"] / np.linalg.norm(data["orientation"])
    matrix = np.eye(4)
    matrix[:3, :3] = [
        [w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z],
    ]
    matrix[:3, 3] = position
    return matrix


def test_cli_run_on_sample_data_matches_the_formulas(sample_dataset, tmp_path, capsys):
    out_dir = tmp_path / "out"
    samples, out = bench_all("relative_camera_pose", ["--model", "image_motion_pose"], sample_dataset, out_dir, capsys)
    assert "rotation_error_deg" in out and "Weighted Phase Score" in out
    assert sorted(p.name for p in out_dir.iterdir()) == REPORT_FILES
    rows = {row["id"]: row for row in pq.read_table(out_dir / "per_sample_metrics.parquet").to_pylist()}
    assert len(rows) == len(samples) > 0
    assert set(SPEC.metric_names) <= set(next(iter(rows.values())))
    for entry in samples:
        assert entry["id"].count("__") == 3 and {"pose_a", "pose_b", "rgb_b"} <= set(entry)
        flip = np.diag([1.0, -1.0, -1.0, 1.0])  # T265 (x right, y up, z back) <-> OpenCV (x right, y down, z forward)
        pose_a, pose_b = (flip @ _pose_from_file(sample_dataset / entry[key]) @ flip for key in ("pose_a", "pose_b"))
        rel = np.linalg.inv(pose_a) @ pose_b
        rgb_a = np.asarray(Image.open(sample_dataset / entry["rgb"]).convert("RGB"))
        rgb_b = np.asarray(Image.open(sample_dataset / entry["rgb_b"]).convert("RGB"))
        predicted = image_motion_pose(rgb_a, rgb_b)
        cosine = (np.trace(predicted["rotation"].T @ rel[:3, :3]) - 1) / 2
        row = rows[entry["id"]]
        assert row["rotation_error_deg"] == pytest.approx(math.degrees(math.acos(np.clip(cosine, -1, 1))), abs=1e-5)
        assert row["translation_error_m"] == pytest.approx(np.linalg.norm(rel[:3, 3]), abs=1e-5)
        assert row["translation_angular_deg"] == 180.0 and row["pose_error_max_deg"] == 180.0
    result = json.loads((out_dir / "result.json").read_text())
    assert result["readiness"]["primary_metric"] == "rotation_error_deg"
    assert result["aggregated"]["rotation_error_deg"]["higher_is_better"] is False
    wps = result["readiness"]["wps"]
    assert wps["s_overall"] is not None and wps["direction"] == "lower_is_better"
    assert result["readiness"]["str"] is not None
    assert result["readiness"]["ts"] == {"score": None, "pairs": 0}  # no temporal hook for pair tasks
    assert "lower is better" in (out_dir / "summary.md").read_text()


def test_image_motion_baseline_beats_standing_still(sample_dataset, tmp_path, capsys):
    bench_all("relative_camera_pose", ["--model", "identity_pose"], sample_dataset, tmp_path / "still", capsys)
    motion_model = "rpx_tasks.models.pose_baselines:image_motion_pose"
    bench_all("relative_camera_pose", ["--model", motion_model], sample_dataset, tmp_path / "motion", capsys)
    still = json.loads((tmp_path / "still" / "result.json").read_text())["aggregated"]["rotation_error_deg"]["mean"]
    motion = json.loads((tmp_path / "motion" / "result.json").read_text())["aggregated"]["rotation_error_deg"]["mean"]
    assert still > 0.5 and motion < still / 3


def _rotated_view(image: np.ndarray, rotation_cv: np.ndarray) -> np.ndarray:
    """What a camera rotated by ``rotation_cv`` (OpenCV axes) sees of a far plane imaged as ``image``:
    pixel p_b shows the point at p_a ~ K R K^-1 p_b (bilinear, edges clamped)."""
    from rpx_tasks.constants import scaled_intrinsics

    height, width = image.shape[:2]
    fx, fy, cx, cy = scaled_intrinsics(width, height)
    k = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
    ys, xs = np.mgrid[0:height, 0:width]
    rays = k @ rotation_cv @ np.linalg.inv(k) @ np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
    x = np.clip(rays[0] / rays[2], 0, width - 1.001)
    y = np.clip(rays[1] / rays[2], 0, height - 1.001)
    x0, y0 = x.astype(int), y.astype(int)
    wx, wy = (x - x0)[:, None], (y - y0)[:, None]
    top = image[y0, x0] * (1 - wx) + image[y0, x0 + 1] * wx
    bottom = image[y0 + 1, x0] * (1 - wx) + image[y0 + 1, x0 + 1] * wx
    return (top * (1 - wy) + bottom * wy).reshape(image.shape).round().astype(np.uint8)


@pytest.mark.parametrize(
    "angles",
    [{"z": 3.0}, {"z": -2.0}, {"y": 2.0}, {"x": 1.5}, {"y": -1.5, "x": -1.0, "z": 2.0}],
    ids=["roll", "roll_back", "yaw_right", "pitch_up", "all_three"],
)
def test_image_motion_baseline_answers_in_opencv_axes(angles):
    from scipy.spatial.transform import Rotation

    coarse = np.random.default_rng(3).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    texture = np.asarray(Image.fromarray(coarse).resize((320, 240), Image.BICUBIC), np.float64)
    truth = Rotation.from_euler("".join(angles), list(angles.values()), degrees=True).as_matrix()
    predicted = image_motion_pose(texture.astype(np.uint8), _rotated_view(texture, truth))["rotation"]
    metrics = pose_metrics(pose(predicted), pose(truth))
    assert metrics["rotation_error_deg"] < 0.3  # a wrong sign on any axis would be off by twice its angle


def test_ls_and_the_signature_state_the_prediction_axes(capsys):
    from rpx_tasks.cli import main

    assert "OpenCV axes (x right, y down, z forward)" in SPEC.numpy_signature
    assert "metres" in SPEC.numpy_signature and "x, y, z, w" in SPEC.numpy_signature
    assert main(["ls"]) == 0
    lines = capsys.readouterr().out.splitlines()
    index = next(i for i, line in enumerate(lines) if line.strip().startswith("relative_camera_pose"))
    assert "frame B's camera in frame A's camera axes" in lines[index + 1] and "y down" in lines[index + 1]


def test_sample_pairs_use_the_later_frame_of_the_same_clip(sample_dataset):
    samples = json.loads((sample_dataset / manifest_relpath("relative_camera_pose", "all")).read_text())["samples"]
    for entry in samples:
        clip_a = entry["pose_a"].rsplit("/", 2)[0]
        assert entry["pose_b"].rsplit("/", 2)[0] == clip_a and entry["rgb_b"].startswith(clip_a)
        assert entry["frame_idx_b"] > entry["frame_idx"]


def test_prediction_objects_with_the_reference_field_names_are_accepted():
    from types import SimpleNamespace

    upstream_style = SimpleNamespace(rotation=[0, 0, 0, 1], translation=np.array([1.0, 0, 0]))
    validated = SPEC.validate_prediction(upstream_style, _pair_sample())
    assert isinstance(validated, RelativePose) and np.allclose(validated.rotation, np.eye(3))
