"""open_vocab_detection's vocabulary protocol: which vocabulary a model receives (the sample's, the
split's file, the union of the split's labels, ``--vocabulary`` overriding them, per-frame labels
only on request), what result.json records of it, and the mistakes caught before any download."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from PIL import Image

from rpx_tasks.config import RunConfig
from rpx_tasks.contracts.vocabulary import FRAME_LABELS, parse_vocabulary_option
from rpx_tasks.dataset import open_split
from rpx_tasks.errors import ConfigError, ManifestError
from rpx_tasks.manifest import manifest_relpath
from rpx_tasks.tasks import get_task
from rpx_tasks.tasks._sample_phrases import SAMPLE_VOCABULARY
from tests.support.bench_cli import bench

SPEC = get_task("open_vocab_detection")
BOX = [1, 1, 6, 6]
# Sample id -> its ground-truth labels; the union of the split is ["cup", "mug", "red box"].
LABELS = {"s1": ["mug"], "s2": ["red box", "cup"], "s3": []}
UNION = ["cup", "mug", "red box"]

PROBE_MODULE = """
SEEN = {}

def record(rgb, vocabulary):
    SEEN[len(SEEN)] = list(vocabulary)
    return {"boxes": [[1, 1, 6, 6]] if vocabulary else [], "scores": [0.9] if vocabulary else [],
            "labels": [vocabulary[0]] if vocabulary else []}
