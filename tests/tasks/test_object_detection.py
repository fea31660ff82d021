"""object_detection: metrics on hand-computed cases, loader / adapter / validation errors, the
colour-blob baseline end to end through the CLI, and the HF fast path on a tiny YOLOS."""

from __future__ import annotations

import copy
import json
import time

import numpy as np
import pytest

from rpx_tasks.contracts.boxes import BoxPrediction, DetectionGroundTruth
from rpx_tasks.dataset import open_split
from rpx_tasks.errors import AdapterError, ConfigError, ManifestError, ModelError
from rpx_tasks.manifest import manifest_relpath
from rpx_tasks.metrics.detection import detection_metrics
from rpx_tasks.model_selection import resolve_model
from rpx_tasks.models.numpy_function import wrap_numpy_function
from rpx_tasks.sample import Sample
from rpx_tasks.tasks import get_task
from tests.support.bench_cli import bench
from tests.support.boxes import check_report, reference_detection, resolver

SPEC = get_task("object_detection")
A = [0, 0, 10, 10]


def metrics(pred_boxes, scores, labels, gt_boxes, gt_labels):
    return detection_metrics(
        np.asarray(pred_boxes, np.float32).reshape(-1, 4),
        scores,
        labels,
        np.asarray(gt_boxes, np.float32).reshape(-1, 4),
        gt_labels,
    )


def prf(p, r, f):
    return {
        "precision": pytest.approx(p, abs=1e-9),
        "recall": pytest.approx(r, abs=1e-9),
        "f1": pytest.approx(f, abs=1e-9),
    }


# --------------------------------------------------------------------------- metrics


def test_perfect_detections():
    assert metrics([A, [20, 20, 30, 40]], [0.9, 0.8], ["box", "cup"], [[20, 20, 30, 40], A], ["cup", "box"]) == prf(
        1, 1, 1
    )


def test_both_empty_is_perfect_and_no_predictions_is_zero():
    assert metrics([], [], [], [], []) == prf(1, 1, 1)
    assert metrics([], [], [], [A], ["box"]) == prf(0, 0, 0)


def test_predictions_without_ground_truth_are_false_positives():
    assert metrics([A, A], [0.5, 0.4], ["box", "box"], [], []) == prf(0, 0, 0)


def test_label_mismatch_is_no_match():
    assert metrics([A], [0.9], ["cup"], [A], ["box"]) == prf(0, 0, 0)


def test_a_prediction_takes_the_best_box_of_its_own_label():
    # The "box" GT overlaps more, but only the "cup" GT (IoU 0.6) has the prediction's label.
    result = metrics([[0, 0, 10, 10]], [0.9], ["cup"], [[0, 0, 10, 10], [0, 0, 10, 6]], ["box", "cup"])
    assert result == prf(1, 0.5, 2 / 3)


def test_iou_threshold_edge():
    assert metrics([[0, 0, 10, 5]], [1.0], ["box"], [A], ["box"]) == prf(1, 1, 1)  # IoU exactly 0.5
    assert metrics([[0, 0, 10, 4.99]], [1.0], ["box"], [A], ["box"]) == prf(0, 0, 0)  # IoU 0.499


def test_greedy_order_is_by_descending_score():
    gt_boxes, gt_labels = [[0, 0, 10, 10], [5, 0, 15, 10]], ["box", "box"]
    x, y = [2, 0, 12, 10], [0, 0, 10, 10]  # x: IoU 0.667 with GT0, 0.538 with GT1; y: 1.0 with GT0, 0.333 with GT1
    # x first takes GT0 and y is left with IoU 0.333: one match.
    assert metrics([x, y], [0.9, 0.8], ["box", "box"], gt_boxes, gt_labels) == prf(0.5, 0.5, 0.5)
    # y first takes GT0, then x takes GT1: two matches, whatever order the model listed them in.
    assert metrics([x, y], [0.8, 0.9], ["box", "box"], gt_boxes, gt_labels) == prf(1, 1, 1)
    # Equal scores keep the model's order.
    assert metrics([x, y], [0.5, 0.5], ["box", "box"], gt_boxes, gt_labels) == prf(0.5, 0.5, 0.5)
    assert metrics([y, x], [0.5, 0.5], ["box", "box"], gt_boxes, gt_labels) == prf(1, 1, 1)


