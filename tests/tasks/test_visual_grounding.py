"""visual_grounding: top-1 IoU / accuracy on hand-computed cases, the three box encodings and
their errors, numpy-function outputs, the CLI run on the sample data and the zero-shot HF
fast path with the expression as the query."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from rpx_tasks.contracts.boxes import BoxPrediction, GroundingGroundTruth
from rpx_tasks.dataset import open_split
from rpx_tasks.errors import AdapterError, ManifestError, ModelError
from rpx_tasks.manifest import manifest_relpath
from rpx_tasks.metrics.detection import grounding_metrics
from rpx_tasks.model_selection import resolve_model
from rpx_tasks.models.numpy_function import wrap_numpy_function
from rpx_tasks.sample import Sample
from rpx_tasks.tasks import get_task
from tests.support.bench_cli import bench
from tests.support.boxes import check_report, resolver

SPEC = get_task("visual_grounding")
A = [0, 0, 10, 10]


def grounding(pred_boxes, gt_boxes):
    return grounding_metrics(
        np.asarray(pred_boxes, np.float32).reshape(-1, 4), np.asarray(gt_boxes, np.float32).reshape(-1, 4)
    )


def reference_grounding(pred_boxes, gt_boxes) -> dict:
    """§1.4 written out plainly: the first predicted box against every GT box."""
    if len(pred_boxes) == 0:
        return {"grounding_iou": 0.0, "grounding_acc": 0.0}
    if len(gt_boxes) == 0:
        return {"grounding_iou": 1.0, "grounding_acc": 1.0}
    a = [float(v) for v in pred_boxes[0]]
    best = 0.0
    for b in gt_boxes:
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        union = (a[2] - a[0]) * (a[3] - a[1]) + max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1]) - iw * ih
        best = max(best, iw * ih / union if union > 0 else 0.0)
    return {"grounding_iou": best, "grounding_acc": 1.0 if best >= 0.5 else 0.0}


# --------------------------------------------------------------------------- metrics


def test_metric_directions():
    assert SPEC.higher_is_better("grounding_acc") and SPEC.higher_is_better("grounding_iou")


def test_perfect_and_partial():
    assert grounding([A], [A]) == {"grounding_iou": 1.0, "grounding_acc": 1.0}
    # threshold edge: IoU 0.5 counts
    assert grounding([[0, 0, 10, 5]], [A]) == {"grounding_iou": 0.5, "grounding_acc": 1.0}
    result = grounding([[0, 0, 10, 4.99]], [A])
    assert result["grounding_iou"] == pytest.approx(0.499) and result["grounding_acc"] == 0.0


def test_empty_cases():
    assert grounding([], [A]) == {"grounding_iou": 0.0, "grounding_acc": 0.0}
    assert grounding([A], []) == {"grounding_iou": 1.0, "grounding_acc": 1.0}
    assert grounding([], []) == {"grounding_iou": 0.0, "grounding_acc": 0.0}  # no prediction is checked first


def test_only_the_first_box_counts_against_the_best_ground_truth_box():
    # The second box is perfect but only the first is scored; no sorting by score.
    prediction = BoxPrediction(np.array([[20, 20, 30, 30], A], np.float32), np.array([0.1, 0.9], np.float32))
    truth = GroundingGroundTruth("the box", np.array([A], np.float32))
    assert SPEC.compute_metrics(prediction, truth) == {"grounding_iou": 0.0, "grounding_acc": 0.0}
    # Against several GT boxes the best IoU counts.
    assert grounding([[0, 0, 10, 5]], [[50, 50, 60, 60], [0, 0, 10, 6], A]) == {
        "grounding_iou": pytest.approx(5 / 6),
        "grounding_acc": 1.0,
    }


# --------------------------------------------------------------------------- ground truth


def test_box_encodings(tmp_path):
    (tmp_path / "b.json").write_text(
        json.dumps([{"bbox": A, "label": "red box"}, {"bbox": [1, 1, 2, 2], "label": "cup"}])
    )
    resolve = resolver(tmp_path)
    from_file = SPEC.load_ground_truth({"id": "g", "text": "the red box", "boxes": "b.json"}, resolve)
    assert (
        from_file.text == "the red box"
        and from_file.boxes.tolist() == [A, [1, 1, 2, 2]]
        and from_file.labels == ["red box", "cup"]
    )
    inline = SPEC.load_ground_truth({"id": "g", "text": "t", "boxes": [A, [1, 2, 3, 4]], "labels": ["x"]}, resolve)
    assert inline.boxes.dtype == np.float32 and inline.boxes.shape == (2, 4) and inline.labels == ["x"]
    assert SPEC.load_ground_truth({"id": "g", "text": "t", "boxes": [{"bbox": A}]}, resolve).boxes.tolist() == [A]
    assert SPEC.load_ground_truth({"id": "g", "text": "t", "boxes": A}, resolve).boxes.tolist() == [A]  # one flat box
    absent = SPEC.load_ground_truth({"id": "g", "text": "t"}, resolve)
    assert absent.boxes.shape == (0, 4) and absent.labels is None
    assert SPEC.load_ground_truth({"id": "g", "text": "t", "boxes": []}, resolve).boxes.shape == (0, 4)


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"boxes": [A]}, "needs a 'text' string"),
        ({"text": 3, "boxes": [A]}, "needs a 'text' string"),
        ({"text": "t", "boxes": "missing.json"}, "not found"),
        ({"text": "t", "boxes": [[1, 2, 3]]}, "item 0 is [1, 2, 3], not a box"),
        ({"text": "t", "boxes": {"bbox": A}}, "must be a list of boxes"),
        ({"text": "t", "boxes": [{"box": A}]}, "item 0 has no 'bbox'"),
    ],
)
def test_bad_ground_truth_is_a_manifest_error_naming_the_sample(tmp_path, entry, message):
    with pytest.raises(ManifestError) as info:
        SPEC.load_ground_truth({"id": "vg_3", **entry}, resolver(tmp_path))
    assert message in str(info.value) and "vg_3" in str(info.value)


def test_text_is_not_treated_as_a_path(tmp_path):
    manifest = tmp_path / manifest_relpath("visual_grounding", "hard")
    manifest.parent.mkdir(parents=True)
    Image.new("RGB", (30, 20)).save(tmp_path / "a.png")
    entry = {"id": "a", "phase": 0, "rgb": "a.png", "text": "the box left of ../../other/things", "boxes": [A]}
    manifest.write_text(json.dumps({"task": "visual_grounding", "samples": [entry]}))
    assert len(open_split(manifest, SPEC)) == 1


# --------------------------------------------------------------------------- numpy adapter and validation


def sample(sample_id="g1", text="the red box"):
    return Sample(
        id=sample_id,
        rgb=np.zeros((20, 30, 3), np.uint8),
        ground_truth=GroundingGroundTruth(text, np.array([A], np.float32)),
    )


def test_function_gets_the_text_and_its_order_is_kept():
    seen = []

    def fn(rgb, text):
        seen.append(text)
        return np.array([[1, 1, 5, 5], A], np.float64), np.array([0.2, 0.9])

    out = wrap_numpy_function(SPEC, fn, "fn").predict([sample()])[0]
    assert seen == ["the red box"]
    assert (
        out.boxes.dtype == np.float32
        and out.boxes.tolist() == [[1, 1, 5, 5], A]
        and out.scores.tolist() == pytest.approx([0.2, 0.9])
    )
    flat = wrap_numpy_function(SPEC, lambda rgb, text: {"boxes": A, "scores": 1.0}, "fn").predict([sample()])[0]
    assert flat.boxes.shape == (1, 4) and flat.labels is None
    labelled = wrap_numpy_function(SPEC, lambda rgb, text: ([A], [1.0], ["box"]), "fn").predict([sample()])[0]
    assert labelled.labels == ["box"]


@pytest.mark.parametrize(
    "result, message",
    [
        ({"boxes": [A]}, "missing required keys: ['scores']"),
        ({"scores": [1.0]}, "missing required keys: ['boxes']"),
        ([A], "must return a dict with keys ['boxes', 'scores'] or a 2-tuple; got list"),
        ({"boxes": [1, 2, 3, 4, 5], "scores": [1.0]}, "does not reshape to (N, 4)"),
    ],
)
def test_adapter_errors(result, message):
    with pytest.raises(AdapterError) as info:
        wrap_numpy_function(SPEC, lambda rgb, text: result, "fn").predict([sample("g5")])
    assert message in str(info.value) and "g5" in str(info.value)


def test_validation_is_lenient_on_counts_but_not_on_type():
    ok = SPEC.validate_prediction({"boxes": [A, A], "scores": [1.0]}, sample())
    assert ok.boxes.shape == (2, 4)
    with pytest.raises(ModelError) as info:
        SPEC.validate_prediction("the box", sample("g6"))
    assert "g6" in str(info.value) and "visual_grounding" in info.value.hint


def test_baseline_end_to_end_matches_the_reference_formulas(sample_dataset, tmp_path, capsys):
    manifest = sample_dataset / manifest_relpath("visual_grounding", "all")
    assert (
        bench("visual_grounding", manifest, tmp_path, "--model", "rpx_tasks.models.box_baselines:ground_phrase") == 0
    ), capsys.readouterr().err
    rows = check_report(tmp_path, SPEC, manifest)
    accuracy = sum(r["grounding_acc"] for r in rows) / len(rows)
    assert 0.2 < accuracy < 1.0

    from rpx_tasks.models.box_baselines import ground_phrase

    model = wrap_numpy_function(SPEC, ground_phrase, "b")
    by_id = {row["id"]: row for row in rows}
    for batch in open_split(manifest, SPEC).iter_batches(8):
        for item, prediction in zip(batch, model.predict(batch)):
            assert item.ground_truth.text.startswith("the ") and len(item.ground_truth.boxes) == 1
            expected = reference_grounding(prediction.boxes.tolist(), item.ground_truth.boxes.tolist())
            for name, value in expected.items():
                assert by_id[item.id][name] == pytest.approx(value, abs=1e-5), (item.id, name)


# --------------------------------------------------------------------------- HF fast path (tiny OWL-ViT)


def test_zero_shot_grounding_uses_the_text_as_the_query(monkeypatch, owl_cache, sample_dataset, tmp_path, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = resolve_model(SPEC, hf_checkpoint="google/owlvit-base-patch32", cache_dir=str(owl_cache))
    model.setup()
    assert model.task == "visual_grounding" and model.threshold == 0.0
    rng = np.random.default_rng(0)
    batch = [
        Sample(
            id=f"q{i}",
            rgb=rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
            ground_truth=GroundingGroundTruth(text, np.array([A], np.float32)),
        )
        for i, text in enumerate(["the red box", "cup"])
    ]
    predictions = model.predict(batch)
    for item, prediction in zip(batch, predictions):
        valid = SPEC.validate_prediction(prediction, item)
        assert len(valid.boxes) > 0 and valid.labels and set(valid.labels) == {item.ground_truth.text}
        assert valid.scores[0] == valid.scores.max()  # the scored first box is the best one
        assert SPEC.compute_metrics(valid, item.ground_truth)["grounding_iou"] == pytest.approx(
            reference_grounding(valid.boxes.tolist(), [A])["grounding_iou"], abs=1e-6
        )

    manifest = sample_dataset / manifest_relpath("visual_grounding", "hard")
    code = bench(
        "visual_grounding",
        manifest,
        tmp_path,
        "--model",
        "owlvit_base_patch32",
        "--cache-dir",
        str(owl_cache),
        "--max-samples",
        "2",
    )
    assert code == 1  # an open_vocab_detection registry entry is not a grounding model
    assert "is a open_vocab_detection model, but this run is visual_grounding" in capsys.readouterr().err
    code = bench(
        "visual_grounding",
        manifest,
        tmp_path,
        "--model",
        "owlvit_base_patch32_grounding",
        "--cache-dir",
        str(owl_cache),
        "--max-samples",
        "3",
        "--batch-size",
        "2",
    )
    assert code == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "result.json").read_text())["num_samples"] == 3
