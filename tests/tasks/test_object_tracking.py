"""object_tracking: TrackletMetrics on hand-computed cases, loader and adapter errors, CLI run."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from rpx_tasks.contracts.tracking import Tracklet, TrackletGroundTruth, TrackletPrediction
from rpx_tasks.decoding import decode_label_map
from rpx_tasks.errors import AdapterError, ConfigError, ManifestError, MetricError, ModelError
from rpx_tasks.manifest import manifest_relpath, resolve_in_root
from rpx_tasks.metrics.tracking import tracking_metrics
from rpx_tasks.model_selection import resolve_model
from rpx_tasks.models.box_baselines import colour_blob_tracks
from rpx_tasks.models.numpy_function import wrap_numpy_function
from rpx_tasks.sample import Sample
from rpx_tasks.tasks import get_task
from rpx_tasks.tasks.object_tracking import load_ground_truth, validate_prediction
from tests.support.bench_cli import bench_all
from tests.support.run_folders import REPORT_FILES

SPEC = get_task("object_tracking")

A1, A2 = [0, 0, 10, 10], [1, 0, 11, 10]  # one object at t = 0 and t = 1
B1, B2 = [50, 50, 60, 60], [51, 50, 61, 60]  # another, far away


def track(track_id, *boxes, scores=None):
    return Tracklet(str(track_id), np.asarray(boxes, np.float32).reshape(-1, 4), scores)


def truth(*tracks):
    return TrackletGroundTruth(list(tracks))


def pred(*tracks):
    return TrackletPrediction(list(tracks))


def counts(result):
    return result["fp"], result["fn"], result["idsw"]


# --------------------------------------------------------------------------- metric


def test_perfect_tracking():
    gt = truth(track("a", A1, A2), track("b", B1, B2))
    result = tracking_metrics(pred(track("x", A1, A2), track("y", B1, B2)), gt)
    assert result == {"mota": 1.0, "idf1": 1.0, "fp": 0.0, "fn": 0.0, "idsw": 0.0}


def test_all_missed():
    result = tracking_metrics(pred(), truth(track("a", A1, A2), track("b", B1, B2)))
    assert counts(result) == (0.0, 4.0, 0.0)
    assert result["mota"] == 0.0 and result["idf1"] == 0.0


def test_false_positives_and_mota_exactly_minus_one():
    gt = truth(track("a", A1))
    result = tracking_metrics(pred(track("x", A1), track("y", B1), track("z", [100, 100, 110, 110])), gt)
    assert counts(result) == (2.0, 0.0, 0.0)
    assert result["mota"] == -1.0  # 1 - 2 / 1
    assert result["idf1"] == pytest.approx(2 / 4)


def test_mota_is_clipped_at_minus_one():
    far = [track(f"f{k}", [100 + 20 * k, 100, 110 + 20 * k, 110]) for k in range(5)]
    result = tracking_metrics(pred(*far), truth(track("a", A1)))
    assert counts(result) == (5.0, 1.0, 0.0)
    assert result["mota"] == -1.0 and result["idf1"] == 0.0  # 1 - 6 / 1 = -5, clipped


def test_id_switch_across_two_time_steps():
    # Prediction "p" follows a at t=0 and jumps to b at t=1: one switch, a missed at t=1, b missed at t=0.
    gt = truth(track("a", A1, A2), track("b", B1, B2))
    result = tracking_metrics(pred(track("p", A1, B2)), gt)
    assert counts(result) == (0.0, 2.0, 1.0)
    assert result["mota"] == pytest.approx(1 - (2 + 0 + 1) / 4)
    assert result["idf1"] == pytest.approx(2 * 2 / (2 * 2 + 0 + 2))


def test_two_predictions_swapping_ids_count_two_switches():
    gt = truth(track("a", A1, A2), track("b", B1, B2))
    result = tracking_metrics(pred(track("p", A1, B2), track("q", B1, A2)), gt)
    assert counts(result) == (0.0, 0.0, 2.0)
    assert result["mota"] == pytest.approx(0.5) and result["idf1"] == 1.0


def test_switch_compares_with_the_last_matched_ground_truth():
    # p: a, b, b -> one switch (at t=1); staying on b at t=2 is no new switch.
    gt = truth(track("a", A1, A1, A1), track("b", B1, B1, B1))
    result = tracking_metrics(pred(track("p", A1, B1, B1)), gt)
    assert result["idsw"] == 1.0 and result["fn"] == 3.0


def test_iou_exactly_one_half_matches_and_just_below_does_not():
    gt = truth(track("a", [0, 0, 2, 1]))
    at_half = tracking_metrics(pred(track("x", [0, 0, 1, 1])), gt)  # inter 1, union 2
    assert counts(at_half) == (0.0, 0.0, 0.0) and at_half["mota"] == 1.0
    below = tracking_metrics(pred(track("x", [0, 0, 0.99, 1])), gt)
    assert counts(below) == (1.0, 1.0, 0.0) and below["mota"] == -1.0


def test_greedy_follows_prediction_order_and_takes_the_best_unmatched_box():
    gt = truth(track("a", [0, 0, 10, 10]), track("b", [5, 0, 15, 10]))
    # First prediction overlaps a (IoU 6/14) and b (IoU 9/11): it takes b; the second takes a.
    result = tracking_metrics(pred(track("x", [4, 0, 14, 10]), track("y", [0, 0, 10, 10])), gt)
    assert counts(result) == (0.0, 0.0, 0.0)
    # Two predictions on one box: the first in order (not the best) takes it.
    single = truth(track("a", [0, 0, 10, 10]))
    result = tracking_metrics(pred(track("x", [0, 0, 10, 8]), track("y", [0, 0, 10, 10])), single)
    assert counts(result) == (1.0, 0.0, 0.0)


def test_steps_without_predictions_are_misses_and_predictions_beyond_t_are_ignored():
    short = tracking_metrics(pred(track("x", A1)), truth(track("a", A1, A2)))
    assert counts(short) == (0.0, 1.0, 0.0)
    assert short["mota"] == pytest.approx(0.5) and short["idf1"] == pytest.approx(2 / 3)
    long = tracking_metrics(pred(track("x", A1, B1, B2)), truth(track("a", A1)))
    assert counts(long) == (0.0, 0.0, 0.0) and long["mota"] == 1.0


def test_no_ground_truth_scores_one_and_leaves_the_counts_undefined():
    expected = {"mota": 1.0, "idf1": 1.0, "fp": None, "fn": None, "idsw": None}
    assert tracking_metrics(pred(track("x", A1)), truth()) == expected
    assert tracking_metrics(pred(), truth(track("a"))) == expected  # tracks of length 0: T = 0


def test_metric_type_errors_name_the_expected_class():
    with pytest.raises(MetricError, match="TrackletGroundTruth"):
        tracking_metrics(pred(), [track("a", A1)])
    with pytest.raises(MetricError, match="TrackletPrediction"):
        tracking_metrics([track("a", A1)], truth())


def test_metric_directions():
    assert SPEC.higher_is_better("mota") and SPEC.higher_is_better("idf1")
    assert not any(SPEC.higher_is_better(name) for name in ("fp", "fn", "idsw"))


# --------------------------------------------------------------------------- loader


def write_mask(path, mask):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(mask, np.uint16)).save(path)


def test_loads_a_tracks_file_inline_tracks_and_the_tracks_dict(tmp_path, resolve):
    tracks = [
        {"track_id": 7, "boxes": [[1, 2, 3, 4], [2, 3, 4, 5]], "scores": [0.9, 0.8]},
        {"track_id": "b", "boxes": [[5, 5, 9, 9]]},
    ]
    (tmp_path / "tracks.json").write_text(json.dumps(tracks))
    gt = load_ground_truth({"id": "s1", "tracks": "tracks.json"}, resolve)
    assert [t.track_id for t in gt.tracks] == ["7", "b"]
    assert gt.tracks[0].boxes.dtype == np.float32 and gt.tracks[0].boxes.shape == (2, 4)
    assert gt.tracks[0].scores.tolist() == pytest.approx([0.9, 0.8]) and gt.tracks[1].scores is None
    inline = load_ground_truth({"id": "s2", "tracks": tracks}, resolve)
    assert [t.boxes.tolist() for t in inline.tracks] == [t.boxes.tolist() for t in gt.tracks]
    wrapped = load_ground_truth({"id": "s3", "tracks": {"tracks": tracks}}, resolve)
    assert len(wrapped.tracks) == 2
    assert load_ground_truth({"id": "s4", "tracks": []}, resolve).tracks == []


def test_tracks_fall_back_to_the_mask(tmp_path, resolve):
    mask = np.zeros((10, 12), np.uint16)
    mask[2:5, 3:7] = 1  # rows 2-4, cols 3-6
    mask[8, 11] = 3
    write_mask(tmp_path / "mask" / "00000.png", mask)
    gt = load_ground_truth({"id": "s", "mask": "mask/00000.png"}, resolve)
    assert [t.track_id for t in gt.tracks] == ["1", "3"]
    assert gt.tracks[0].boxes.tolist() == [[3, 2, 7, 5]] and gt.tracks[1].boxes.tolist() == [[11, 8, 12, 9]]
    assert all(t.boxes.dtype == np.float32 and t.scores is None for t in gt.tracks)
    # A tracks file named but absent also falls back to the mask (0.3.x: "tracks file missing").
    again = load_ground_truth({"id": "s", "mask": "mask/00000.png", "tracks": "tracks/none.json"}, resolve)
    assert [t.boxes.tolist() for t in again.tracks] == [[[3, 2, 7, 5]], [[11, 8, 12, 9]]]
    write_mask(tmp_path / "mask" / "empty.png", np.zeros((4, 4)))
    assert load_ground_truth({"id": "s", "mask": "mask/empty.png"}, resolve).tracks == []


def test_neither_tracks_nor_mask_is_a_manifest_error(resolve):
    with pytest.raises(ManifestError) as info:
        load_ground_truth({"id": "lonely_frame", "rgb": "a.png"}, resolve)
    assert "lonely_frame" in str(info.value) and "tracks" in str(info.value) and "mask" in str(info.value)


def test_missing_and_invalid_files_name_sample_and_file(tmp_path, resolve):
    with pytest.raises(ManifestError) as info:
        load_ground_truth({"id": "f1", "tracks": "tracks/absent.json"}, resolve)
    assert "f1" in str(info.value) and "absent.json" in str(info.value)
    with pytest.raises(ManifestError) as info:
        load_ground_truth({"id": "f2", "mask": "mask/absent.png"}, resolve)
    assert "f2" in str(info.value) and "absent.png" in str(info.value)
    (tmp_path / "bad.json").write_text("[{")
    with pytest.raises(ManifestError) as info:
        load_ground_truth({"id": "f3", "tracks": "bad.json", "mask": "mask/absent.png"}, resolve)
    assert "f3" in str(info.value) and "bad.json" in str(info.value)
    (tmp_path / "mask.png").write_bytes(b"not a png")
    with pytest.raises(ManifestError) as info:
        load_ground_truth({"id": "f4", "mask": "mask.png"}, resolve)
    assert "f4" in str(info.value) and "mask.png" in str(info.value)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "rgb_mask.png")
    with pytest.raises(ManifestError, match="not 2-D"):
        load_ground_truth({"id": "f5", "mask": "rgb_mask.png"}, resolve)


@pytest.mark.parametrize(
    "tracks, words",
    [
        ([{"boxes": [[0, 0, 1, 1]]}], ["track 0", "track_id"]),
        ([{"track_id": "a"}], ["'boxes'"]),
        ([{"track_id": "a", "boxes": [[0, 0, 1]]}], ["(1, 3)", "(T, 4)"]),
        ([{"track_id": "a", "boxes": [[0, 0, 1, "x"]]}], ["not numeric"]),
        ([{"track_id": "a", "boxes": [[0, 0, 1, 1]], "scores": [0.5, 0.5]}], ["2 scores for 1 boxes"]),
        ([{"track_id": "a", "boxes": [[0, 0, 1, float("nan")]]}], ["NaN"]),
        ({"tracklets": []}, ["'tracks'"]),
        ("just text", ["got str"]),
        ([[0, 0, 1, 1]], ["track 0", "list"]),
    ],
)
def test_malformed_tracks_name_sample_file_and_problem(tmp_path, resolve, tracks, words):
    (tmp_path / "t.json").write_text(json.dumps(tracks))
    with pytest.raises(ManifestError) as info:
        load_ground_truth({"id": "frame_t", "tracks": "t.json"}, resolve)
    assert "frame_t" in str(info.value) and "t.json" in str(info.value)
    for word in words:
        assert word in str(info.value)


# --------------------------------------------------------------------------- predictions and adapter


def sample():
    return Sample(id="s", rgb=np.zeros((20, 30, 3), np.uint8), ground_truth=truth(track("a", A1)))


def test_numpy_function_outputs_are_normalised():
    s = sample()
    forms = [
        [{"boxes": [0, 0, 10, 10]}, {"track_id": 5, "boxes": [[1, 1, 2, 2], [2, 2, 3, 3]], "scores": [0.5, 0.25]}],
        {
            "tracks": [
                {"track_id": None, "boxes": np.array([0, 0, 10, 10])},
                {"track_id": "5", "boxes": [[1, 1, 2, 2], [2, 2, 3, 3]], "scores": [0.5, 0.25]},
            ]
        },
        [track("t0", A1), Tracklet("5", [[1, 1, 2, 2], [2, 2, 3, 3]], [0.5, 0.25])],
        pred(track("t0", A1), track("5", [1, 1, 2, 2], [2, 2, 3, 3], scores=np.array([0.5, 0.25]))),
    ]
    for output in forms:
        [prediction] = wrap_numpy_function(SPEC, lambda rgb, out=output: out, "fn").predict([s])
        assert isinstance(prediction, TrackletPrediction)
        assert [t.track_id for t in prediction.tracks] == ["t0", "5"]
        assert prediction.tracks[0].boxes.dtype == np.float32 and prediction.tracks[0].boxes.shape == (1, 4)
        assert prediction.tracks[1].boxes.shape == (2, 4) and prediction.tracks[1].scores.tolist() == [0.5, 0.25]
        checked = validate_prediction(prediction, s)
        assert counts(tracking_metrics(checked, s.ground_truth)) == (1.0, 0.0, 0.0)  # "5" at t=0 is a false positive
    [empty] = wrap_numpy_function(SPEC, lambda rgb: [], "none").predict([s])
    assert empty.tracks == []


@pytest.mark.parametrize(
    "output, words",
    [
        ({"boxes": [[0, 0, 1, 1]]}, ["'tracks'"]),
        ([{"track_id": "a", "box": [0, 0, 1, 1]}], ["track 0", "'boxes'"]),
        ([{"track_id": "a", "boxes": np.zeros((2, 3))}], ["track 0", "(2, 3)"]),
        ([{"track_id": "a", "boxes": [[0, 0, 1, 1]], "scores": [0.1, 0.2]}], ["2 scores for 1 boxes"]),
        (np.zeros((2, 4)), ["ndarray"]),
        ([(0, 0, 1, 1)], ["track 0", "tuple"]),
    ],
)
def test_adapter_errors_name_the_bad_key_or_shape(output, words):
    model = wrap_numpy_function(SPEC, lambda rgb: output, "bad")
    with pytest.raises(AdapterError) as info:
        model.predict([sample()])
    assert "'s'" in str(info.value)
    for word in words:
        assert word in str(info.value)


def test_validation_errors_are_model_errors():
    with pytest.raises(ModelError, match="TrackletPrediction"):
        validate_prediction("tracks", sample())
    with pytest.raises(ModelError, match="NaN"):
        validate_prediction(pred(track("a", [0, 0, np.inf, 1])), sample())


def test_hf_checkpoint_is_a_config_error_with_the_numpy_signature():
    with pytest.raises(ConfigError) as info:
        resolve_model(SPEC, hf_checkpoint="org/some-tracker")
    assert "track_id" in str(info.value) and "hint" in str(info.value)


# --------------------------------------------------------------------------- baseline


def test_colour_blob_baseline_boxes_saturated_objects_with_colour_ids():
    rgb = np.full((40, 60, 3), 128, np.uint8)
    rgb[5:15, 5:12] = (220, 30, 30)  # red
    rgb[20:35, 40:50] = (30, 30, 220)  # blue
    rgb[25:32, 10:16] = (210, 40, 35)  # a second red blob
    tracks = colour_blob_tracks(rgb)
    assert [t["track_id"] for t in tracks] == ["red", "red-2", "blue"]
    assert [np.asarray(t["boxes"]).tolist() for t in tracks] == [
        [[5, 5, 12, 15]],
        [[10, 25, 16, 32]],
        [[40, 20, 50, 35]],
    ]
    prediction = validate_prediction(tracks, sample())
    gt = truth(track("1", [5, 5, 12, 15]), track("2", [40, 20, 50, 35]))
    assert counts(tracking_metrics(prediction, gt)) == (1.0, 0.0, 0.0)


# --------------------------------------------------------------------------- end to end


def _ground_truth_count(root, entry):
    if "tracks" in entry:
        return len(json.loads((root / entry["tracks"]).read_text()))
    mask = decode_label_map(root / entry["mask"], entry["id"])
    return len(np.unique(mask[mask > 0]))


def test_cli_run_on_sample_data(sample_dataset, tmp_path, capsys):
    out_dir = tmp_path / "out"
    samples, out = bench_all("object_tracking", ["--model", "colour_blob_tracker"], sample_dataset, out_dir, capsys)
    assert "mota" in out and "Weighted Phase Score" in out
    assert sorted(p.name for p in out_dir.iterdir()) == REPORT_FILES

    with_tracks = [entry for entry in samples if "tracks" in entry]
    assert 0 < len(with_tracks) < len(samples) and all("mask" in entry for entry in samples)
    rows = {row["id"]: row for row in pq.read_table(out_dir / "per_sample_metrics.parquet").to_pylist()}
    assert len(rows) == len(samples)
    assert {"mota", "idf1", "fp", "fn", "idsw"} <= set(next(iter(rows.values())))
    undefined = 0
    for entry in samples:
        row, n_gt = rows[entry["id"]], _ground_truth_count(sample_dataset, entry)
        if n_gt == 0:
            undefined += 1
            assert row["mota"] == 1.0 and row["idf1"] == 1.0 and row["fp"] is None and row["fn"] is None
            continue
        # Single-step samples: no switches, and MOTA / IDF1 follow from the counts.
        assert row["idsw"] == 0.0 and 0 <= row["fn"] <= n_gt
        assert row["mota"] == pytest.approx(max(-1.0, 1 - (row["fn"] + row["fp"]) / n_gt), abs=1e-9)
        tp = n_gt - row["fn"]
        assert row["idf1"] == pytest.approx(2 * tp / max(2 * tp + row["fp"] + row["fn"], 1), abs=1e-9)
    assert undefined > 0

    result = json.loads((out_dir / "result.json").read_text())
    assert result["task"] == "object_tracking" and result["readiness"]["primary_metric"] == "mota"
    assert result["aggregated"]["mota"]["higher_is_better"] is True
    assert result["aggregated"]["fp"]["missing_count"] == undefined
    assert 0.0 < result["aggregated"]["mota"]["mean"] < 1.0
    assert "higher is better" in (out_dir / "summary.md").read_text()


def test_sample_tracks_match_the_mask_boxes_of_listed_objects(sample_dataset):
    samples = json.loads((sample_dataset / manifest_relpath("object_tracking", "hard")).read_text())["samples"]
    entry = next(e for e in samples if "tracks" in e and json.loads((sample_dataset / e["tracks"]).read_text()))

    def resolve(value, sample_id, key):
        return resolve_in_root(sample_dataset, value, sample_id=sample_id, key=key)

    from_tracks = {t.track_id: t.boxes.tolist() for t in load_ground_truth(entry, resolve).tracks}
    from_mask = {
        t.track_id: t.boxes.tolist()
        for t in load_ground_truth({k: v for k, v in entry.items() if k != "tracks"}, resolve).tracks
    }
    assert from_tracks and all(from_mask[track_id] == boxes for track_id, boxes in from_tracks.items())