def test_a_ground_truth_box_is_consumed_once():
    assert metrics([A, A, [0, 0, 10, 9]], [0.9, 0.8, 0.7], ["box"] * 3, [A], ["box"]) == prf(1 / 3, 1, 0.5)


def test_integer_labels_match_their_text():
    assert metrics([A], [1.0], [3], [A], ["3"]) == prf(1, 1, 1)


def test_metric_directions():
    assert all(SPEC.higher_is_better(name) for name in ("precision", "recall", "f1"))


# --------------------------------------------------------------------------- ground truth


def test_boxes_from_a_json_file_and_inline(tmp_path):
    items = [{"bbox": [1, 2, 3, 4], "label": "box"}, {"bbox": [5, 6, 7, 8], "label": 7}]
    (tmp_path / "b.json").write_text(json.dumps(items))
    for value in ("b.json", items):
        truth = SPEC.load_ground_truth({"id": "s1", "boxes": value}, resolver(tmp_path))
        assert isinstance(truth, DetectionGroundTruth)
        assert truth.boxes.dtype == np.float32 and truth.boxes.tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]]
        assert truth.labels == ["box", "7"]
    empty = SPEC.load_ground_truth({"id": "s1", "boxes": []}, resolver(tmp_path))
    assert empty.boxes.shape == (0, 4) and empty.labels == []


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "not found"),
        ("{", "not valid JSON"),
        ('{"bbox": [1, 2, 3, 4], "label": "a"}', "must be a list of boxes"),
        ('[{"label": "a"}]', "item 0 has no 'bbox'"),
        ('[{"bbox": [1, 2, 3, 4]}]', "item 0 has no 'label'"),
        ('[{"bbox": [1, 2, 3, 4], "label": "a"}, {"bbox": [1, 2, 3], "label": "a"}]', "item 1 has bbox"),
        ('[{"bbox": ["x", 2, 3, 4], "label": "a"}]', "not four finite numbers"),
        ('[{"bbox": [1, 2, 3, 4], "label": null}]', "not a string"),
        ("[[1, 2, 3, 4]]", "item 0 is [1, 2, 3, 4]"),
    ],
)
def test_bad_boxes_file_is_a_manifest_error_naming_sample_and_file(tmp_path, content, message):
    if content is not None:
        (tmp_path / "b.json").write_text(content)
    with pytest.raises(ManifestError) as info:
        SPEC.load_ground_truth({"id": "scene_9__0__00001", "boxes": "b.json"}, resolver(tmp_path))
    text = str(info.value)
    assert message in text and "scene_9__0__00001" in text and "b.json" in text


def test_manifest_without_boxes_or_with_escaping_boxes(tmp_path):
    manifest = tmp_path / manifest_relpath("object_detection", "hard")
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"task": "object_detection", "samples": [{"id": "a", "rgb": "a.png"}]}))
    with pytest.raises(ManifestError, match="'a'.*no 'boxes' field"):
        open_split(manifest, SPEC)
    manifest.write_text(
        json.dumps(
            {"task": "object_detection", "samples": [{"id": "a", "phase": 0, "rgb": "a.png", "boxes": "../x.json"}]}
        )
    )
    with pytest.raises(ManifestError, match="escapes the dataset root"):
        open_split(manifest, SPEC)


# --------------------------------------------------------------------------- numpy adapter and validation


def frame(sample_id="f0"):
    return Sample(
        id=sample_id,
        rgb=np.zeros((20, 30, 3), np.uint8),
        ground_truth=DetectionGroundTruth(np.zeros((0, 4), np.float32), []),
    )


def run_fn(fn, sample=None):
    return wrap_numpy_function(SPEC, fn, "fn").predict([sample or frame()])[0]


def test_dict_and_tuple_results_are_normalised():
    out = run_fn(
        lambda rgb: {"boxes": [1, 2, 3, 4, 5, 6, 7, 8], "scores": [[0.5], [0.25]], "labels": np.array(["a", "b"])}
    )
    assert out.boxes.dtype == np.float32 and out.boxes.shape == (2, 4) and out.scores.tolist() == [0.5, 0.25]
    assert out.labels == ["a", "b"]
    out = run_fn(lambda rgb: (np.zeros((0, 4)), [], []))
    assert out.boxes.shape == (0, 4) and out.labels == []
    assert SPEC.validate_prediction(out, frame()) is not None


