"""A folder per run (issue 10, requirements 1 and 2): run ids, fingerprints, run.json and ``latest``."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from rpx_tasks.cli import main
from rpx_tasks.config import RunConfig
from rpx_tasks.run_identity import config_fingerprint, new_run_id
from rpx_tasks.run_record import LATEST, RUN_FILE, latest_run, point_latest

RUN_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")
UTC_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def default_bench(*extra: str) -> int:
    """``rpx bench monocular_depth`` of ground_plane_prior on the built-in sample data, 4 samples, no --output-dir."""
    return main(
        [
            "bench",
            "monocular_depth",
            "--model",
            "ground_plane_prior",
            "--manifest",
            "builtin:sample",
            "--split",
            "hard",
            "--device",
            "cpu",
            "--max-samples",
            "4",
            "--plain",
            *extra,
        ]
    )


def test_two_default_runs_leave_two_folders_and_latest_names_the_second(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert default_bench() == 0, capsys.readouterr().err
    assert default_bench() == 0, capsys.readouterr().err
    results = tmp_path / "rpx_results" / "ground_plane_prior" / "hard"
    runs = sorted(path for path in results.iterdir() if path.name != LATEST)
    assert len(runs) == 2 and all(RUN_ID.match(path.name) for path in runs)
    records = [json.loads((path / "result.json").read_text())["run"] for path in runs]
    second = max(records, key=lambda record: record["started"] + record["id"])
    assert (results / LATEST).is_symlink() and not Path((results / LATEST).readlink()).is_absolute()
    assert latest_run(results).resolve() == (results / second["id"]).resolve()
    assert records[0]["fingerprint"] == records[1]["fingerprint"]  # same command, same fingerprint
    assert records[0]["id"] != records[1]["id"]


def test_result_json_run_record(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert default_bench() == 0, capsys.readouterr().err
    (folder,) = [p for p in (tmp_path / "rpx_results/ground_plane_prior/hard").iterdir() if p.name != LATEST]
    result = json.loads((folder / "result.json").read_text())
    run = result["run"]
    assert run["id"] == folder.name and RUN_ID.match(run["id"])
    assert re.fullmatch(r"[0-9a-f]{64}", run["fingerprint"])
    assert run["status"] == "complete" and run["resumed_from"] is None
    assert UTC_TIME.match(run["started"]) and UTC_TIME.match(run["finished"]) and run["started"] <= run["finished"]
    assert run["samples_done"] == run["samples_total"] == result["num_samples"] == 4
    # rpx bench runs the rpx-bench flow: the record names its flow run (no deployment here).
    assert re.fullmatch(r"[0-9a-f-]{36}", run["orchestration"]["flow_run_id"])
    assert run["orchestration"]["flow_run_name"] == "monocular_depth-ground_plane_prior-hard"
    assert run["orchestration"]["deployment"] is None
    assert json.loads((folder / RUN_FILE).read_text()) == run


def test_output_dir_is_the_run_folder_and_gets_no_latest(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "mine"
    assert default_bench("--output-dir", str(out)) == 0, capsys.readouterr().err
    first = json.loads((out / RUN_FILE).read_text())
    assert default_bench("--output-dir", str(out)) == 0, capsys.readouterr().err
    second = json.loads((out / RUN_FILE).read_text())
    assert second["status"] == "complete" and second["id"] != first["id"]
    assert json.loads((out / "result.json").read_text())["run"]["id"] == second["id"]
    assert sorted(path.name for path in out.iterdir()) == sorted(
        ["cells.parquet", "per_sample_metrics.parquet", "phase_scores.png", "result.json", "summary.md", RUN_FILE]
    )
    assert not (tmp_path / "rpx_results").exists()


def test_a_failed_run_into_an_earlier_report_leaves_its_folder_as_it_was(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "mine"
    assert default_bench("--output-dir", str(out)) == 0, capsys.readouterr().err
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    bad = ["--model", "tests.support.bad_models:WrongType", "--model-kwarg", "task=monocular_depth"]
    code = main(["bench", "monocular_depth", *bad, "--manifest", "builtin:sample", "--split", "hard"]
                + ["--device", "cpu", "--plain", "--output-dir", str(out)])  # fmt: skip
    assert code == 1
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before


def test_new_run_ids_differ_within_one_second():
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50 and all(RUN_ID.match(run_id) for run_id in ids)


def _config(manifest: Path, **kwargs) -> RunConfig:
    return RunConfig(
        task="monocular_depth",
        split="hard",
        model_name="tests.support.bad_models:recorded_baseline",
        manifest=str(manifest),
        device="cpu",
        **kwargs,
    )


def test_fingerprint_is_stable_and_follows_model_kwargs_and_manifest_content(tmp_path, depth_manifest):
    manifest = tmp_path / "manifest.json"
    shutil.copy(depth_manifest, manifest)
    base = config_fingerprint(_config(manifest))
    assert config_fingerprint(_config(manifest)) == base
    # Batch size, device and output folder do not change what is computed.
    assert config_fingerprint(_config(manifest, batch_size=3, output_dir=str(tmp_path / "x"))) == base
    assert config_fingerprint(_config(manifest, model_kwargs={"task": "monocular_depth"})) != base
    assert config_fingerprint(_config(manifest, max_samples=2)) != base
    manifest.write_text(manifest.read_text() + "\n")  # same path, other bytes
    assert config_fingerprint(_config(manifest)) != base


def test_latest_falls_back_to_a_pointer_file_without_symlinks(tmp_path, monkeypatch):
    def no_symlinks(*args, **kwargs):
        raise OSError("symlinks are not supported here")

    (tmp_path / "20260101T000000Z-abcdef").mkdir()
    monkeypatch.setattr("os.symlink", no_symlinks)
    latest = point_latest(tmp_path, "20260101T000000Z-abcdef")
    assert latest.is_file() and latest.read_text().strip() == "20260101T000000Z-abcdef"
    assert latest_run(tmp_path) == tmp_path / "20260101T000000Z-abcdef"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["20260101T000000Z-abcdef", LATEST]


def test_latest_symlink_is_replaced(tmp_path):
    first, second = "20260101T000000Z-aaaaaa", "20260102T000000Z-bbbbbb"
    point_latest(tmp_path, first)
    point_latest(tmp_path, second)
    assert (tmp_path / LATEST).readlink() == Path(second)
    assert sorted(path.name for path in tmp_path.iterdir()) == [LATEST]


def test_fingerprint_pins_the_checkpoint_commit_in_the_hf_cache(tmp_path):
    """New weights behind the same checkpoint id (``refs/main`` moved) make a new fingerprint; so does a
    changed local checkpoint folder."""
    config = RunConfig(
        task="monocular_depth", hf_checkpoint="org/depth-model", manifest="builtin:sample", cache_dir=str(tmp_path)
    )
    refs = tmp_path / "models--org--depth-model" / "refs"
    refs.mkdir(parents=True)
    (refs / "main").write_text("a" * 40)
    first = config_fingerprint(config)
    assert first == config_fingerprint(config)
    (refs / "main").write_text("b" * 40)
    assert config_fingerprint(config) != first

    local = tmp_path / "local-checkpoint"
    local.mkdir()
    (local / "config.json").write_text('{"model_type": "depth_anything"}')
    local_config = RunConfig(task="monocular_depth", hf_checkpoint=str(local), manifest="builtin:sample")
    before = config_fingerprint(local_config)
    (local / "model.safetensors").write_bytes(b"\0" * 16)
    assert config_fingerprint(local_config) != before
