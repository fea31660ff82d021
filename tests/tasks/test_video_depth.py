"""video_depth: metric formulas on hand-built clips, clip manifests and frame selection, the clip and
streaming model paths, per-clip alignment, resume at clip ends, and runs through the CLI and the flow."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from rpx_tasks.alignment_record import resolve_alignment
from rpx_tasks.bench import run_bench
from rpx_tasks.cli import main
from rpx_tasks.config import RunConfig
from rpx_tasks.contracts.clips import FrameSelection, clip_position
from rpx_tasks.dataset import open_split
from rpx_tasks.errors import AdapterError, ConfigError, ManifestError
from rpx_tasks.manifest import manifest_relpath
from rpx_tasks.metrics.video_depth import frame_errors, frame_fscore, temporal_pair_errors, video_depth_metrics
from rpx_tasks.tasks import get_task, task_names
from tests.support import video_depth_models
from tests.support.hf_seed import DEFAULT_REPO_ID, seed_tiny_depth_anything

SPEC = get_task("video_depth")
HEIGHT, WIDTH = 12, 16


# --------------------------------------------------------------------------- metrics, by hand


def test_tgm_on_static_pixels_and_tgse_on_every_pixel_valid_in_both_frames():
    # pixel 0 static (GT unchanged), pixel 1 moves 1 m, pixel 2 invalid in the second frame
    gt_prev, gt = np.array([[2.0, 2.0, 2.0]]), np.array([[2.0, 3.0, 0.0]])
    pred_prev, pred = np.array([[2.0, 2.0, 2.0]]), np.array([[2.1, 2.5, 2.0]])
    tgm, tgse = temporal_pair_errors(pred_prev, gt_prev, pred, gt)
    assert tgm == pytest.approx(0.1)  # | |0.1| - |0| | on the static pixel only
    assert tgse == pytest.approx(((0.1 - 0.0) ** 2 + (0.5 - 1.0) ** 2) / 2)


def test_a_pair_without_static_pixels_has_no_tgm_and_without_common_pixels_neither():
    tgm, tgse = temporal_pair_errors(np.ones((1, 1)), np.array([[1.0]]), np.ones((1, 1)), np.array([[2.0]]))
    assert tgm is None and tgse == pytest.approx(1.0)
    assert temporal_pair_errors(np.ones((1, 2)), np.array([[1.0, 0]]), np.ones((1, 2)), np.array([[0, 1.0]])) == (
        None,
        None,
    )


def test_frame_errors_clip_the_prediction_and_keep_only_gt_between_03_and_5_m():
    gt = np.array([[2.0, 0.0, 6.0, 1.0]])
    pred = np.array([[3.0, 1.0, 1.0, 0.1]])  # 0.1 is clipped to 0.3; pixels 1 (invalid) and 2 (> 5 m) are out
    errors = frame_errors(pred, gt)
    assert errors["absrel"] == pytest.approx((1.0 / 2.0 + 0.7 / 1.0) / 2)
    assert errors["rmse"] == pytest.approx(math.sqrt((1.0 + 0.49) / 2))
    # ratios 1.5 and 3.33 against 1.25, 1.5625, 1.953
    assert (errors["delta1"], errors["delta2"], errors["delta3"]) == (0.0, 0.5, 0.5)
    assert frame_errors(np.ones((2, 2)), np.zeros((2, 2))) is None


def test_clip_metrics_average_the_frames_that_have_valid_pixels():
    gt = np.stack([np.full((2, 2), 2.0), np.zeros((2, 2)), np.full((2, 2), 1.0)])
    pred = np.stack([np.full((2, 2), 3.0), np.ones((2, 2)), np.full((2, 2), 1.0)])
    metrics = video_depth_metrics(pred, gt)
    assert metrics["absrel"] == pytest.approx((0.5 + 0.0) / 2)  # the all-invalid middle frame does not count
    assert metrics["tgm"] is None and metrics["tgse"] is None  # no pixel is valid in two consecutive frames
    assert metrics["fscore_5cm"] is None


def test_fscore_is_one_for_an_exact_prediction_zero_beyond_5_cm_and_null_off_vga():
    gt = np.zeros((480, 640), np.float32)
    gt[100:110, 200:210] = 2.0
    assert frame_fscore(gt.copy(), gt) == 1.0
    assert frame_fscore(np.where(gt > 0, gt + 0.2, 0), gt) == 0.0
    assert frame_fscore(np.ones((4, 4)), np.ones((4, 4))) is None
    assert video_depth_metrics(gt[None].copy(), gt[None], fscore=True)["fscore_5cm"] == 1.0


# --------------------------------------------------------------------------- clips, frames and options


def test_frame_selection_keeps_the_first_frames_or_every_kth():
    frames = list(range(10))
    assert FrameSelection().select(frames) == frames
    assert FrameSelection(4, "all").select(frames) == [0, 1, 2, 3]
    assert FrameSelection(4, "stride").select(frames) == [0, 3, 6, 9]  # k = ceil(10 / 4) = 3
    assert FrameSelection(5, "stride").select(frames) == [0, 2, 4, 6, 8]
    with pytest.raises(ConfigError, match="--frame-budget"):
        FrameSelection(None, "stride")
    with pytest.raises(ConfigError, match="at least 1"):
        FrameSelection(0)


def test_clip_options_are_rejected_for_frame_tasks_and_checked_for_clip_tasks():
    with pytest.raises(ConfigError, match="--frame-budget"):
        RunConfig(task="monocular_depth", model_name="baseline", frame_budget=4)
    with pytest.raises(ConfigError, match="--fscore"):
        RunConfig(task="monocular_depth", model_name="baseline", fscore=True)
    with pytest.raises(ConfigError, match="--frame-budget"):
        RunConfig(task="video_depth", model_name="baseline", sampling="stride")
    assert RunConfig(task="video_depth", model_name="baseline", frame_budget=3).frame_selection == FrameSelection(3)


def _write_frame(root, relative, array):
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return relative


def write_clips(root, *, frames=5, clips=(("scene_a", 0), ("scene_a", 1), ("scene_b", 2)), bare=True):
    """Clips of ``frames`` frames, camera moving (GT shifting by 5 cm a frame); the first clip lists bare file
    names under ``extracted/`` (the Hub's unpacked layout), the others root-relative paths. Returns the manifest."""
    rng = np.random.default_rng(0)
    samples = []
    for index, (scene, phase) in enumerate(clips):
        rgb_names, depth_names = [], []
        for t in range(frames):
            stem = f"{t * 2:05d}"
            folder = f"{'extracted/' if bare and index == 0 else ''}scenes/{scene}/{phase}"
            rgb = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
            depth = (1000 + 50 * t + 300 * index + rng.integers(0, 400, (HEIGHT, WIDTH))).astype(np.uint16)
            depth[0, :3] = 0  # invalid pixels
            rgb_path = _write_frame(root, f"{folder}/rgb/{stem}.png", rgb)
            depth_path = _write_frame(root, f"{folder}/depth/{stem}.png", depth)
            use_bare = bare and index == 0
            rgb_names.append(f"{stem}.png" if use_bare else rgb_path)
            depth_names.append(f"{stem}.png" if use_bare else depth_path)
        samples.append(
            {
                "id": f"{scene}__{phase}",
                "scene_id": scene,
                "phase": phase,
                "difficulty": "hard",
                "frame_filenames": rgb_names,
                "depth_filenames": depth_names,
            }
        )
    manifest = root / manifest_relpath("video_depth", "hard")
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"task": "video_depth", "root": None, "samples": samples}))
    return manifest


