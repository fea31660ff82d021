"""open_vocab_detection: the vocabulary of the ground truth, detection metrics,
numpy functions with and without a vocabulary parameter, the CLI run on the sample data and
the zero-shot HF fast path on a tiny OWL-ViT."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rpx_tasks.contracts.boxes import BoxPrediction, DetectionGroundTruth
from rpx_tasks.dataset import open_split
from rpx_tasks.errors import AdapterError, ManifestError, ModelError
from rpx_tasks.manifest import manifest_relpath
from rpx_tasks.model_selection import resolve_model
from rpx_tasks.models.numpy_function import wrap_numpy_function
from rpx_tasks.sample import Sample
from rpx_tasks.tasks import get_task
from tests.support.bench_cli import bench
from tests.support.boxes import check_report, reference_detection, resolver

SPEC = get_task("open_vocab_detection")
A = [0, 0, 10, 10]


def truth(vocabulary=("red box", "cup")):
    return DetectionGroundTruth(np.array([A], np.float32), ["red box"], list(vocabulary))


def sample(sample_id="o1", vocabulary=("red box", "cup")):
    return Sample(id=sample_id, rgb=np.zeros((20, 30, 3), np.uint8), ground_truth=truth(vocabulary))


def test_metric_directions():
    assert all(SPEC.higher_is_better(name) for name in ("precision", "recall", "f1"))


def test_metrics_are_detection_metrics_with_exact_phrase_matching():
    gt = truth()
    hit = BoxPrediction(
        np.array([A, [0, 0, 10, 5]], np.float32), np.array([0.9, 0.8], np.float32), ["red box", "red box"]
    )
    assert SPEC.compute_metrics(hit, gt) == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3)}
    other = BoxPrediction(np.array([A], np.float32), np.array([0.9], np.float32), ["Red box"])
    assert SPEC.compute_metrics(other, gt) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    none = BoxPrediction(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), [])
    assert SPEC.compute_metrics(none, gt) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    empty_gt = DetectionGroundTruth(np.zeros((0, 4), np.float32), [], [])
    assert SPEC.compute_metrics(none, empty_gt) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}


def test_ground_truth_carries_the_entrys_vocabulary_never_its_own_labels(tmp_path):
    # Which vocabulary an entry gets (sample, split file, split union, --vocabulary) is settled when the
    # split is opened: tests/tasks/test_open_vocab_vocabulary.py.
    boxes = [{"bbox": A, "label": "red box"}, {"bbox": A, "label": "cup"}, {"bbox": A, "label": "cup"}]
    (tmp_path / "b.json").write_text(json.dumps(boxes))
    (tmp_path / "v.json").write_text(json.dumps(["mug", "cup", "red box"]))
    resolve = resolver(tmp_path)
    assert SPEC.load_ground_truth({"id": "s", "boxes": "b.json"}, resolve).vocabulary is None
    assert SPEC.load_ground_truth({"id": "s", "boxes": boxes, "vocabulary": ["mug"]}, resolve).vocabulary == ["mug"]
    assert SPEC.load_ground_truth({"id": "s", "boxes": "b.json", "vocabulary": "v.json"}, resolve).vocabulary == [
        "mug",
        "cup",
        "red box",
    ]


@pytest.mark.parametrize(
    "vocabulary, message",
    [
        ("missing.json", "not found"),
        ({"a": 1}, "must be a list of"),
        (["a", None], "must be a list of"),
    ],
)
def test_bad_vocabulary_is_a_manifest_error(tmp_path, vocabulary, message):
    with pytest.raises(ManifestError) as info:
        SPEC.load_ground_truth({"id": "ov_7", "boxes": [], "vocabulary": vocabulary}, resolver(tmp_path))
    assert message in str(info.value) and "ov_7" in str(info.value)


def test_bad_boxes_file_names_sample_and_file(tmp_path):
    (tmp_path / "b.json").write_text('[{"bbox": [1, 2, 3, 4]}]')
    with pytest.raises(ManifestError, match=r"'ov_8'.*b\.json.*item 0 has no 'label'"):
        SPEC.load_ground_truth({"id": "ov_8", "boxes": "b.json"}, resolver(tmp_path))


def test_numpy_function_gets_the_vocabulary_when_it_takes_one():
    seen = []

    def with_vocabulary(rgb, vocabulary):
        seen.append(list(vocabulary))
        return {"boxes": [A], "scores": [0.7], "labels": [vocabulary[0]]}

    def keyword_vocabulary(rgb, *, vocabulary=()):
        seen.append(list(vocabulary))
        return [A], [0.7], ["cup"]

    def frame_only(rgb, threshold=0.5):  # the reference's fn(rgb); an optional extra is not the vocabulary
        assert threshold == 0.5
        return {"boxes": np.zeros((0, 4)), "scores": [], "labels": []}

    out = wrap_numpy_function(SPEC, with_vocabulary, "v").predict([sample()])[0]
    assert out.labels == ["red box"] and out.boxes.shape == (1, 4)
    assert wrap_numpy_function(SPEC, keyword_vocabulary, "k").predict([sample()])[0].labels == ["cup"]
    assert wrap_numpy_function(SPEC, frame_only, "f").predict([sample()])[0].boxes.shape == (0, 4)
    assert wrap_numpy_function(SPEC, lambda *args: frame_only(*args), "a").predict([sample()])[0].boxes.shape == (0, 4)
    assert seen == [["red box", "cup"], ["red box", "cup"]]


def test_adapter_and_validation_errors():
    with pytest.raises(AdapterError, match=r"'o9'.*missing required keys: \['scores', 'labels'\]"):
        wrap_numpy_function(SPEC, lambda rgb, vocabulary: {"boxes": [A]}, "x").predict([sample("o9")])
    with pytest.raises(AdapterError, match="does not reshape to \\(N, 4\\)"):
        wrap_numpy_function(SPEC, lambda rgb, v: ([1, 2], [1.0], ["a"]), "x").predict([sample()])
    with pytest.raises(ModelError) as info:
        SPEC.validate_prediction({"boxes": [A], "scores": [0.5, 0.4], "labels": ["a"]}, sample("o10"))
    assert info.value.details == {"sample": "o10", "n_boxes": 1, "n_scores": 2, "n_labels": 1}
    assert "open_vocab_detection" in str(info.value)


def test_baseline_end_to_end_matches_the_reference_formulas(sample_dataset, tmp_path, capsys):
    manifest = sample_dataset / manifest_relpath("open_vocab_detection", "all")
    assert bench("open_vocab_detection", manifest, tmp_path, "--model", "colour_phrase_detector") == 0, (
        capsys.readouterr().err
    )
    rows = check_report(tmp_path, SPEC, manifest)
    assert 0.1 < sum(r["f1"] for r in rows) / len(rows) < 1.0
    vocabulary = json.loads((tmp_path / "result.json").read_text())["vocabulary"]
    assert (vocabulary["source"], vocabulary["comparable"]) == ("sample", True)  # the demo data is comparable

    from rpx_tasks.models.box_baselines import detect_phrases

    model = wrap_numpy_function(SPEC, detect_phrases, "b")
    by_id = {row["id"]: row for row in rows}
    for batch in open_split(manifest, SPEC).iter_batches(8):
        for item, prediction in zip(batch, model.predict(batch)):
            assert item.ground_truth.vocabulary and set(item.ground_truth.labels) <= set(item.ground_truth.vocabulary)
            expected = reference_detection(prediction, item.ground_truth.boxes.tolist(), item.ground_truth.labels)
            for name, value in expected.items():
                assert by_id[item.id][name] == pytest.approx(value, abs=1e-5), (item.id, name)


# --------------------------------------------------------------------------- HF fast path (tiny OWL-ViT)


def rgb_sample(seed, vocabulary, h=48, w=64):
    rgb = np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    return Sample(
        id=f"z{seed}", rgb=rgb, ground_truth=DetectionGroundTruth(np.zeros((0, 4), np.float32), [], list(vocabulary))
    )


def test_zero_shot_model_queries_each_frames_vocabulary(offline, owl_cache):
    model = resolve_model(
        SPEC, model_name="owlvit_base_patch32", cache_dir=str(owl_cache), model_kwargs={"threshold": 0.0}
    )
    model.setup()
    assert model.task == "open_vocab_detection" and model.name == "owlvit_base_patch32"
    vocabularies = [["red box"], ["red box", "cup", "the crate"], [], ["cup", "bottle"]]
    batch = [rgb_sample(i, v) for i, v in enumerate(vocabularies)]
    calls = []
    handle = model.torch_module.register_forward_hook(lambda *args: calls.append(1))
    try:
        predictions = model.predict(batch)
    finally:
        handle.remove()
    assert len(calls) == 1  # one batched forward; the frame without a vocabulary is skipped
    for item, prediction, vocabulary in zip(batch, predictions, vocabularies):
        valid = SPEC.validate_prediction(prediction, item)
        assert set(valid.labels) <= set(vocabulary)  # padding queries never answer
        assert (
            (valid.boxes[:, [0, 2]] <= 64).all() and (valid.boxes[:, [1, 3]] <= 48).all() and (valid.boxes >= 0).all()
        )
        assert (np.diff(valid.scores) <= 0).all()
        if vocabulary:
            assert len(valid.boxes) > 0
            (alone,) = model.predict([item])
            np.testing.assert_allclose(np.sort(alone.scores), np.sort(valid.scores), atol=1e-4)
    assert len(predictions[2].boxes) == 0


def test_zero_shot_end_to_end_through_the_cli(offline, owl_cache, sample_dataset, tmp_path, capsys):
    manifest = sample_dataset / manifest_relpath("open_vocab_detection", "hard")
    code = bench(
        "open_vocab_detection",
        manifest,
        tmp_path,
        "--hf-checkpoint",
        "google/owlvit-base-patch32",
        "--cache-dir",
        str(owl_cache),
        "--max-samples",
        "3",
        "--batch-size",
        "2",
    )
    assert code == 0, capsys.readouterr().err
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["num_samples"] == 3 and result["compute"]["params_m"] > 0


def test_zero_shot_loader_rejects_a_closed_vocabulary_detector(offline, tmp_path):
    from rpx_tasks.models.hf_detection import load_hf_zero_shot_model
    from tests.support.hf_seed_detection import seed_tiny_yolos

    seed_tiny_yolos(tmp_path, "someone/tiny-yolos")
    with pytest.raises(ModelError, match="'yolos' model, not a zero-shot object-detection model") as info:
        load_hf_zero_shot_model("someone/tiny-yolos", task="open_vocab_detection", cache_dir=str(tmp_path))
    assert "owlvit" in info.value.hint


def test_grounding_dino_labels_each_box_with_a_vocabulary_entry(offline, tmp_path):
    from tests.support.hf_seed_detection import seed_tiny_grounding_dino

    seed_tiny_grounding_dino(tmp_path)
    model = resolve_model(
        SPEC, model_name="grounding_dino_tiny", cache_dir=str(tmp_path), model_kwargs={"threshold": 0.0}
    )
    model.setup()
    vocabularies = [["red box"], ["red box", "cup", "the crate"], ["cup", "robot arm"]]
    batch = [rgb_sample(10 + i, v) for i, v in enumerate(vocabularies)]
    predictions = model.predict(batch)
    for item, prediction, vocabulary in zip(batch, predictions, vocabularies):
        valid = SPEC.validate_prediction(prediction, item)
        assert len(valid.boxes) == 10 and set(valid.labels) <= set(vocabulary)  # queries, not decoded token text
        (alone,) = model.predict([item])
        # Text padding shifts Grounding DINO's scores a little (a property of the model, not of batching here).
        np.testing.assert_allclose(np.sort(alone.scores), np.sort(valid.scores), atol=5e-3)
