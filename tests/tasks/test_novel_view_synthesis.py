"""novel_view_synthesis: metric formulas, entry loading and checks, numpy adapter, baseline, CLI runs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from rpx_tasks.cli import main
from rpx_tasks.contracts.pose import t265_to_opencv
from rpx_tasks.contracts.view_synthesis import NovelView
from rpx_tasks.decoding import pose_matrix
from rpx_tasks.errors import AdapterError, ConfigError, ManifestError, MetricError, ModelError
from rpx_tasks.manifest import manifest_relpath
from rpx_tasks.metrics.view_synthesis import SSIM_C1, SSIM_C2, global_ssim, view_synthesis_metrics, windowed_ssim
from rpx_tasks.models.import_path import check_callable
from rpx_tasks.models.numpy_function import wrap_numpy_function
from rpx_tasks.models.view_synthesis_baselines import copy_source, reproject_source
from rpx_tasks.sample import Sample
from rpx_tasks.tasks import get_task
from rpx_tasks.tasks.novel_view_synthesis import check_entry, load_ground_truth

SPEC = get_task("novel_view_synthesis")
RNG_SEED = 7


def image(value, shape=(16, 16, 3)) -> np.ndarray:
    return np.full(shape, value, np.uint8)


def view(target: np.ndarray) -> NovelView:
    return NovelView(target_rgb=target, target_pose=np.eye(4))


# --------------------------------------------------------------------------- metrics


def test_identical_images_score_perfectly_and_psnr_is_100():
    rng = np.random.default_rng(RNG_SEED)
    frame = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    metrics = view_synthesis_metrics(frame.copy(), view(frame))
    assert metrics == {"psnr": 100.0, "mse": 0.0, "ssim": pytest.approx(1.0), "ssim_windowed": pytest.approx(1.0)}


def test_mse_and_psnr_hand_computed():
    # every value off by 3 in one channel of two: mse = 9 * 2 / 3 = 6 over all channels
    target = image(100)
    prediction = target.copy()
    prediction[..., :2] += 3
    metrics = view_synthesis_metrics(prediction, view(target))
    assert metrics["mse"] == pytest.approx(6.0)
    assert metrics["psnr"] == pytest.approx(10 * math.log10(255**2 / 6.0))


def test_global_ssim_at_the_smallest_denominator_and_hand_computed():
    # black vs black: no variance and zero means give the smallest denominator, C1 * C2 > 0: exactly 1
    assert global_ssim(image(0), image(0)) == 1.0
    # black vs white: (C1)(C2) / ((255^2 + C1)(C2))
    assert global_ssim(image(0), image(255)) == pytest.approx(SSIM_C1 / (255**2 + SSIM_C1))
    # a two-valued image against its mirror: means equal, covariance -var
    left = np.zeros((4, 4, 3), np.uint8)
    left[:, :2] = 200
    mu, var = 100.0, 100.0**2
    expected = (2 * mu * mu + SSIM_C1) * (-2 * var + SSIM_C2) / ((2 * mu * mu + SSIM_C1) * (2 * var + SSIM_C2))
    assert global_ssim(left, left[:, ::-1]) == pytest.approx(expected)


def test_windowed_ssim_of_constant_images_is_the_per_window_closed_form():
    # zero variances: the structure term is C2 / C2 = 1 and every window gives (2ab + C1) / (a^2 + b^2 + C1)
    a, b = 60.0, 90.0
    assert windowed_ssim(image(60, (13, 17, 3)), image(90, (13, 17, 3))) == pytest.approx(
        (2 * a * b + SSIM_C1) / (a * a + b * b + SSIM_C1), abs=1e-12
    )
    assert windowed_ssim(image(42, (11, 11, 3)), image(42, (11, 11, 3))) == pytest.approx(1.0, abs=1e-12)


def _loop_windowed_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """A second windowed SSIM: explicit loops over every full 11x11 Gaussian window of every channel."""
    offsets = np.arange(-5, 6)
    g = np.exp(-(offsets**2) / (2 * 1.5**2))
    weights = np.outer(g, g) / np.outer(g, g).sum()
    height, width, channels = x.shape
    means = []
    for c in range(channels):
        values = []
        for i in range(5, height - 5):
            for j in range(5, width - 5):
                px = x[i - 5 : i + 6, j - 5 : j + 6, c].astype(float)
                py = y[i - 5 : i + 6, j - 5 : j + 6, c].astype(float)
                mx, my = (weights * px).sum(), (weights * py).sum()
                vx = (weights * (px - mx) ** 2).sum()
                vy = (weights * (py - my) ** 2).sum()
                cxy = (weights * (px - mx) * (py - my)).sum()
                values.append(
                    (2 * mx * my + SSIM_C1) * (2 * cxy + SSIM_C2) / ((mx**2 + my**2 + SSIM_C1) * (vx + vy + SSIM_C2))
                )
        means.append(np.mean(values))
    return float(np.mean(means))


def test_windowed_ssim_matches_an_explicit_loop_over_windows():
    rng = np.random.default_rng(RNG_SEED)
    x = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    y = np.clip(x.astype(int) + rng.integers(-50, 51, x.shape), 0, 255).astype(np.uint8)
    assert windowed_ssim(x, y) == pytest.approx(_loop_windowed_ssim(x, y), abs=1e-10)


def test_windowed_ssim_is_undefined_below_the_window_size():
    assert windowed_ssim(image(1, (10, 30, 3)), image(1, (10, 30, 3))) is None
    assert view_synthesis_metrics(image(1, (10, 30, 3)), view(image(1, (10, 30, 3))))["ssim_windowed"] is None


def test_metric_type_and_shape_errors():
    with pytest.raises(MetricError, match="NovelView"):
        view_synthesis_metrics(image(0), image(0))
    with pytest.raises(MetricError, match="shape"):
        view_synthesis_metrics(image(0, (8, 8, 3)), view(image(0)))
    with pytest.raises(MetricError, match=r"\(H, W, 3\)"):
        view_synthesis_metrics(np.zeros((16, 16)), view(image(0)))


def test_psnr_is_primary_and_directions():
    assert SPEC.primary_metric == "psnr" and SPEC.higher_is_better("psnr")
    assert not SPEC.higher_is_better("mse") and SPEC.higher_is_better("ssim_windowed")


# --------------------------------------------------------------------------- manifest entries


def _write_pose(path, position, orientation=(0.0, 0.0, 0.0, 1.0)) -> str:
    np.savez(path, position=np.asarray(position, float), orientation=np.asarray(orientation, float))
    return path.name


def _write_rgb(path, value, size=(12, 16)) -> str:
    Image.fromarray(np.full((*size, 3), value, np.uint8)).save(path)
    return path.name


def _entry(tmp_path, **overrides) -> dict:
    entry = {
        "id": "s",
        "rgb": _write_rgb(tmp_path / "a.png", 10),
        "pose": _write_pose(tmp_path / "a.npz", (0, 0, 0)),
        "target_rgb": _write_rgb(tmp_path / "b.png", 20),
        "target_pose": _write_pose(tmp_path / "b.npz", (0.5, 0, 0)),
    }
    entry.update(overrides)
    return entry


def test_local_entry_with_a_pose_file_an_inline_matrix_or_camera_pose(tmp_path, resolve):
    from_file = load_ground_truth(_entry(tmp_path), resolve)
    assert from_file.target_rgb.shape == (12, 16, 3) and int(from_file.target_rgb[0, 0, 0]) == 20
    np.testing.assert_allclose(from_file.target_pose, pose_matrix(np.array([0.5, 0, 0]), np.array([0, 0, 0, 1.0])))
    assert from_file.source_depth is None
    inline = np.eye(4)
    inline[:3, 3] = (1, 2, 3)
    as_list = load_ground_truth(_entry(tmp_path, target_pose=inline.tolist()), resolve)
    np.testing.assert_array_equal(as_list.target_pose, inline)
    alias = _entry(tmp_path, camera_pose=inline.tolist())
    del alias["target_pose"]
    np.testing.assert_array_equal(load_ground_truth(alias, resolve).target_pose, inline)


def test_entry_checks_name_the_bad_field(tmp_path, resolve):
    check_entry(_entry(tmp_path), resolve, (12, 16))
    bad_inline = _entry(tmp_path, target_pose=[[1, 0], [0, 1]])
    with pytest.raises(ManifestError, match="'target_pose'.*4x4") as raised:
        check_entry(bad_inline, resolve, (12, 16))
    assert raised.value.details["sample"] == "s"
    with pytest.raises(ManifestError, match="target_pose.*not a finite"):
        check_entry(_entry(tmp_path, target_pose=np.full((4, 4), np.nan).tolist()), resolve, (12, 16))
    missing = _entry(tmp_path)
    del missing["target_pose"]
    with pytest.raises(ManifestError, match="target_pose.*missing"):
        check_entry(missing, resolve, (12, 16))
    with pytest.raises(ManifestError, match="target_rgb.*16x20"):
        check_entry(_entry(tmp_path, target_rgb=_write_rgb(tmp_path / "c.png", 1, (16, 20))), resolve, (12, 16))
    np.save(tmp_path / "bad.npy", np.zeros(5))
    with pytest.raises(ManifestError, match="target_pose"):
        check_entry(_entry(tmp_path, target_pose="bad.npy"), resolve, (12, 16))
    Image.fromarray(np.zeros((8, 8), np.uint16)).save(tmp_path / "d.png")
    with pytest.raises(ManifestError, match="depth"):
        check_entry(_entry(tmp_path, depth="d.png"), resolve, (12, 16))


# --------------------------------------------------------------------------- numpy adapter


def _sample(target_pose=np.eye(4), source_pose=np.eye(4), size=(12, 16)) -> Sample:
    rgb = np.full((*size, 3), 50, np.uint8)
    depth = np.full(size, 2.0, np.float32)
    truth = NovelView(target_rgb=np.zeros((*size, 3), np.uint8), target_pose=target_pose, source_depth=depth)
    return Sample(id="s", rgb=rgb, ground_truth=truth, camera_pose=source_pose)


def test_adapter_passes_both_poses_in_opencv_axes():
    source, target = pose_matrix(np.array([1.0, 2, 3]), np.array([0, 0, 0.6, 0.8])), np.eye(4)
    target[:3, 3] = (0, 1, 0)
    seen = {}

    def fn(rgb, source_pose, target_pose):
        seen.update(source=source_pose, target=target_pose)
        return rgb

    prediction = wrap_numpy_function(SPEC, fn, "f").predict([_sample(target, source)])[0]
    np.testing.assert_allclose(seen["source"], t265_to_opencv(source))
    np.testing.assert_allclose(seen["target"], t265_to_opencv(target))
    assert seen["target"][1, 3] == -1.0  # T265 y up is OpenCV y down
    assert prediction.dtype == np.uint8 and prediction.shape == (12, 16, 3)


def test_adapter_accepts_the_original_two_input_signature_and_passes_depth_by_name():
    seen = {}

    def original(rgb, target_pose):
        seen["target"] = target_pose
        return rgb

    def with_depth(rgb, source_pose, target_pose, source_depth=None):
        seen["depth"] = source_depth
        return rgb

    check_callable(original, task_spec=SPEC)
    check_callable(with_depth, task_spec=SPEC)
    wrap_numpy_function(SPEC, original, "o").predict([_sample()])
    np.testing.assert_allclose(seen["target"], np.eye(4))
    wrap_numpy_function(SPEC, with_depth, "d").predict([_sample()])
    assert seen["depth"].shape == (12, 16) and float(seen["depth"][0, 0]) == 2.0
    with pytest.raises(ConfigError, match="novel_view_synthesis"):
        check_callable(lambda rgb: rgb, task_spec=SPEC)


def test_adapter_clips_casts_and_resizes():
    model = wrap_numpy_function(SPEC, lambda rgb, s, t: np.full((6, 8, 3), 300.0), "big")
    out = model.predict([_sample()])[0]
    assert out.dtype == np.uint8 and out.shape == (12, 16, 3) and int(out.max()) == 255
    negative = wrap_numpy_function(SPEC, lambda rgb, s, t: np.full((12, 16, 3), -5), "neg").predict([_sample()])[0]
    assert int(negative.max()) == 0


def test_adapter_errors_name_the_sample():
    copy = wrap_numpy_function(SPEC, copy_source, "copy")
    with pytest.raises(AdapterError, match="target camera pose"):
        copy.predict([_sample(target_pose=None)])
    with pytest.raises(AdapterError, match="source pose"):
        copy.predict([_sample(source_pose=None)])
    for output, message in ((np.zeros((12, 16)), r"\(H, W, 3\)"), ("x", "str"), (np.full((12, 16, 3), np.nan), "NaN")):
        with pytest.raises(AdapterError, match=message):
            wrap_numpy_function(SPEC, lambda rgb, s, t, out=output: out, "bad").predict([_sample()])


def test_validate_prediction_wants_uint8_of_the_target_size():
    sample = _sample()
    assert SPEC.validate_prediction(np.zeros((12, 16, 3), np.uint8), sample).shape == (12, 16, 3)
    with pytest.raises(ModelError, match="target frame"):
        SPEC.validate_prediction(np.zeros((6, 8, 3), np.uint8), sample)
    with pytest.raises(ModelError, match="uint8"):
        SPEC.validate_prediction(np.zeros((12, 16, 3), np.float32), sample)
    with pytest.raises(ModelError, match="list"):
        SPEC.validate_prediction([], sample)


# --------------------------------------------------------------------------- baseline


def test_reprojection_is_exact_for_a_still_camera_and_the_identity_without_depth():
    rng = np.random.default_rng(RNG_SEED)
    rgb = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    depth = rng.uniform(0.5, 3.0, (24, 32))
    np.testing.assert_array_equal(reproject_source(rgb, np.eye(4), np.eye(4), depth), rgb)
    moved = np.eye(4)
    moved[0, 3] = 0.3
    np.testing.assert_array_equal(reproject_source(rgb, np.eye(4), moved, None), rgb)
    np.testing.assert_array_equal(reproject_source(rgb, np.eye(4), moved, np.zeros((24, 32))), rgb)


def test_reprojection_shifts_a_plane_by_the_parallax():
    # a fronto-parallel plane 2 m away; the camera moves 0.1 m right (OpenCV x): content moves f * 0.1 / 2 left
    from rpx_tasks.constants import scaled_intrinsics

    height, width = 24, 64
    f = scaled_intrinsics(width, height)[0]
    shift = f * 0.1 / 2.0
    columns = np.arange(width, dtype=float)
    rgb = np.repeat(np.repeat((columns * 3)[None, :, None], height, 0), 3, 2).astype(np.uint8)
    target_pose = np.eye(4)
    target_pose[0, 3] = 0.1
    out = reproject_source(rgb, np.eye(4), target_pose, np.full((height, width), 2.0))
    inner = slice(2, width - int(math.ceil(shift)) - 2)
    np.testing.assert_allclose(out[12, inner, 0], np.rint((columns[inner] + shift) * 3), atol=1)


# --------------------------------------------------------------------------- CLI on the built-in data


def _bench(model: str, out_dir, *extra: str) -> int:
    """``rpx bench novel_view_synthesis --model <model>`` on the CPU (``extra`` may name another --manifest)."""
    manifest = [] if "--manifest" in extra else ["--manifest", "builtin:sample"]
    args = ["bench", "novel_view_synthesis", "--model", model, *manifest, *extra]
    return main([*args, "--device", "cpu", "--output-dir", str(out_dir), "--plain"])


def test_baseline_runs_offline_and_beats_copying_the_source(tmp_path, capsys):
    assert _bench("baseline", tmp_path / "baseline") == 0
    assert _bench("copy_source", tmp_path / "copy") == 0
    capsys.readouterr()
    result = json.loads((tmp_path / "baseline" / "result.json").read_text())
    assert result["model"] == "depth_reprojection" and result["primary_metric"] == "psnr"
    baseline = result["aggregated"]["psnr"]["mean"]
    copied = json.loads((tmp_path / "copy" / "result.json").read_text())["aggregated"]["psnr"]["mean"]
    assert baseline > copied + 1.0
    assert set(SPEC.metric_names) <= set(result["aggregated"])


def test_sample_pairs_take_source_and_target_from_one_clip(sample_dataset):
    samples = json.loads((sample_dataset / manifest_relpath("novel_view_synthesis", "all")).read_text())["samples"]
    assert samples
    for entry in samples:
        clip = entry["rgb"].rsplit("/", 2)[0]
        assert entry["target_rgb"].startswith(clip) and entry["target_pose"].startswith(clip)
        assert entry["pose"].startswith(clip) and entry["depth"].startswith(clip) and "rgb_b" not in entry
        assert entry["frame_idx_b"] > entry["frame_idx"] and entry["id"].count("__") == 3


def test_local_manifest_with_inline_target_poses_and_no_depth_copies_the_source(sample_dataset, tmp_path, capsys):
    import pyarrow.parquet as pq

    from rpx_tasks.decoding import decode_pose, decode_rgb

    samples = json.loads((sample_dataset / manifest_relpath("novel_view_synthesis", "hard")).read_text())["samples"]
    samples = samples[:3]
    for entry in samples:
        entry["target_pose"] = decode_pose(sample_dataset / entry["target_pose"], entry["id"]).tolist()
        del entry["depth"]
    manifest = tmp_path / "local.json"
    manifest.write_text(json.dumps({"task": "novel_view_synthesis", "root": str(sample_dataset), "samples": samples}))
    assert _bench("baseline", tmp_path / "out", "--manifest", str(manifest)) == 0, capsys.readouterr().err
    rows = {row["id"]: row for row in pq.read_table(tmp_path / "out" / "per_sample_metrics.parquet").to_pylist()}
    assert len(rows) == 3
    for entry in samples:
        source = decode_rgb(sample_dataset / entry["rgb"], entry["id"])
        target = decode_rgb(sample_dataset / entry["target_rgb"], entry["id"])
        expected = view_synthesis_metrics(source, view(target))["psnr"]
        assert rows[entry["id"]]["psnr"] == pytest.approx(expected)