def test_a_clip_entry_becomes_its_frames_in_clip_order_with_bare_names_found_in_the_clip_folder(tmp_path):
    dataset = open_split(write_clips(tmp_path), SPEC, frames=FrameSelection(3, "stride"))
    assert len(dataset) == 3 * 3  # 3 clips of 5 frames, at most 3 each: k = ceil(5 / 3) = 2 -> frames 0, 2, 4
    first = dataset.entries[:3]
    assert [entry["id"] for entry in first] == ["scene_a__0__00000", "scene_a__0__00004", "scene_a__0__00008"]
    assert first[1]["rgb"] == "extracted/scenes/scene_a/0/rgb/00004.png"
    assert [entry["frame_idx"] for entry in first] == [0, 4, 8]
    sample = dataset.decode(first[2])
    where = clip_position(sample)
    assert (where.clip_id, where.position, where.frames) == ("scene_a__0", 2, 3)
    assert sample.ground_truth.shape == (HEIGHT, WIDTH) and sample.phase == "clutter"


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda s: s.update(depth_filenames=s["depth_filenames"][:-1]), "depth_filenames"),
        (lambda s: s.update(frame_filenames="00000.png"), "frame_filenames"),
        (lambda s: s.pop("depth_filenames"), "depth_filenames"),
        (lambda s: s["depth_filenames"].__setitem__(2, "scenes/scene_a/1/depth/missing.png"), "depth"),
        (lambda s: s.update(difficulty="extreme"), "difficulty"),
        (lambda s: s.update(frame_indices=[0, 1]), "frame_indices"),
        (lambda s: s.update(metadata=["not", "an", "object"]), "metadata"),
        (lambda s: s["frame_filenames"].__setitem__(3, "small/rgb.png"), "8x8"),
    ],
    ids=[
        "lengths_differ",
        "not_a_list",
        "missing",
        "missing_file",
        "bad_difficulty",
        "frame_indices",
        "metadata",
        "frame_size",
    ],
)
def test_bad_clip_entries_fail_when_the_split_opens_naming_the_field(tmp_path, edit, field):
    manifest = write_clips(tmp_path, bare=False)
    _write_frame(tmp_path, "small/rgb.png", np.zeros((8, 8, 3), np.uint8))
    data = json.loads(manifest.read_text())
    edit(data["samples"][1])
    manifest.write_text(json.dumps(data))
    with pytest.raises(ManifestError) as caught:
        open_split(manifest, SPEC)
    assert field in str(caught.value) and caught.value.hint