@pytest.mark.parametrize(
    "result, message",
    [
        ({"boxes": [A], "scores": [1.0]}, "missing required keys: ['labels']"),
        ([[0, 0, 1, 1]], "must return a dict with keys ['boxes', 'scores', 'labels'] or a 3-tuple; got list"),
        (([A], [1.0]), "got a 2-tuple"),
        ({"boxes": [1, 2, 3], "scores": [1.0], "labels": ["a"]}, "does not reshape to (N, 4)"),
        ({"boxes": [A, A], "scores": [1.0], "labels": ["a", "b"]}, "2 boxes, 1 scores and 2 labels"),
        ({"boxes": [A], "scores": [1.0], "labels": "a"}, "'labels' must be a list"),
        ({"boxes": [A], "scores": [1.0], "labels": [None]}, "every label must be a string"),
        ({"boxes": [[0, 0, np.nan, 1]], "scores": [1.0], "labels": ["a"]}, "non-finite boxes"),
        ({"boxes": "abc", "scores": [1.0], "labels": ["a"]}, "must be numeric arrays"),
    ],
)
def test_adapter_errors_say_what_is_wrong(result, message):
    with pytest.raises(AdapterError) as info:
        run_fn(lambda rgb: result, frame("s7"))
    assert message in str(info.value) and "s7" in str(info.value)


def test_adapter_error_details_carry_the_counts():
    with pytest.raises(AdapterError) as info:
        run_fn(lambda rgb: {"boxes": [A, A], "scores": [1.0], "labels": ["a"]})
    assert (
        info.value.details["n_boxes"] == 2
        and info.value.details["n_scores"] == 1
        and info.value.details["n_labels"] == 1
    )


def test_validation_of_any_models_predictions():
    sample = frame("v1")
    ok = SPEC.validate_prediction({"boxes": np.array([A], np.float64), "scores": [0.3], "labels": ["box"]}, sample)
    assert isinstance(ok, BoxPrediction) and ok.boxes.dtype == np.float32
    with pytest.raises(ModelError, match=r"Detection boxes must have shape \[N, 4\]; got \(1, 3\)"):
        SPEC.validate_prediction({"boxes": [[1, 2, 3]], "scores": [1.0], "labels": ["a"]}, sample)
    with pytest.raises(ModelError) as info:
        SPEC.validate_prediction(BoxPrediction(np.zeros((2, 4), np.float32), np.zeros(3, np.float32), ["a"]), sample)
    assert info.value.details == {"sample": "v1", "n_boxes": 2, "n_scores": 3, "n_labels": 1}
    with pytest.raises(ModelError) as info:
        SPEC.validate_prediction(np.zeros((1, 4)), sample)
    assert "check your model's predict() return type for object_detection" in info.value.hint


# --------------------------------------------------------------------------- end to end


def test_baseline_end_to_end_matches_the_reference_formulas(sample_dataset, tmp_path, capsys):
    manifest = sample_dataset / manifest_relpath("object_detection", "all")
    out_dir = tmp_path / "out"
    assert (
        bench("object_detection", manifest, out_dir, "--model", "rpx_tasks.models.box_baselines:detect_objects") == 0
    ), capsys.readouterr().err
    rows = check_report(out_dir, SPEC, manifest)
    assert 0.1 < sum(r["f1"] for r in rows) / len(rows) < 1.0  # meaningful, not perfect

    from rpx_tasks.models.box_baselines import detect_objects

    model = wrap_numpy_function(SPEC, detect_objects, "b")
    split = open_split(manifest, SPEC)
    by_id = {row["id"]: row for row in rows}
    for batch in split.iter_batches(8):
        for sample, prediction in zip(batch, model.predict(batch)):
            expected = reference_detection(prediction, sample.ground_truth.boxes.tolist(), sample.ground_truth.labels)
            for name, value in expected.items():
                assert by_id[sample.id][name] == pytest.approx(value, abs=1e-5), (sample.id, name)


