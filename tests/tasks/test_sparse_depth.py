"""sparse_depth: SparseDepthError on hand-computed cases, loader and adapter errors, CLI run."""

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest

from rpx_tasks.contracts.sparse_depth import SparseDepthGroundTruth, SparseDepthPrediction
from rpx_tasks.dataset import open_split
from rpx_tasks.errors import AdapterError, ConfigError, ManifestError, MetricError, ModelError
from rpx_tasks.manifest import manifest_relpath
from rpx_tasks.metrics.sparse_depth import sparse_depth_metrics
from rpx_tasks.model_selection import resolve_model
from rpx_tasks.models.baselines import ground_plane_depth
from rpx_tasks.models.numpy_function import wrap_numpy_function
from rpx_tasks.sample import Sample
from rpx_tasks.tasks import get_task
from rpx_tasks.tasks.sparse_depth import load_ground_truth, validate_prediction
from tests.support.bench_cli import bench_all
from tests.support.run_folders import REPORT_FILES

SPEC = get_task("sparse_depth")


def gt(coords, depths):
    return SparseDepthGroundTruth(np.asarray(coords, np.float32).reshape(-1, 2), np.asarray(depths, np.float32))


def pred(coords, depths):
    return SparseDepthPrediction(np.asarray(coords, np.float32).reshape(-1, 2), np.asarray(depths, np.float32))


def approx(expected):
    return pytest.approx(expected, abs=1e-6)


# --------------------------------------------------------------------------- metric


def test_perfect_prediction_scores_zero():
    truth = gt([[3, 4], [10, 20]], [1.5, 2.5])
    assert sparse_depth_metrics(pred([[3, 4], [10, 20]], [1.5, 2.5]), truth) == {
        "sparse_absrel": 0.0,
        "sparse_rmse": 0.0,
    }


def test_no_ground_truth_scores_zero_whatever_is_predicted():
    assert sparse_depth_metrics(pred([[1, 1]], [9.0]), gt([], [])) == {"sparse_absrel": 0.0, "sparse_rmse": 0.0}
    assert sparse_depth_metrics(pred([], []), gt([], [])) == {"sparse_absrel": 0.0, "sparse_rmse": 0.0}


def test_no_predictions_give_relative_error_one_per_point_not_the_raw_depth():
    # Upstream added d (1.0 and 4.0 -> 2.5); this project adds the relative error 1.0 per point.
    result = sparse_depth_metrics(pred([], []), gt([[0, 0], [5, 5]], [1.0, 4.0]))
    assert result["sparse_absrel"] == approx(1.0)
    assert result["sparse_rmse"] == approx(math.sqrt((1.0 + 16.0) / 2))


def test_partial_match_hand_computed():
    # Point 1: nearest prediction 1 px away -> pd 2.5: abs 0.25, sq 0.25.
    # Point 2: nearest prediction ~13.45 px away -> pd 0: abs 1, sq 16.
    result = sparse_depth_metrics(pred([[11, 10], [30, 30]], [2.5, 1.0]), gt([[10, 10], [20, 20]], [2.0, 4.0]))
    assert result["sparse_absrel"] == approx((0.25 + 1.0) / 2)
    assert result["sparse_rmse"] == approx(math.sqrt((0.25 + 16.0) / 2))


def test_radius_is_inclusive_at_exactly_two_pixels():
    truth = gt([[10, 10]], [2.0])
    at_edge = sparse_depth_metrics(pred([[12, 10]], [3.0]), truth)  # distance exactly 2
    assert at_edge["sparse_absrel"] == approx(0.5) and at_edge["sparse_rmse"] == approx(1.0)
    diagonal = sparse_depth_metrics(pred([[12, 11]], [3.0]), truth)  # sqrt(5) > 2 -> depth 0
    assert diagonal["sparse_absrel"] == approx(1.0) and diagonal["sparse_rmse"] == approx(2.0)
    beyond = sparse_depth_metrics(pred([[12.001, 10]], [3.0]), truth)
    assert beyond["sparse_absrel"] == approx(1.0)


def test_nearest_prediction_wins_and_ties_go_to_the_first():
    truth = gt([[0, 0]], [1.0])
    nearest = sparse_depth_metrics(pred([[1.5, 0], [0, 0.5]], [1.5, 1.2]), truth)
    assert nearest["sparse_absrel"] == approx(0.2)
    tie = sparse_depth_metrics(pred([[1, 0], [0, 1]], [1.5, 1.1]), truth)
    assert tie["sparse_absrel"] == approx(0.5)


def test_zero_ground_truth_depth_uses_the_1e6_floor():
    result = sparse_depth_metrics(pred([[0, 0]], [1e-6]), gt([[0, 0]], [0.0]))
    assert result["sparse_absrel"] == pytest.approx(1.0, rel=1e-3)


def test_metric_type_errors_name_the_expected_class():
    with pytest.raises(MetricError, match="SparseDepthGroundTruth"):
        sparse_depth_metrics(pred([], []), {"coordinates": []})
    with pytest.raises(MetricError, match="SparseDepthPrediction"):
        sparse_depth_metrics(np.zeros(3), gt([], []))