# --------------------------------------------------------------------------- models and the benchmark loop


def _run(tmp_path, manifest, name, **options):
    config = RunConfig(
        task="video_depth",
        manifest=None if manifest is None else str(manifest),
        device="cpu",
        output_dir=str(tmp_path / name),
        **options,
    )
    paths, payload = run_bench(config)
    return pq.read_table(paths.per_sample).to_pylist(), payload


def test_streaming_model_is_reset_before_each_clip_and_batches_never_cross_a_clip(tmp_path):
    manifest = write_clips(tmp_path)
    rows, payload = _run(
        tmp_path, manifest, "streaming", model_name="tests.support.video_depth_models:RecordingVideoModel", batch_size=3
    )
    calls = video_depth_models.CALLS
    assert [kind for kind, _ in calls].count("reset") == 3
    for kind, clips in calls:
        assert kind == "reset" or len(set(clips)) == 1, calls
    # every clip's first batch comes right after a reset: [reset, 3 frames, 2 frames] per clip
    assert [len(clips) for _, clips in calls] == [0, 3, 2] * 3
    assert [row["id"] for row in rows] == ["scene_a__0", "scene_a__1", "scene_b__2"]
    assert [row["num_frames"] for row in rows] == [5, 5, 5] and all(row["frame_idx"] is None for row in rows)
    assert payload["num_samples"] == 3 and payload["num_frames"] == 15
    assert payload["compute"]["frames"] == 15 and payload["compute"]["timed_samples"] + 3 == 15


