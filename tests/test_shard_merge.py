"""Sharding one split (issue 14, requirement 3): ``--shard i/K`` runs whole clips balanced by frame count, and
``rpx merge`` of the shards equals the unsharded run (timings excepted) on the built-in sample data."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from rpx_tasks.aggregation import ExactSum
from rpx_tasks.bench import run_bench
from rpx_tasks.cli import main
from rpx_tasks.config import RunConfig
from rpx_tasks.errors import ConfigError, MergeError
from rpx_tasks.reports import SHARD_STATE_FILE
from rpx_tasks.run_identity import config_fingerprint
from rpx_tasks.run_merge import merge_runs
from rpx_tasks.run_record import RUN_FILE, latest_run
from rpx_tasks.sharding import Clip, assign_clips, parse_shard, select_shard, split_clips

# -- the assignment --------------------------------------------------------------------------------


def _entries(clips: list[tuple[str, int, int]]) -> list[dict]:
    """Manifest-like entries in split order: (scene, phase, frames) per clip."""
    return [
        {"id": f"{scene}__{phase}__{frame}", "scene_id": scene, "phase": phase, "frame_idx": frame}
        for scene, phase, frames in clips
        for frame in range(frames)
    ]


def test_parse_shard_accepts_i_of_k_only():
    assert (parse_shard("2/3").index, parse_shard(" 3 / 3 ").count) == (2, 3)
    assert str(parse_shard("1/1")) == "1/1" and parse_shard("2/3").slug == "shard-2of3"
    for bad in ("0/3", "4/3", "1/0", "1", "a/b", "-1/3", 2, None):
        with pytest.raises(ConfigError, match="shard must be i/K"):
            parse_shard(bad)
    with pytest.raises(ConfigError, match="shard must be i/K"):
        RunConfig(task="monocular_depth", model_name="baseline", shard="3/2")


def test_every_clip_is_in_exactly_one_shard_and_shards_are_balanced():
    rng = random.Random(7)
    for trial in range(40):
        layout = [(f"scene_{s:03d}", p, rng.randint(1, 60)) for s in range(rng.randint(2, 9)) for p in range(3)]
        entries = _entries(layout)
        count = rng.randint(1, min(6, len(layout)))
        shards = [select_shard(entries, parse_shard(f"{i}/{count}")) for i in range(1, count + 1)]
        ids = [entry["id"] for selected, _ in shards for entry in selected]
        assert sorted(ids) == sorted(entry["id"] for entry in entries) and len(set(ids)) == len(entries)
        held = [clip["index"] for _, record in shards for clip in record["clips"]]
        assert sorted(held) == list(range(len(layout)))
        for selected, record in shards:  # whole clips, in split order
            assert [entries.index(entry) for entry in selected] == sorted(entries.index(entry) for entry in selected)
            assert sum(clip["samples"] for clip in record["clips"]) == len(selected)
        loads = [len(selected) for selected, _ in shards]
        unit = shards[0][1]["unit"]
        largest_unit = max(
            frames if unit == "clip" else sum(f for s, _, f in layout if s == scene) for scene, _, frames in layout
        )
        assert max(loads) - min(loads) <= largest_unit, (trial, loads, unit)
        assert min(loads) > 0


def test_whole_scenes_are_kept_unless_clips_balance_better():
    equal = _entries([(f"scene_{s}", p, 4) for s in range(4) for p in range(3)])
    _, two = select_shard(equal, parse_shard("1/2"))
    assert two["unit"] == "scene" and {clip["scene"] for clip in two["clips"]} == {"scene_0", "scene_2"}
    # Two scenes, three shards: whole scenes would leave a shard empty.
    _, three = select_shard(equal[:24], parse_shard("3/3"))
    assert three["unit"] == "clip" and len(three["clips"]) == 2
    # The assignment is greedy by frame count, largest first, ties to the lower shard.
    owner, unit = assign_clips([Clip(0, ("a", "0"), 0, 10), Clip(1, ("b", "0"), 10, 7), Clip(2, ("c", "0"), 17, 5)], 2)
    assert (owner, unit) == ([0, 1, 1], "scene")


def test_too_many_shards_for_the_clips_is_a_config_error():
    clips = split_clips(_entries([("s", 0, 3), ("s", 1, 3)]))
    with pytest.raises(ConfigError, match="2 clip\\(s\\), too few for 3 shards") as caught:
        assign_clips(clips, 3)
    assert "at most 2 shards" in caught.value.hint


def test_exact_sums_combine_in_any_order():
    rng = random.Random(3)
    values = [rng.uniform(-1, 1) * 10 ** rng.randint(-12, 12) for _ in range(500)]
    whole = ExactSum()
    for value in values:
        whole.add(value)
    parts = [ExactSum(values[:100]), ExactSum(values[100:420]), ExactSum(values[420:])]
    combined = ExactSum()
    for part in reversed(parts):
        combined.add_partials(part.partials())
    assert combined.value == whole.value == math.fsum(values)
    assert math.isnan(ExactSum([1.0, math.inf, -math.inf]).value) and ExactSum([2.0, math.inf]).value == math.inf


# -- merged equals unsharded -----------------------------------------------------------------------


def library_run(task: str, out: Path, **options) -> dict:
    config = RunConfig(
        task=task, manifest="builtin:sample", model_name="baseline", device="cpu", output_dir=str(out), **options
    )
    return run_bench(config)[1]


def metric_table(folder: Path):
    table = pq.read_table(folder / "per_sample_metrics.parquet")
    return table.drop(["latency_ms"]).sort_by("id")


def assert_merged_equals(merged: Path, reference: Path) -> dict:
    assert metric_table(merged).equals(metric_table(reference))
    assert (
        pq.read_table(merged / "per_sample_metrics.parquet")
        .drop(["latency_ms"])
        .equals(pq.read_table(reference / "per_sample_metrics.parquet").drop(["latency_ms"]))
    )  # in the unsharded order too
    assert pq.read_table(merged / "cells.parquet").equals(pq.read_table(reference / "cells.parquet"))
    mine, theirs = (json.loads((folder / "result.json").read_text()) for folder in (merged, reference))
    for key in ("task", "model", "split", "num_samples", "primary_metric", "aggregated", "readiness"):
        assert mine[key] == theirs[key], key
    assert mine.get("alignment") == theirs.get("alignment") and mine.get("vocabulary") == theirs.get("vocabulary")
    record, reference_record = (json.loads((folder / RUN_FILE).read_text()) for folder in (merged, reference))
    assert record["fingerprint"] == reference_record["fingerprint"] and record["status"] == "complete"
    return mine


@pytest.mark.parametrize(
    "task, options",
    [
        ("monocular_depth", {}),  # TS of depth maps
        ("monocular_depth", {"alignment": "ls_affine"}),  # the alignment fits pooled
        ("object_tracking", {}),
        ("object_segmentation", {"geometric_coherence": True}),  # TS of label maps, SGC
        ("video_depth", {"alignment": "ls_affine"}),  # one row per clip, one fit per clip
    ],
)
def test_three_shards_merged_equal_the_unsharded_run(task, options, tmp_path):
    reference = library_run(task, tmp_path / "full", **options)
    shards = []
    for index in (2, 3, 1):  # any order
        payload = library_run(task, tmp_path / f"shard{index}", shard=f"{index}/3", batch_size=index, **options)
        assert payload["shard"]["shard"] == f"{index}/3" and payload["num_samples"] < reference["num_samples"]
        assert json.loads((tmp_path / f"shard{index}" / RUN_FILE).read_text())["shard"] == f"{index}/3"
        shards.append(tmp_path / f"shard{index}")
    merged = merge_runs(shards, tmp_path / "merged")
    payload = assert_merged_equals(tmp_path / "merged", tmp_path / "full")
    assert payload == merged.payload and payload["readiness"]["ts"] == reference["readiness"]["ts"]
    if task not in ("object_tracking", "video_depth"):
        assert reference["readiness"]["ts"]["pairs"] > 0
    assert [entry["shard"] for entry in payload["run"]["merged_from"]] == ["1/3", "2/3", "3/3"]
    frames = reference.get("num_frames", reference["num_samples"])
    assert payload["compute"]["timed_samples"] + payload["compute"]["warmup_samples"] == frames
    assert payload.get("num_frames") == reference.get("num_frames")
    assert not (tmp_path / "merged" / SHARD_STATE_FILE).exists()


def test_the_shard_is_part_of_the_fingerprint_and_of_the_default_results_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = RunConfig(task="monocular_depth", manifest="builtin:sample", model_name="baseline", device="cpu")
    shard = RunConfig(**{**base.__dict__, "shard": "1/3"})
    other = RunConfig(**{**base.__dict__, "shard": "2/3"})
    assert len({config_fingerprint(config) for config in (base, shard, other)}) == 3
    assert config_fingerprint(shard, with_shard=False) == config_fingerprint(base)
    assert shard.results_path == base.results_path / "shard-1of3"


def test_cli_shards_and_rpx_merge_with_the_default_folders(tmp_path, monkeypatch, capsys):
    """`rpx bench --shard` (the rpx-bench flow) writes each shard below its own results folder, the unsharded
    `latest` untouched; `rpx merge` of those folders makes the merged run the split's `latest`."""
    reference = tmp_path / "reference"
    library_run("monocular_depth", reference)
    monkeypatch.chdir(tmp_path)
    results = Path("rpx_results/ground_plane_prior/hard")
    common = ["bench", "monocular_depth", "--manifest", "builtin:sample", "--model", "baseline", "--device", "cpu"]
    for index in (1, 2, 3):
        assert main([*common, "--shard", f"{index}/3", "--plain"]) == 0
    assert latest_run(results) is None and latest_run(results / "shard-2of3") is not None
    capsys.readouterr()
    assert main(["merge", *(str(results / f"shard-{i}of3") for i in (1, 2, 3)), "--plain"]) == 0
    out = capsys.readouterr().out
    assert "[shards] 1/3, 2/3, 3/3" in out
    merged = latest_run(results)
    assert merged is not None and merged.parent == results
    assert_merged_equals(merged, reference)
    capsys.readouterr()
    assert main(["runs", "rpx_results", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert sorted(str(run["shard"]) for run in runs) == ["1/3", "2/3", "3/3", "None"]


def test_flow_shards_fans_out_and_merges(tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    from flows.rpx_bench import rpx_bench

    reference = tmp_path / "reference"
    library_run("object_tracking", reference)
    summary = rpx_bench(
        task="object_tracking",
        model="baseline",
        manifest="builtin:sample",
        device="cpu",
        output_dir=str(tmp_path / "merged"),
        shards=3,
    )
    assert Path(summary["output_dir"]) == (tmp_path / "merged").resolve()
    assert [Path(item["output_dir"]).name for item in summary["shards"]] == ["shard-1of3", "shard-2of3", "shard-3of3"]
    assert_merged_equals(tmp_path / "merged", reference)
    with get_client(sync_client=True) as client:
        named = FlowRunFilter(name=FlowRunFilterName(like_="object_tracking-colour_blob_tracker-hard"))
        names = {run.name for run in client.read_flow_runs(flow_run_filter=named)}
    assert {f"object_tracking-colour_blob_tracker-hard-shard-{i}of3" for i in (1, 2, 3)} <= names
    assert "object_tracking-colour_blob_tracker-hard-3-shards" in names
    with pytest.raises(ConfigError, match="cannot be combined"):
        rpx_bench(task="object_tracking", model="baseline", manifest="builtin:sample", shards=2, shard="1/2")


# -- merge errors ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def depth_shards(tmp_path_factory) -> Path:
    """Shards 1/3..3/3 of monocular_depth, a 2/2 of the same run and an unsharded run, under one folder."""
    root = tmp_path_factory.mktemp("depth-shards")
    for index in (1, 2, 3):
        library_run("monocular_depth", root / f"s{index}", shard=f"{index}/3")
    library_run("monocular_depth", root / "half", shard="2/2")
    library_run("monocular_depth", root / "full")
    config = RunConfig(
        task="monocular_depth", manifest="builtin:sample", model_name="constant_depth", device="cpu", shard="2/3"
    )
    run_bench(RunConfig(**{**config.__dict__, "output_dir": str(root / "other_model")}))
    return root


def _merge_fails(runs: list[Path], reason: str, match: str, **options) -> MergeError:
    with pytest.raises(MergeError, match=match) as caught:
        merge_runs(runs, options.pop("output_dir", None), **options)
    assert caught.value.details["reason"] == reason and caught.value.hint
    return caught.value


def test_a_missing_shard_is_named_unless_a_partial_merge_is_allowed(depth_shards, tmp_path):
    runs = [depth_shards / "s1", depth_shards / "s3"]
    error = _merge_fails(runs, "missing", r"Shard\(s\) 2/3 of 3 missing", output_dir=tmp_path / "m")
    assert error.details["missing"] == ["2/3"] and "--shard 2/3" in error.hint
    assert not (tmp_path / "m").exists()
    merged = merge_runs(runs, tmp_path / "partial", allow_partial=True)
    assert merged.payload["partial_merge"] == {"shards": ["1/3", "3/3"], "missing": ["2/3"]}
    assert merged.payload["num_samples"] == 16 and any("partial merge" in note for note in merged.payload["notes"])
    full = json.loads((depth_shards / "full" / RUN_FILE).read_text())
    assert merged.payload["run"]["fingerprint"] != full["fingerprint"]


def test_overlapping_mismatched_and_foreign_runs_are_refused(depth_shards, tmp_path):
    out = {"output_dir": tmp_path / "m"}
    _merge_fails(
        [depth_shards / "s1", depth_shards / "s1", depth_shards / "s3"], "overlap", "Shard 1/3 is given twice", **out
    )
    _merge_fails([depth_shards / "s1", depth_shards / "half"], "mismatch", "differ in shard count", **out)
    _merge_fails([depth_shards / "s1", depth_shards / "other_model"], "mismatch", "differ in model", **out)
    _merge_fails([depth_shards / "s1", depth_shards / "full"], "not_a_shard", "is not a shard run", **out)
    _merge_fails([tmp_path], "not_a_run", "holds no run", **out)
    _merge_fails(
        [depth_shards / f"s{i}" for i in (1, 2, 3)],
        "output",
        "one of the shard runs' folders",
        output_dir=depth_shards / "s2",
    )
    assert not (tmp_path / "m").exists()


def test_an_incomplete_shard_run_is_refused_and_a_previous_report_stays(depth_shards, tmp_path):
    import shutil

    incomplete = tmp_path / "s2"
    shutil.copytree(depth_shards / "s2", incomplete)
    record = json.loads((incomplete / RUN_FILE).read_text())
    (incomplete / RUN_FILE).write_text(json.dumps({**record, "status": "running"}))
    previous = tmp_path / "previous"
    merge_runs([depth_shards / f"s{i}" for i in (1, 2, 3)], previous)
    before = {path.name: path.read_bytes() for path in previous.iterdir()}
    _merge_fails(
        [depth_shards / "s1", incomplete, depth_shards / "s3"], "incomplete", "is not complete", output_dir=previous
    )
    assert {path.name: path.read_bytes() for path in previous.iterdir()} == before
    # `rpx merge` exits 1 with the message and hint.
    assert main(["merge", str(depth_shards / "s1"), str(depth_shards / "s3"), "--output-dir", str(tmp_path / "x")]) == 1


def test_a_killed_merges_staging_folder_is_removed_by_the_next_merge(depth_shards, tmp_path):
    out = tmp_path / "merged"
    stale = out / ".rpx-merge-killed"
    stale.mkdir(parents=True)
    (stale / "per_sample_metrics.parquet").write_bytes(b"half written")
    merge_runs([depth_shards / f"s{i}" for i in (1, 2, 3)], out)
    assert not list(out.glob(".rpx-merge-*")) and (out / "result.json").exists()