def test_metric_directions():
    assert SPEC.higher_is_better("sparse_absrel") is False and SPEC.higher_is_better("sparse_rmse") is False


# --------------------------------------------------------------------------- loader


def test_loads_npy_json_and_inline_encodings(tmp_path, resolve):
    np.save(tmp_path / "coords.npy", np.array([[1, 2], [3, 4]], np.float64))
    (tmp_path / "depths.json").write_text("[1.25, 2.5]")
    truth = load_ground_truth({"id": "s1", "coordinates": "coords.npy", "depths": "depths.json"}, resolve)
    assert truth.coordinates.dtype == np.float32 and truth.coordinates.tolist() == [[1, 2], [3, 4]]
    assert truth.depths.dtype == np.float32 and truth.depths.tolist() == [1.25, 2.5]
    inline = load_ground_truth({"id": "s2", "coordinates": [[5, 6]], "depths": [3.0]}, resolve)
    assert inline.coordinates.tolist() == [[5, 6]] and inline.depths.tolist() == [3.0]
    empty = load_ground_truth({"id": "s3", "coordinates": [], "depths": []}, resolve)
    assert empty.coordinates.shape == (0, 2) and empty.depths.shape == (0,)


def test_missing_file_names_sample_and_file(resolve):
    with pytest.raises(ManifestError) as info:
        load_ground_truth({"id": "frame_7", "coordinates": "sparse/missing.npy", "depths": [1.0]}, resolve)
    assert "frame_7" in str(info.value) and "missing.npy" in str(info.value)


def test_unreadable_npy_and_invalid_json_name_sample_and_file(tmp_path, resolve):
    (tmp_path / "broken.npy").write_bytes(b"not a numpy file")
    with pytest.raises(ManifestError) as info:
        load_ground_truth({"id": "frame_8", "coordinates": "broken.npy", "depths": [1.0]}, resolve)
    assert "frame_8" in str(info.value) and "broken.npy" in str(info.value)
    (tmp_path / "bad.json").write_text("[1.0, ")
    with pytest.raises(ManifestError) as info:
        load_ground_truth({"id": "frame_9", "coordinates": [[0, 0]], "depths": "bad.json"}, resolve)
    assert "frame_9" in str(info.value) and "bad.json" in str(info.value)


@pytest.mark.parametrize(
    "coordinates, depths, words",
    [
        ([[1, 2, 3]], [1.0], ["coordinates", "(N, 2)"]),
        ([["a", "b"]], [1.0], ["coordinates"]),
        ([[1, 2], [3, 4]], [1.0], ["2 points", "1 values"]),
        ([[1, 2]], [float("nan")], ["depths", "NaN"]),
    ],
)
def test_malformed_arrays_are_manifest_errors(resolve, coordinates, depths, words):
    with pytest.raises(ManifestError) as info:
        load_ground_truth({"id": "frame_x", "coordinates": coordinates, "depths": depths}, resolve)
    assert "frame_x" in str(info.value)
    for word in words:
        assert word in str(info.value)


def test_manifest_without_depths_key_fails_when_opened(tmp_path):
    manifest = tmp_path / manifest_relpath("sparse_depth", "hard")
    manifest.parent.mkdir(parents=True)
    manifest.write_text(
        json.dumps(
            {
                "task": "sparse_depth",
                "root": None,
                "samples": [{"id": "only_coords", "rgb": "a.png", "coordinates": [[0, 0]]}],
            }
        )
    )
    with pytest.raises(ManifestError) as info:
        open_split(manifest, SPEC)
    assert "only_coords" in str(info.value) and "depths" in str(info.value)


# --------------------------------------------------------------------------- predictions and adapter


def sample(coords=((1, 2), (3, 4)), depths=(1.0, 2.0)):
    return Sample(id="s", rgb=np.zeros((8, 10, 3), np.uint8), ground_truth=gt(list(coords), list(depths)))


def test_numpy_function_gets_the_coordinates_and_they_are_passed_back_unchanged():
    seen = {}

    def fn(rgb, coords):
        seen["args"] = (rgb.shape, coords.dtype, coords.shape)
        coords[:] = -1  # must not reach the ground truth
        return [1.0, 2.0]

    s = sample()
    [prediction] = wrap_numpy_function(SPEC, fn, "fn").predict([s])
    assert seen["args"] == ((8, 10, 3), np.float32, (2, 2))
    assert prediction.coordinates.tolist() == [[1, 2], [3, 4]] and s.ground_truth.coordinates.tolist() == [
        [1, 2],
        [3, 4],
    ]
    assert prediction.depths.dtype == np.float32 and prediction.depths.tolist() == [1.0, 2.0]
    assert sparse_depth_metrics(validate_prediction(prediction, s), s.ground_truth)["sparse_absrel"] == 0.0
    [column] = wrap_numpy_function(SPEC, lambda rgb, coords: np.ones((2, 1)), "col").predict([s])
    assert column.depths.shape == (2,)