def test_run_record_counts_frames_and_the_video_hf_path_takes_processor_kwargs(tmp_path):
    _, payload = _run(tmp_path, write_clips(tmp_path), "record", model_name="baseline")
    record = json.loads((tmp_path / "record" / "run.json").read_text())
    assert record["samples_done"] == record["samples_total"] == payload["num_frames"] == 15
    RunConfig(task="video_depth", hf_checkpoint=DEFAULT_REPO_ID, model_kwargs={"processor_kwargs": {"size": 64}})
    RunConfig(task="video_depth", hf_checkpoint=DEFAULT_REPO_ID, device="cpu", precision="bf16")  # as monocular_depth
    relative = RunConfig(task="video_depth", model_name="video_depth_anything_v2_relative_small")
    assert resolve_alignment(relative.task, relative.alignment, relative.model_name).mode == "ls_disparity"


def test_frame_tasks_ignore_a_clip_object_in_their_metadata(tmp_path, sample_dataset):
    manifest = json.loads((sample_dataset / manifest_relpath("monocular_depth", "hard")).read_text())
    manifest["root"] = str(sample_dataset)
    for entry in manifest["samples"][:4]:
        entry["metadata"] = {"clip": {"name": "take1"}}
    path = tmp_path / "depth.json"
    path.write_text(json.dumps({**manifest, "samples": manifest["samples"][:4]}))
    config = RunConfig(task="monocular_depth", manifest=str(path), model_name="baseline", device="cpu")
    config.output_dir = str(tmp_path / "depth")
    paths, payload = run_bench(config)
    assert payload["num_samples"] == 4 and len(pq.read_table(paths.per_sample)) == 4


def test_batching_and_whole_clips_give_the_same_clip_scores(tmp_path, monkeypatch):
    manifest = write_clips(tmp_path)
    one, _ = _run(tmp_path, manifest, "b1", model_name="tests.support.video_depth_models:RecordingVideoModel")
    monkeypatch.setenv("RPX_DECODE_ENGINE", "processes")  # frames decoded in the worker process, regrouped by clip
    whole, payload = _run(
        tmp_path, manifest, "whole", model_name="tests.support.video_depth_models:WholeClipRecordingModel"
    )
    assert [len(clips) for kind, clips in video_depth_models.CALLS if kind == "predict"] == [5, 5, 5]
    assert payload["compute"]["whole_clip_model"] is True
    metrics = [name for name in SPEC.metric_names]
    assert [[row[m] for m in metrics] for row in one] == [[row[m] for m in metrics] for row in whole]
    assert one[0]["absrel"] == pytest.approx(0.1, abs=1e-6)  # gt * 1.1 everywhere valid
    assert one[0]["tgm"] is not None and one[0]["tgse"] is not None


def test_a_numpy_clip_function_gets_each_whole_clip_and_its_output_is_resized(tmp_path):
    manifest = write_clips(tmp_path)
    video_depth_models.CLIP_FUNCTION_CALLS.clear()
    rows, _ = _run(tmp_path, manifest, "fn", model_name="tests.support.video_depth_models:half_size_clip_function")
    assert video_depth_models.CLIP_FUNCTION_CALLS == [5, 5, 5]
    assert len(rows) == 3 and all(math.isfinite(row["absrel"]) for row in rows)
    with pytest.raises(AdapterError, match="T=5"):
        _run(tmp_path, manifest, "short", model_name="tests.support.video_depth_models:one_frame_short")


def test_ls_affine_fits_one_scale_and_shift_per_clip_and_scores_an_affine_prediction_zero(tmp_path):
    rows, payload = _run(
        tmp_path,
        write_clips(tmp_path),
        "affine",
        model_name="tests.support.video_depth_models:AffineVideoModel",
        alignment="ls_affine",
    )
    assert all(row["absrel"] == pytest.approx(0.0, abs=1e-5) for row in rows)
    alignment = payload["alignment"]
    assert alignment["clips_fitted"] == 3 and alignment["clips_unfitted"] == 0
    assert alignment["scale"]["mean"] == pytest.approx(1 / video_depth_models.SCALE, rel=1e-4)


