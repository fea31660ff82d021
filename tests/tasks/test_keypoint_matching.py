"""keypoint_matching: metric formulas, ground-truth loading, numpy adapter, CLI runs (the HF fast path is in
test_keypoint_matching_hf.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from rpx_tasks.contracts.keypoints import KeypointCorrespondences, KeypointMatches
from rpx_tasks.errors import AdapterError, ManifestError, MetricError, ModelError
from rpx_tasks.manifest import manifest_relpath
from rpx_tasks.metrics.keypoints import keypoint_metrics
from rpx_tasks.models.keypoint_baselines import global_motion_matches
from rpx_tasks.models.numpy_function import wrap_numpy_function
from rpx_tasks.sample import Sample
from rpx_tasks.tasks import get_task
from rpx_tasks.tasks.keypoint_matching import load_ground_truth
from tests.support.bench_cli import bench_all
from tests.support.run_folders import REPORT_FILES

SPEC = get_task("keypoint_matching")


def gt(points0, points1, visibility=None) -> KeypointCorrespondences:
    vis = None if visibility is None else np.asarray(visibility, bool)
    return KeypointCorrespondences(
        np.asarray(points0, float).reshape(-1, 2), np.asarray(points1, float).reshape(-1, 2), vis
    )


def pred(points0, points1, scores=None) -> KeypointMatches:
    return KeypointMatches(np.asarray(points0, float).reshape(-1, 2), np.asarray(points1, float).reshape(-1, 2), scores)


def no_matches(rgb_a, rgb_b):
    """A numpy model that never finds a match (used by the CLI test through its import path)."""
    return np.zeros((0, 2)), np.zeros((0, 2))


# --------------------------------------------------------------------------- metrics


def test_perfect_prediction():
    truth = gt([[10, 10], [20, 30], [40, 5]], [[12, 11], [22, 31], [41, 7]])
    assert keypoint_metrics(pred(truth.points0, truth.points1), truth) == {"keypoint_acc": 1.0, "mean_match_error": 0.0}


def test_threshold_is_strictly_below_three_pixels():
    truth = gt([[10, 10]], [[10, 10]])
    at_three = keypoint_metrics(pred([[10, 10]], [[13, 10]]), truth)
    assert at_three == {"keypoint_acc": 0.0, "mean_match_error": 3.0}
    just_below = keypoint_metrics(pred([[10, 10]], [[10, 12.999]]), truth)
    assert just_below["keypoint_acc"] == 1.0 and just_below["mean_match_error"] == pytest.approx(2.999)


def test_partial_hand_computed():
    truth = gt([[0, 0], [10, 0], [20, 0], [30, 0]], [[0, 0], [10, 0], [20, 0], [30, 0]])
    prediction = pred([[0, 0], [10, 0], [20, 0], [30, 0]], [[1, 0], [10, 2], [20, 3], [34, 3]])
    metrics = keypoint_metrics(prediction, truth)
    assert metrics["keypoint_acc"] == 0.5
    assert metrics["mean_match_error"] == pytest.approx((1 + 2 + 3 + 5) / 4)


def test_nearest_prediction_in_frame_a_wins_and_ties_go_to_the_first():
    truth = gt([[10, 10]], [[50, 50]])
    # the nearest point0 (11, 10) carries a bad point1; the far one a perfect point1
    prediction = pred([[30, 30], [11, 10]], [[50, 50], [60, 50]])
    assert keypoint_metrics(prediction, truth) == {"keypoint_acc": 0.0, "mean_match_error": 10.0}
    tie = pred([[9, 10], [11, 10]], [[50, 51], [50, 40]])
    assert keypoint_metrics(tie, truth)["mean_match_error"] == 1.0
    # one prediction may serve several true points
    many = gt([[0, 0], [1, 1], [2, 2]], [[5, 5], [6, 6], [7, 7]])
    assert keypoint_metrics(pred([[1, 1]], [[6, 6]]), many)["mean_match_error"] == pytest.approx((math.sqrt(2) * 2) / 3)


def test_visibility_mask_drops_hidden_points():
    truth = gt([[0, 0], [10, 0]], [[0, 0], [10, 0]], visibility=[True, False])
    prediction = pred([[0, 0], [10, 0]], [[0, 1], [99, 99]])
    assert keypoint_metrics(prediction, truth) == {"keypoint_acc": 1.0, "mean_match_error": 1.0}


def test_empty_ground_truth_and_no_predictions():
    empty = gt(np.zeros((0, 2)), np.zeros((0, 2)))
    assert keypoint_metrics(pred([[1, 1]], [[1, 1]]), empty) == {"keypoint_acc": 1.0, "mean_match_error": 0.0}
    assert keypoint_metrics(pred(np.zeros((0, 2)), np.zeros((0, 2))), empty) == {
        "keypoint_acc": 1.0,
        "mean_match_error": 0.0,
    }
    metrics = keypoint_metrics(pred(np.zeros((0, 2)), np.zeros((0, 2))), gt([[1, 1]], [[1, 1]]))
    assert metrics["keypoint_acc"] == 0.0 and metrics["mean_match_error"] == math.inf


def test_all_hidden_follows_the_reference_order():
    hidden = gt([[1, 1]], [[1, 1]], visibility=[False])
    # visibility is applied after the "no predictions" rule
    assert keypoint_metrics(pred([[5, 5]], [[9, 9]]), hidden) == {"keypoint_acc": 1.0, "mean_match_error": 0.0}
    assert keypoint_metrics(pred(np.zeros((0, 2)), np.zeros((0, 2))), hidden)["mean_match_error"] == math.inf


def test_large_inputs_are_searched_in_chunks():
    rng = np.random.default_rng(0)
    true0 = rng.uniform(0, 640, (3000, 2))
    pred0 = rng.uniform(0, 640, (2500, 2))
    shift = np.array([1.0, 0.5])
    metrics = keypoint_metrics(pred(pred0, pred0 + shift), gt(true0, true0 + shift))
    nearest = np.argmin(np.linalg.norm(true0[:, None] - pred0[None], axis=-1), axis=1)
    errors = np.linalg.norm(pred0[nearest] + shift - (true0 + shift), axis=1)
    assert metrics["mean_match_error"] == pytest.approx(errors.mean(), abs=1e-9)
    assert metrics["keypoint_acc"] == pytest.approx(np.mean(errors < 3.0))


def test_metric_type_errors_name_the_expected_class():
    with pytest.raises(MetricError, match="KeypointMatches"):
        keypoint_metrics({"points0": [], "points1": []}, gt([[1, 1]], [[1, 1]]))
    with pytest.raises(MetricError, match="KeypointCorrespondences"):
        keypoint_metrics(pred([[1, 1]], [[1, 1]]), np.zeros((1, 2)))


def test_metric_directions():
    assert SPEC.higher_is_better("keypoint_acc") is True
    assert SPEC.higher_is_better("mean_match_error") is False


# --------------------------------------------------------------------------- ground truth


def test_loads_npy_json_and_inline_encodings(tmp_path, resolve):
    np.save(tmp_path / "p0.npy", np.array([[1.5, 2.5], [3, 4]], np.float32))
    (tmp_path / "p1.json").write_text(json.dumps([[5, 6], [7.25, 8]]))
    entry = {"id": "k", "points0": "p0.npy", "points1": "p1.json", "visibility": [1, 0]}
    truth = load_ground_truth(entry, resolve)
    assert truth.points0.tolist() == [[1.5, 2.5], [3, 4]] and truth.points1.tolist() == [[5, 6], [7.25, 8]]
    assert truth.visibility.dtype == bool and truth.visibility.tolist() == [True, False]
    assert truth.points0.dtype == np.float64
    # float64 files keep their precision
    np.save(tmp_path / "precise.npy", np.array([[123.456789012, 1.0]]))
    precise = load_ground_truth({"id": "k", "points0": "precise.npy", "points1": [[0, 0]]}, resolve)
    assert precise.points0[0, 0] == 123.456789012 and precise.visibility is None
    empty = load_ground_truth({"id": "k", "points0": [], "points1": [], "visibility": None}, resolve)
    assert empty.points0.shape == (0, 2) and empty.visibility is None


def test_missing_file_names_sample_and_file(resolve):
    with pytest.raises(ManifestError) as info:
        load_ground_truth({"id": "pair-3", "points0": "gone.npy", "points1": []}, resolve)
    assert "pair-3" in str(info.value) and "gone.npy" in str(info.value) and info.value.details["key"] == "points0"
    with pytest.raises(ManifestError) as info:
        load_ground_truth({"id": "pair-3", "points0": [], "points1": [], "visibility": "vis.json"}, resolve)
    assert "vis.json" in str(info.value) and info.value.details["key"] == "visibility"


@pytest.mark.parametrize(
    "points0, points1, visibility, words",
    [
        ([[1, 2, 3]], [[1, 2]], None, "points0"),
        ([[1, 2]], [1, 2, 3], None, "points1"),
        ([[1, 2], [3, 4]], [[1, 2]], None, "points0 has 2 points but points1 has 1"),
        ([[1, 2]], [[1, 2]], [True, False], "visibility has 2 values"),
        ([["a", "b"]], [[1, 2]], None, "points0"),
        ([[1, 2]], [[float("nan"), 2]], None, "NaN"),
    ],
)
def test_malformed_arrays_are_manifest_errors(resolve, points0, points1, visibility, words):
    entry = {"id": "pair-4", "points0": points0, "points1": points1, "visibility": visibility}
    with pytest.raises(ManifestError) as info:
        load_ground_truth(entry, resolve)
    assert "pair-4" in str(info.value) and words in str(info.value)


def test_hidden_points_may_have_no_position(resolve):
    truth = load_ground_truth(
        {"id": "k", "points0": [[1, 2], [3, 4]], "points1": [[1, 2], [None, None]], "visibility": [True, False]},
        resolve,
    )
    assert keypoint_metrics(pred([[1, 2]], [[1, 2]]), truth) == {"keypoint_acc": 1.0, "mean_match_error": 0.0}


def test_unreadable_npy_names_the_file(tmp_path, resolve):
    (tmp_path / "broken.npy").write_bytes(b"garbage")
    with pytest.raises(ManifestError, match="broken.npy"):
        load_ground_truth({"id": "pair-5", "points0": "broken.npy", "points1": []}, resolve)


# --------------------------------------------------------------------------- numpy adapter


def _pair_sample(with_b: bool = True) -> Sample:
    rgb = np.random.default_rng(1).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    truth = gt([[4, 4]], [[4, 4]])
    return Sample(id="pair-1", rgb=rgb, ground_truth=truth, metadata={"rgb_b": rgb[::-1].copy()} if with_b else {})


def test_numpy_outputs_are_reshaped_and_may_carry_scores():
    seen = {}

    def fn(rgb_a, rgb_b):
        seen["b"] = rgb_b[0, 0].tolist()
        return [1, 2, 3, 4], np.array([[5, 6], [7, 8]], np.float32), [0.9, 0.1]

    sample = _pair_sample()
    (matches,) = wrap_numpy_function(SPEC, fn, "flat").predict([sample])
    assert seen["b"] == sample.metadata["rgb_b"][0, 0].tolist()
    assert isinstance(matches, KeypointMatches) and matches.points0.tolist() == [[1, 2], [3, 4]]
    assert matches.points1.dtype == np.float64 and matches.scores.tolist() == [0.9, 0.1]
    as_dict_model = wrap_numpy_function(SPEC, lambda a, b: {"points0": [[1, 1]], "points1": [[2, 2]]}, "d")
    (as_dict,) = as_dict_model.predict([sample])
    assert as_dict.scores is None and as_dict.points1.tolist() == [[2, 2]]
    (empty,) = wrap_numpy_function(SPEC, no_matches, "none").predict([sample])
    assert empty.points0.shape == (0, 2)


def test_missing_second_frame_is_an_adapter_error():
    with pytest.raises(AdapterError, match="requires a second RGB frame") as info:
        wrap_numpy_function(SPEC, global_motion_matches, "g").predict([_pair_sample(with_b=False)])
    assert "pair-1" in str(info.value)


@pytest.mark.parametrize(
    "output, words",
    [
        ({"points0": [[1, 2]]}, "'points1'"),
        ({"points1": [[1, 2]]}, "'points0'"),
        ({"kp0": [], "kp1": []}, "'points0', 'points1'"),
        (([[1, 2]],), "length 1"),
        ((1, 2, 3, 4), "length 4"),
        (np.zeros((3, 2)), "ndarray"),
        (([1, 2, 3], [[1, 2]]), "'points0' has shape (3,)"),
        (([[1, 2]], [[1, 2], [3, 4]]), "'points0' has 1 points but 'points1' has 2"),
        (([[1, 2]], [[1, 2]], [0.5, 0.5]), "'scores' has 2 values"),
        (([[1, 2]], [[np.inf, 2]]), "NaN or inf"),
        (([["x", 2]], [[1, 2]]), "'points0'"),
    ],
)
def test_adapter_errors_say_what_is_wrong(output, words):
    with pytest.raises(AdapterError) as info:
        wrap_numpy_function(SPEC, lambda a, b: output, "bad").predict([_pair_sample()])
    assert words in str(info.value) and "pair-1" in str(info.value) and "points0" in info.value.hint


def test_validation_errors_are_model_errors():
    sample = _pair_sample()
    with pytest.raises(ModelError, match="keypoint_matching") as info:
        SPEC.validate_prediction("matches", sample)
    assert not isinstance(info.value, AdapterError)
    with pytest.raises(ModelError, match="'points1'"):
        SPEC.validate_prediction({"points0": [[1, 2]]}, sample)
    validated = SPEC.validate_prediction(([[1, 2]], [[3, 4]]), sample)
    assert isinstance(validated, KeypointMatches) and validated.points1.tolist() == [[3, 4]]


# --------------------------------------------------------------------------- end to end


def _reference_metrics(true0, true1, visible, pred0, pred1):
    """The reference rules, written out independently of the package."""
    if len(true0) == 0:
        return 1.0, 0.0
    if len(pred0) == 0:
        return 0.0, math.inf
    true0, true1 = true0[visible], true1[visible]
    if len(true0) == 0:
        return 1.0, 0.0
    errors = [np.linalg.norm(pred1[np.argmin(np.linalg.norm(pred0 - p, axis=1))] - q) for p, q in zip(true0, true1)]
    return float(np.mean(np.asarray(errors) < 3.0)), float(np.mean(errors))


def test_cli_run_on_sample_data_matches_the_formulas(sample_dataset, tmp_path, capsys):
    out_dir = tmp_path / "out"
    samples, out = bench_all("keypoint_matching", ["--model", "global_motion_grid"], sample_dataset, out_dir, capsys)
    assert "keypoint_acc" in out and "Weighted Phase Score" in out
    assert sorted(p.name for p in out_dir.iterdir()) == REPORT_FILES
    rows = {row["id"]: row for row in pq.read_table(out_dir / "per_sample_metrics.parquet").to_pylist()}
    assert len(rows) == len(samples) > 0 and {"keypoint_acc", "mean_match_error"} <= set(next(iter(rows.values())))
    for entry in samples[::4]:
        true0, true1 = np.load(sample_dataset / entry["points0"]), np.load(sample_dataset / entry["points1"])
        visible = np.load(sample_dataset / entry["visibility"])
        assert len(true0) > 100 and visible.dtype == bool and visible.mean() > 0.8
        rgb_a = np.asarray(Image.open(sample_dataset / entry["rgb"]).convert("RGB"))
        rgb_b = np.asarray(Image.open(sample_dataset / entry["rgb_b"]).convert("RGB"))
        predicted = global_motion_matches(rgb_a, rgb_b)
        acc, err = _reference_metrics(
            true0.astype(float), true1.astype(float), visible, predicted["points0"], predicted["points1"]
        )
        row = rows[entry["id"]]
        assert row["keypoint_acc"] == pytest.approx(acc, abs=1e-5)
        assert row["mean_match_error"] == pytest.approx(err, abs=1e-5)
    result = json.loads((out_dir / "result.json").read_text())
    assert result["readiness"]["primary_metric"] == "keypoint_acc"
    assert result["aggregated"]["keypoint_acc"]["higher_is_better"] is True
    assert result["aggregated"]["mean_match_error"]["higher_is_better"] is False
    assert result["aggregated"]["keypoint_acc"]["mean"] > 0.95
    assert (
        result["readiness"]["wps"]["direction"] == "higher_is_better" and result["readiness"]["wps"]["s_overall"] > 0.9
    )
    assert result["readiness"]["str"] is not None and result["readiness"]["ts"] == {"score": None, "pairs": 0}
    assert "higher is better" in (out_dir / "summary.md").read_text()


def test_no_matches_give_counted_infinities_not_averages(sample_dataset, tmp_path, capsys):
    out_dir = tmp_path / "out"
    samples, _ = bench_all(
        "keypoint_matching",
        ["--model", "tests.tasks.test_keypoint_matching:no_matches"],
        sample_dataset,
        out_dir,
        capsys,
    )
    rows = pq.read_table(out_dir / "per_sample_metrics.parquet").to_pylist()
    assert all(row["keypoint_acc"] == 0.0 and row["mean_match_error"] == math.inf for row in rows)
    aggregated = json.loads((out_dir / "result.json").read_text())["aggregated"]["mean_match_error"]
    assert aggregated["inf_count"] == len(samples) and aggregated["count"] == 0 and aggregated["mean"] is None


def test_global_motion_baseline_beats_standing_still(sample_dataset, tmp_path, capsys):
    bench_all("keypoint_matching", ["--model", "identity_matches"], sample_dataset, tmp_path / "still", capsys)
    motion_model = "rpx_tasks.models.keypoint_baselines:global_motion_matches"
    bench_all("keypoint_matching", ["--model", motion_model], sample_dataset, tmp_path / "motion", capsys)
    still = json.loads((tmp_path / "still" / "result.json").read_text())["aggregated"]["mean_match_error"]["mean"]
    motion = json.loads((tmp_path / "motion" / "result.json").read_text())["aggregated"]["mean_match_error"]["mean"]
    assert motion < still / 2


def test_sample_ground_truth_is_consistent_with_the_poses(sample_dataset):
    """Points of frame A reprojected into frame B with the stored depth, intrinsics and poses."""
    entry = json.loads((sample_dataset / manifest_relpath("keypoint_matching", "all")).read_text())["samples"][0]
    true0, true1 = np.load(sample_dataset / entry["points0"]), np.load(sample_dataset / entry["points1"])
    visible = np.load(sample_dataset / entry["visibility"])
    assert true0.dtype == np.float32 and true0.shape == true1.shape and visible.shape == (len(true0),)
    assert entry["id"].count("__") == 3 and entry["frame_idx_b"] > entry["frame_idx"]
    height, width = np.asarray(Image.open(sample_dataset / entry["rgb"])).shape[:2]
    inside = (true1[:, 0] >= -0.5) & (true1[:, 0] < width - 0.5) & (true1[:, 1] >= -0.5) & (true1[:, 1] < height - 0.5)
    assert not (visible & ~inside).any()
    flow = np.linalg.norm(true1 - true0, axis=1)
    assert 0 < np.median(flow) < 10


def test_prediction_objects_with_the_reference_field_names_are_accepted():
    from types import SimpleNamespace

    upstream_style = SimpleNamespace(points0=[[1, 2]], points1=[[3, 4]], scores=None)
    validated = SPEC.validate_prediction(upstream_style, _pair_sample())
    assert isinstance(validated, KeypointMatches) and validated.points1.tolist() == [[3, 4]]