"""


def write_split(root, *, split_vocabulary=None, own=None, files=None):
    """A three-sample open_vocab_detection dataset under ``root`` (16x16 frames, boxes inline).

    ``split_vocabulary`` becomes the manifest's top-level ``vocabulary``, ``own`` maps sample
    ids to their ``vocabulary`` value, ``files`` maps root-relative paths to JSON contents.
    Returns the manifest path.
    """
    for relpath, content in (files or {}).items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_text(json.dumps(content))
    samples = []
    for index, (sample_id, labels) in enumerate(LABELS.items()):
        Image.fromarray(np.full((16, 16, 3), 40 * index, np.uint8)).save(root / f"{sample_id}.png")
        boxes = [{"bbox": BOX, "label": label} for label in labels]
        entry = {"id": sample_id, "rgb": f"{sample_id}.png", "phase": "clutter", "boxes": boxes}
        if own and sample_id in own:
            entry["vocabulary"] = own[sample_id]
        samples.append(entry)
    manifest = {"task": SPEC.name, "root": None, "samples": samples}
    if split_vocabulary is not None:
        manifest["vocabulary"] = split_vocabulary
    path = root / manifest_relpath(SPEC.name, "hard")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest))
    return path


def received(dataset) -> dict[str, list[str]]:
    """Sample id -> the vocabulary its decoded ground truth carries (what a model receives)."""
    return {s.id: s.ground_truth.vocabulary for batch in dataset.iter_batches(2, engine="threads") for s in batch}


# --------------------------------------------------------------------------- precedence


def test_without_any_vocabulary_every_sample_gets_the_sorted_union_of_the_split(tmp_path):
    dataset = open_split(write_split(tmp_path), SPEC)
    assert received(dataset) == {"s1": UNION, "s2": UNION, "s3": UNION}  # never a frame's own labels
    assert dataset.vocabulary == {
        "source": "split-union",
        "comparable": True,
        "size": 3,
        "terms": UNION,
        "samples": 3,
        "over_samples": 3,
    }


def test_the_union_covers_the_samples_of_the_run(tmp_path):
    dataset = open_split(write_split(tmp_path), SPEC, max_samples=2)
    assert dataset.vocabulary["terms"] == UNION and dataset.vocabulary["over_samples"] == 2
    assert open_split(write_split(tmp_path), SPEC, max_samples=1).vocabulary["terms"] == ["mug"]


def test_the_split_vocabulary_file_beats_the_union(tmp_path):
    files = {"meta/vocabulary.json": ["plate", "mug", "plate", "cup"]}
    dataset = open_split(write_split(tmp_path, split_vocabulary="meta/vocabulary.json", files=files), SPEC)
    assert set(map(tuple, received(dataset).values())) == {("plate", "mug", "cup")}  # de-duplicated, in order
    assert dataset.vocabulary == {
        "source": "split-file",
        "comparable": True,
        "size": 3,
        "terms": ["plate", "mug", "cup"],
        "samples": 3,
        "file": str(tmp_path / "meta" / "vocabulary.json"),
    }
    inline = open_split(write_split(tmp_path, split_vocabulary=["bowl"]), SPEC)
    assert inline.vocabulary["file"] is None and received(inline)["s3"] == ["bowl"]


def test_a_samples_own_vocabulary_beats_the_split_and_the_others_fall_back(tmp_path):
    files = {"v1.json": ["kettle", "mug"]}
    dataset = open_split(write_split(tmp_path, split_vocabulary=["bowl"], own={"s1": "v1.json"}, files=files), SPEC)
    assert received(dataset) == {"s1": ["kettle", "mug"], "s2": ["bowl"], "s3": ["bowl"]}
    assert dataset.vocabulary == {
        "source": "sample",
        "comparable": True,
        "size_min": 2,
        "size_max": 2,
        "samples": 1,
        "fallback": {
            "source": "split-file",
            "comparable": True,
            "size": 1,
            "terms": ["bowl"],
            "samples": 2,
            "file": None,
        },
    }
    own = {"s1": ["a"], "s2": ["a", "b", "c"], "s3": []}
    every = open_split(write_split(tmp_path, own=own), SPEC)
    assert received(every) == own
    assert every.vocabulary == {"source": "sample", "comparable": True, "size_min": 0, "size_max": 3, "samples": 3}


def test_a_user_vocabulary_overrides_the_sample_and_the_split(tmp_path):
    manifest = write_split(tmp_path, split_vocabulary=["bowl"], own={"s1": ["kettle"]})
    dataset = open_split(manifest, SPEC, vocabulary=["spoon", "mug"])
    assert received(dataset) == {"s1": ["spoon", "mug"], "s2": ["spoon", "mug"], "s3": ["spoon", "mug"]}
    assert dataset.vocabulary == {
        "source": "user",
        "comparable": True,
        "size": 2,
        "terms": ["spoon", "mug"],
        "samples": 3,
    }


def test_frame_labels_only_on_request_and_recorded_as_not_comparable(tmp_path):
    dataset = open_split(write_split(tmp_path, own={"s1": ["kettle"]}), SPEC, vocabulary=FRAME_LABELS)
    assert received(dataset) == {"s1": ["mug"], "s2": ["cup", "red box"], "s3": []}
    record = dataset.vocabulary
    assert (record["source"], record["comparable"], record["size_min"], record["size_max"]) == (
        "frame-labels",
        False,
        0,
        2,
    )
    assert "not comparable" in record["note"]


def test_the_settled_vocabulary_reaches_the_decoding_worker_process(tmp_path):
    dataset = open_split(write_split(tmp_path), SPEC)
    decoded = [s for batch in dataset.iter_batches(2, engine="processes") for s in batch]
    assert [s.ground_truth.vocabulary for s in decoded] == [UNION] * 3


def test_load_ground_truth_never_falls_back_to_the_frames_labels(tmp_path):
    entry = {"id": "s", "boxes": [{"bbox": BOX, "label": "cup"}]}
    assert SPEC.load_ground_truth(entry, lambda value, sample_id, key: tmp_path / value).vocabulary is None


def test_builtin_sample_data_gives_every_frame_the_whole_class_list(sample_dataset):
    dataset = open_split(sample_dataset / manifest_relpath(SPEC.name, "all"), SPEC)
    size = len(SAMPLE_VOCABULARY)
    assert dataset.vocabulary == {
        "source": "sample",
        "comparable": True,
        "size_min": size,
        "size_max": size,
        "samples": len(dataset),
    }


# --------------------------------------------------------------------------- bad vocabularies


@pytest.mark.parametrize(
    "split_vocabulary, files, message",
    [
        ("meta/none.json", {}, r"split's 'vocabulary' file .*none\.json is not found"),
        ("meta/v.json", {"meta/v.json": {"a": 1}}, "must be a non-empty list of strings"),
        ([], {}, "must be a non-empty list of strings"),
        (["mug", None], {}, "must be a non-empty list of strings"),
        ("../outside.json", {}, "escapes the dataset root"),
    ],
)
def test_a_bad_split_vocabulary_is_a_manifest_error_at_open(tmp_path, split_vocabulary, files, message):
    manifest = write_split(tmp_path, split_vocabulary=split_vocabulary, files=files)
    with pytest.raises(ManifestError, match=message) as info:
        open_split(manifest, SPEC)
    assert info.value.hint


def test_a_bad_sample_vocabulary_is_a_manifest_error_at_open_naming_the_sample(tmp_path):
    with pytest.raises(ManifestError, match=r"'s2'.*vocabulary.*not found"):
        open_split(write_split(tmp_path, own={"s2": "gone.json"}), SPEC)
    with pytest.raises(ManifestError, match=r"'s3': 'vocabulary' must be a list of"):
        open_split(write_split(tmp_path, own={"s3": [1.5]}), SPEC)


# --------------------------------------------------------------------------- the option


def test_the_option_syntax(tmp_path):
    (tmp_path / "v.json").write_text('["red box", "mug"]')
    (tmp_path / "v.txt").write_text("red box\n\n  mug  \nred box\n")
    assert parse_vocabulary_option(" red box , mug,red box") == ["red box", "mug"]
    assert parse_vocabulary_option(f"@{tmp_path / 'v.json'}") == ["red box", "mug"]
    assert parse_vocabulary_option(f"@{tmp_path / 'v.txt'}") == ["red box", "mug"]
    assert parse_vocabulary_option(["cup", "cup"]) == ["cup"]
    assert parse_vocabulary_option(" frame-labels ") == FRAME_LABELS


@pytest.mark.parametrize(
    "value, files, message",
    [
        ("", {}, "empty phrase or none at all"),
        ("a,,b", {}, "empty phrase"),
        ([], {}, "empty phrase or none at all"),
        ("@{root}/missing.json", {}, "Cannot read the vocabulary file"),
        ("@{root}/v.json", {"v.json": '{"a": 1}'}, "must hold a list of strings, got dict"),
        ("@{root}/v.json", {"v.json": "[1, 2]"}, "must be a list of strings"),
        ("@{root}/v.json", {"v.json": "[oops"}, "is not valid JSON"),
        ("@{root}/v.txt", {"v.txt": "\n \n"}, "empty phrase or none at all"),
        (3, {}, "must be a string or a list of strings"),
    ],
)
def test_a_bad_vocabulary_is_a_config_error_with_the_syntax(tmp_path, value, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    if isinstance(value, str):
        value = value.format(root=tmp_path)
    with pytest.raises(ConfigError, match=message) as info:
        RunConfig(task=SPEC.name, model_name="colour_phrase_detector", vocabulary=value)
    assert info.value.hint


def test_a_vocabulary_on_a_task_without_one_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="monocular_depth takes no vocabulary") as info:
        RunConfig(task="monocular_depth", model_name="constant_depth", vocabulary="mug")
    assert "drop --vocabulary" in info.value.hint
    config = RunConfig(task=SPEC.name, model_name="colour_phrase_detector", vocabulary="mug,cup")
    assert config.vocabulary == ["mug", "cup"]


# --------------------------------------------------------------------------- through the CLI


@pytest.fixture
def probe(tmp_path, monkeypatch):
    """An importable numpy model ``rpx_vocab_probe:record`` that records each vocabulary it receives."""
    folder = tmp_path / "probe"
    folder.mkdir()
    (folder / "rpx_vocab_probe.py").write_text(PROBE_MODULE)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "rpx_vocab_probe", raising=False)
    yield "rpx_vocab_probe:record"
    sys.modules.pop("rpx_vocab_probe", None)


def seen_vocabularies() -> list[list[str]]:
    return list(sys.modules["rpx_vocab_probe"].SEEN.values())


def test_cli_default_is_the_split_union_and_result_json_says_so(tmp_path, probe, capsys):
    data = tmp_path / "data"
    data.mkdir()
    out = tmp_path / "out"
    assert bench(SPEC.name, write_split(data), out, "--model", probe) == 0, capsys.readouterr().err
    assert seen_vocabularies() == [UNION] * 3
    result = json.loads((out / "result.json").read_text())
    assert result["vocabulary"]["source"] == "split-union" and result["vocabulary"]["terms"] == UNION
    assert "- Vocabulary: split-union (3 terms)" in (out / "summary.md").read_text()


def test_cli_override_and_frame_labels(tmp_path, probe, capsys):
    data = tmp_path / "data"
    data.mkdir()
    manifest = write_split(data, own={"s1": ["kettle"]})
    (tmp_path / "v.txt").write_text("spoon\nmug\n")
    assert (
        bench(SPEC.name, manifest, tmp_path / "user", "--model", probe, "--vocabulary", f"@{tmp_path / 'v.txt'}") == 0
    )
    assert seen_vocabularies() == [["spoon", "mug"]] * 3
    user = json.loads((tmp_path / "user" / "result.json").read_text())["vocabulary"]
    assert (user["source"], user["terms"], user["comparable"]) == ("user", ["spoon", "mug"], True)

    out = tmp_path / "frame"
    assert bench(SPEC.name, manifest, out, "--model", probe, "--vocabulary", "frame-labels") == 0
    assert seen_vocabularies()[3:] == [["mug"], ["cup", "red box"], []]
    record = json.loads((out / "result.json").read_text())["vocabulary"]
    assert (record["source"], record["comparable"]) == ("frame-labels", False)
    assert "**not comparable**" in (out / "summary.md").read_text()


@pytest.mark.parametrize(
    "task, vocabulary, message",
    [
        (SPEC.name, "", "empty phrase or none at all"),
        (SPEC.name, "@/no/such/vocabulary.json", "Cannot read the vocabulary file"),
        ("monocular_depth", "mug", "monocular_depth takes no vocabulary"),
    ],
)
def test_cli_bad_vocabulary_exits_1_and_keeps_the_previous_report(tmp_path, capsys, task, vocabulary, message):
    previous = tmp_path / "out" / "result.json"
    previous.parent.mkdir()
    previous.write_text('{"earlier": true}')
    manifest = write_split(tmp_path)
    code = bench(task, manifest, tmp_path / "out", "--model", "baseline", "--vocabulary", vocabulary)
    err = capsys.readouterr().err
    assert code == 1 and message in err and "hint:" in err and "Traceback" not in err
    assert previous.read_text() == '{"earlier": true}'