def test_a_run_killed_mid_clip_resumes_at_the_last_clip_end_with_the_same_scores(tmp_path, monkeypatch):
    manifest = write_clips(tmp_path, frames=4)
    model = "tests.support.video_depth_models:CrashOnceVideoModel"
    monkeypatch.setenv("RPX_TEST_CRASH_FLAG", str(tmp_path / "crashed"))
    monkeypatch.setenv("RPX_TEST_CRASH_AT", "7")  # frame 7 of 12: the second clip is half done
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(tmp_path, manifest, "resumed", model_name=model, checkpoint_every=1)
    rows, payload = _run(tmp_path, manifest, "resumed", model_name=model, checkpoint_every=1)
    assert "resumed after 4 of 12 frames" in " ".join(payload["notes"])
    monkeypatch.setenv("RPX_TEST_CRASH_AT", "1000")
    clean, _ = _run(tmp_path, manifest, "clean", model_name=model)
    strip = [{k: v for k, v in row.items() if k != "latency_ms"} for row in rows]
    assert strip == [{k: v for k, v in row.items() if k != "latency_ms"} for row in clean]


def test_the_hf_fast_path_runs_frame_by_frame(tmp_path, monkeypatch):
    cache = tmp_path / "hf"
    seed_tiny_depth_anything(cache, DEFAULT_REPO_ID)
    rows, payload = _run(
        tmp_path,
        write_clips(tmp_path),
        "hf",
        hf_checkpoint=DEFAULT_REPO_ID,
        cache_dir=str(cache),
        batch_size=2,
    )
    assert len(rows) == 3 and payload["num_frames"] == 15
    assert payload["compute"]["params_m"] > 0 and payload["compute"]["whole_clip_model"] is False


# --------------------------------------------------------------------------- CLI and flow on the built-in data


def test_rpx_ls_lists_eleven_tasks_with_video_depth(capsys):
    assert main(["ls"]) == 0
    out = capsys.readouterr().out
    assert len(task_names()) == 11 and "video_depth" in out and "novel_view_synthesis" in out


def test_cli_runs_the_baseline_on_the_builtin_data_one_row_per_clip_with_phi_and_jmin(tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(
        ["bench", "video_depth", "--model", "baseline", "--manifest", "builtin:sample", "--split", "hard"]
        + ["--device", "cpu", "--output-dir", str(out), "--plain", "--frame-budget", "3", "--sampling", "stride"]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = pq.read_table(out / "per_sample_metrics.parquet").to_pylist()
    result = json.loads((out / "result.json").read_text())
    assert result["num_samples"] == len(rows) == len({row["id"] for row in rows})
    assert result["num_frames"] == sum(row["num_frames"] for row in rows)
    assert result["frames"] == {"frame_budget": 3, "sampling": "stride", "fscore": False}
    assert result["readiness"]["phi"]["metrics_used"] or result["readiness"]["phi"]["notes"]
    assert result["readiness"]["jedi"]["j_min"] is not None
    assert "tgm" in captured.out and "J_min" in captured.out and "ms/frame" in captured.out


@pytest.mark.parametrize("layout", ["loose", "sharded"])
def test_a_hub_split_of_clips_downloads_only_its_clips_and_runs(hub_env, tmp_path, layout):
    from tests.support.hub_dataset import SPLIT_SCENES, files_of

    rows, payload = _run(
        tmp_path,
        None,
        f"hub-{layout}",
        model_name="baseline",
        repo_id=f"rpx-test/{layout}",
        revision="main",
        cache_dir=str(hub_env.hf_cache),
        max_samples=2,  # two clips: scene_h1 phases 0 and 1
    )
    expected = files_of(layout, SPLIT_SCENES["hard"][:1], phases=("0", "1"), modalities=("rgb", "depth"))
    fetched = {name for name in hub_env.server.fetched_files() if not name.startswith("manifest")}
    assert fetched == expected
    assert [row["id"] for row in rows] == ["scene_h1__0", "scene_h1__1"]
    assert payload["num_frames"] == 4 and payload["repo_id"] == f"rpx-test/{layout}"