def test_registered_baseline_by_name(sample_dataset, tmp_path, capsys):
    manifest = sample_dataset / manifest_relpath("object_detection", "hard")
    assert bench("object_detection", manifest, tmp_path, "--model", "colour_blob_detector") == 0, (
        capsys.readouterr().err
    )
    assert json.loads((tmp_path / "result.json").read_text())["model"] == "colour_blob_detector"


# --------------------------------------------------------------------------- HF fast path (tiny YOLOS)


@pytest.fixture(scope="module")
def yolos_cache(tmp_path_factory):
    from tests.support.hf_seed_detection import seed_tiny_yolos

    cache = tmp_path_factory.mktemp("hf-yolos")
    seed_tiny_yolos(cache)
    return cache


def rgb_sample(seed, h=48, w=64):
    rgb = np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    return Sample(id=f"h{seed}", rgb=rgb, ground_truth=DetectionGroundTruth(np.zeros((0, 4), np.float32), []))


def test_hf_detection_loads_offline_and_predicts_frame_boxes(offline, yolos_cache):
    from tests.support.hf_seed_detection import TINY_CLASSES

    model = resolve_model(SPEC, model_name="yolos_small", cache_dir=str(yolos_cache), model_kwargs={"threshold": 0.0})
    assert model.name == "yolos_small" and model.task == "object_detection"
    model.setup()
    # It runs with SDPA; the FLOP pass's deep copy switches to eager attention, so FLOPs are counted on CPU.
    assert copy.deepcopy(model).torch_module.config._attn_implementation == "eager"
    batch = [rgb_sample(0), rgb_sample(1, 40, 30), rgb_sample(2)]
    calls = []
    handle = model.torch_module.register_forward_hook(lambda *args: calls.append(1))
    try:
        predictions = model.predict(batch)
    finally:
        handle.remove()
    assert len(calls) == 2  # one forward per frame size
    for sample, prediction in zip(batch, predictions):
        valid = SPEC.validate_prediction(prediction, sample)
        h, w = sample.rgb.shape[:2]
        assert len(valid.boxes) == 10 and set(valid.labels) <= set(TINY_CLASSES)
        assert (valid.boxes[:, [0, 2]] >= 0).all() and (valid.boxes[:, [0, 2]] <= w).all()
        assert (valid.boxes[:, [1, 3]] >= 0).all() and (valid.boxes[:, [1, 3]] <= h).all()
        assert (np.diff(valid.scores) <= 0).all()
        (alone,) = model.predict([sample])
        np.testing.assert_allclose(alone.boxes, valid.boxes, atol=1e-3)
    assert not np.allclose(predictions[0].scores, predictions[2].scores)


def test_hf_detection_end_to_end_through_the_cli(offline, yolos_cache, sample_dataset, tmp_path, capsys):
    manifest = sample_dataset / manifest_relpath("object_detection", "hard")
    code = bench(
        "object_detection",
        manifest,
        tmp_path,
        "--hf-checkpoint",
        "hustvl/yolos-small",
        "--cache-dir",
        str(yolos_cache),
        "--max-samples",
        "4",
        "--batch-size",
        "2",
    )
    assert code == 0, capsys.readouterr().err
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["num_samples"] == 4 and result["compute"]["params_m"] > 0
    assert result["aggregated"]["f1"]["count"] == 4


def test_hf_detection_rejects_other_models_and_unknown_checkpoints(offline, yolos_cache, tmp_path):
    from transformers import BertConfig

    from rpx_tasks.models.hf_detection import load_hf_detection_model

    BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8).save_pretrained(tmp_path)
    with pytest.raises(ModelError, match="'bert' model, not an object-detection model") as info:
        load_hf_detection_model(str(tmp_path))
    assert "yolos" in info.value.hint
    start = time.monotonic()
    with pytest.raises(ModelError) as info:
        load_hf_detection_model("nobody/not-a-detector", cache_dir=str(yolos_cache))
    assert time.monotonic() - start < 5.0 and "HF_HUB_OFFLINE=1" in info.value.hint
    with pytest.raises(ConfigError, match="trust_remote_code"):
        load_hf_detection_model("hustvl/yolos-small", cache_dir=str(yolos_cache), trust_remote_code=True)