@pytest.mark.parametrize(
    "output, words",
    [
        (np.ones(3), ["(3,)", "expected (2,)"]),
        (np.ones((2, 2)), ["(2, 2)"]),
        ({"depth": [1.0, 2.0]}, ["'depths'"]),
        ("two", ["str", "not an array"]),
    ],
)
def test_adapter_errors_say_what_is_wrong(output, words):
    model = wrap_numpy_function(SPEC, lambda rgb, coords: output, "bad")
    with pytest.raises(AdapterError) as info:
        model.predict([sample()])
    for word in words:
        assert word in str(info.value)
    assert "'s'" in str(info.value)


@pytest.mark.parametrize(
    "prediction, words",
    [
        ([1.0, 2.0], ["SparseDepthPrediction", "list"]),
        ({"depths": [1.0]}, ["'coordinates'"]),
        (pred([[0, 0], [1, 1]], [1.0]), ["depths"]),
        (SparseDepthPrediction(np.zeros((1, 3)), np.zeros(1)), ["(M, 2)"]),
        (pred([[0, 0]], [np.inf]), ["NaN or inf"]),
    ],
)
def test_validation_errors_are_model_errors(prediction, words):
    with pytest.raises(ModelError) as info:
        validate_prediction(prediction, sample())
    for word in words:
        assert word in str(info.value)


def test_validation_accepts_a_dict():
    result = validate_prediction({"coordinates": [[1, 2]], "depths": [3]}, sample())
    assert isinstance(result, SparseDepthPrediction) and result.depths.dtype == np.float32


def test_hf_checkpoint_is_a_config_error_with_the_numpy_signature():
    with pytest.raises(ConfigError) as info:
        resolve_model(SPEC, hf_checkpoint="org/some-depth-model")
    assert "coords" in str(info.value) and "hint" in str(info.value)


# --------------------------------------------------------------------------- end to end


def _ground_truth(sample_dataset, entry):
    coords = np.load(sample_dataset / entry["coordinates"]).astype(np.float32)
    depths = np.asarray(json.loads((sample_dataset / entry["depths"]).read_text()), np.float32)
    return coords, depths


def test_cli_run_on_sample_data_matches_the_formula(sample_dataset, tmp_path, capsys):
    out_dir = tmp_path / "out"
    samples, out = bench_all("sparse_depth", ["--model", "sparse_ground_plane_prior"], sample_dataset, out_dir, capsys)
    assert "sparse_absrel" in out and "Weighted Phase Score" in out
    assert sorted(p.name for p in out_dir.iterdir()) == REPORT_FILES
    rows = {row["id"]: row for row in pq.read_table(out_dir / "per_sample_metrics.parquet").to_pylist()}
    assert len(rows) == len(samples) and {"sparse_absrel", "sparse_rmse"} <= set(next(iter(rows.values())))
    assert {"npy", "json"} == {samples[0]["coordinates"].rsplit(".", 1)[1], samples[0]["depths"].rsplit(".", 1)[1]}
    from PIL import Image

    for entry in samples:
        coords, depths = _ground_truth(sample_dataset, entry)
        assert len(coords) == 32 and (depths > 0).all()
        rgb = np.asarray(Image.open(sample_dataset / entry["rgb"]).convert("RGB"))
        dense = ground_plane_depth(rgb)
        # The model answers at the query pixels, so every point is matched at distance 0.
        pd = dense[np.rint(coords[:, 1]).astype(int), np.rint(coords[:, 0]).astype(int)].astype(np.float64)
        row = rows[entry["id"]]
        assert row["sparse_absrel"] == pytest.approx(np.mean(np.abs(pd - depths) / depths), abs=1e-5)
        assert row["sparse_rmse"] == pytest.approx(np.sqrt(np.mean((pd - depths) ** 2)), abs=1e-5)
    result = json.loads((out_dir / "result.json").read_text())
    assert result["task"] == "sparse_depth" and result["readiness"]["primary_metric"] == "sparse_rmse"
    assert result["aggregated"]["sparse_absrel"]["higher_is_better"] is False
    assert 0.05 < result["aggregated"]["sparse_absrel"]["mean"] < 0.5
    assert result["readiness"]["wps"]["s_overall"] is not None
    assert "lower is better" in (out_dir / "summary.md").read_text()


def test_cli_run_with_an_import_path(sample_dataset, tmp_path, capsys):
    out_dir = tmp_path / "out"
    samples, _ = bench_all(
        "sparse_depth",
        ["--model", "rpx_tasks.models.sparse_depth_baselines:constant_at_points"],
        sample_dataset,
        out_dir,
        capsys,
    )
    rows = {row["id"]: row for row in pq.read_table(out_dir / "per_sample_metrics.parquet").to_pylist()}
    for entry in samples[:6]:
        _, depths = _ground_truth(sample_dataset, entry)
        assert rows[entry["id"]]["sparse_absrel"] == pytest.approx(np.mean(np.abs(2.0 - depths) / depths), abs=1e-5)
