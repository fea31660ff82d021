"""Flows rpx-bench and rpx-bench-matrix against one session-wide Prefect test API.

Every test queries the API for what it checks (task-run states, logs, artifacts, slots): the
flows run for real; only CUDA, which this machine lacks, is absent (a run requesting cuda:0
falls back to the CPU while it holds the gpu-0 slot, see rpx_tasks.steps.gpu_slots.gpu_slot).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from flows.parameters import PARAMETER_DEFAULTS, PARAMETER_FIELDS
from flows.rpx_bench import rpx_bench, run_bench_flow
from flows.rpx_bench_matrix import rpx_bench_matrix
from rpx_tasks.errors import ConfigError, ManifestError
from rpx_tasks.manifest import manifest_relpath
from rpx_tasks.sample_data.builtin import BUILTIN_SAMPLE, builtin_manifest_path
from rpx_tasks.steps import artifact_key
from tests.support.hub_server import build_repo_files

pytest_plugins = ["tests.conftest_prefect"]

STEP_NAMES = [
    "validate-config",
    "resolve-device",
    "download-split",
    "open-split",
    "resolve-model",
    "run-benchmark",
    "write-report",
    "compare-previous",
]


# -- API helpers -------------------------------------------------------------------------------


def task_runs(client, flow_run_id):
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {run.name.rsplit("-", 1)[0]: run for run in runs}


def flow_run_logs(client, flow_run_id) -> str:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=5)
    logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return "\n".join(log.message for log in logs)


def artifacts_with_key(client, key):
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    return client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))


def hub_params(hub_env, **overrides):
    values = {
        "task": "monocular_depth",
        "split": "hard",
        "model": "ground_plane_prior",
        "repo_id": "rpx-test/loose",
        "revision": "main",
        "cache_dir": str(hub_env.hf_cache),
        "device": "cpu",
        "output_dir": str(hub_env.tmp_path / "out"),
    }
    values.update(overrides)
    return values


def run(params):
    """Run rpx-bench in-process; returns its final state (not raising)."""
    return rpx_bench(**params, return_state=True)


# -- the parameters ----------------------------------------------------------------------------


def test_flow_parameters_are_the_run_config_fields_a_flow_can_take():
    import dataclasses
    import inspect

    from flows.parameters import FLOW_ONLY_PARAMETERS, NOT_FLOW_PARAMETERS
    from rpx_tasks.config import RunConfig
    from rpx_tasks.steps.run_limits import RUN_LIMIT_PARAMETERS

    signature = inspect.signature(rpx_bench.fn).parameters
    fields = {field.name for field in dataclasses.fields(RunConfig)}
    assert set(signature) == set(PARAMETER_FIELDS) | set(FLOW_ONLY_PARAMETERS) | set(RUN_LIMIT_PARAMETERS)
    assert not set(FLOW_ONLY_PARAMETERS) & set(PARAMETER_FIELDS)
    assert set(PARAMETER_FIELDS.values()) == fields - set(NOT_FLOW_PARAMETERS)
    assert signature["task"].default is inspect.Parameter.empty
    defaults = {name: param.default for name, param in signature.items() if name != "task"}
    assert defaults == {**PARAMETER_DEFAULTS, **FLOW_ONLY_PARAMETERS, **RUN_LIMIT_PARAMETERS}


def test_flow_parameter_defaults_are_the_run_config_defaults():
    from flows.parameters import config_params
    from rpx_tasks.bench import validate_config
    from rpx_tasks.config import RunConfig

    # A run left at the flow's defaults is a run left at RunConfig's (None: RunConfig builds the default).
    selected = {"task": "monocular_depth", "model_name": "constant_depth"}
    assert validate_config({**config_params(PARAMETER_DEFAULTS), **selected}) == RunConfig(**selected)
    # What a deployment or the UI shows is RunConfig's default, too.
    schema = rpx_bench.parameters.properties
    assert (schema["split"]["default"], schema["device"]["default"]) == (RunConfig.split, RunConfig.device)
    assert (schema["batch_size"]["default"], schema["geometric_coherence"]["default"]) == (
        RunConfig.batch_size,
        RunConfig.geometric_coherence,
    )


# -- the happy path: steps, name, summary, report files, artifacts ------------------------------


def test_smoke_run_on_builtin_sample_data(prefect_client, tmp_path, monkeypatch):
    monkeypatch.setenv("RPX_CACHE_DIR", str(tmp_path / "cache"))
    state = run(
        {
            "task": "monocular_depth",
            "model": "ground_plane_prior",
            "manifest": BUILTIN_SAMPLE,
            "device": "cpu",
            "output_dir": str(tmp_path / "out"),
        }
    )
    assert state.is_completed(), state.message
    summary = state.result()
    json.dumps(summary)
    assert summary["num_samples"] == 24 and summary["device"] == "cpu"
    for name in ("result.json", "summary.md", "per_sample_metrics.parquet", "cells.parquet"):
        assert (tmp_path / "out" / name).is_file()
    assert summary["result_json"] == str((tmp_path / "out" / "result.json").resolve())
    # result.json names the real manifest the built-in sample data resolved to, not "builtin:sample".
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["manifest"] == str(builtin_manifest_path("monocular_depth", "hard")) and result["repo_id"] is None

    flow_run = prefect_client.read_flow_run(state.state_details.flow_run_id)
    assert flow_run.name == "monocular_depth-ground_plane_prior-hard"
    steps = task_runs(prefect_client, flow_run.id)
    assert sorted(steps) == sorted(STEP_NAMES)
    assert all(run.state.is_completed() for run in steps.values())
    # Local data: nothing to cache, so the download step always runs.
    assert steps["download-split"].state.name == "Completed"

    # Keys name the data source (the built-in sample data) and the device class.
    expected = {
        kind: artifact_key("monocular_depth", "ground_plane_prior", "hard", kind, data="sample", device="cpu")
        for kind in ("summary", "metrics", "phases")
    }
    assert summary["artifacts"] == expected
    assert summary["comparison"] == {"status": "no previous run"}  # the first run of its kind in tmp_path
    assert expected["summary"] == "rpx-monocular-depth-ground-plane-prior-hard-sample-cpu-summary"
    found = {}
    for kind, artifact_type in (("summary", "markdown"), ("metrics", "table"), ("phases", "table")):
        [found[kind]] = [a for a in artifacts_with_key(prefect_client, expected[kind]) if a.flow_run_id == flow_run.id]
        assert found[kind].type == artifact_type, kind
    # No file:// link: the markdown names the run folder's path.
    summary_md = (tmp_path / "out" / "summary.md").read_text()
    # The artifact is summary.md without its relative image link (the UI cannot show it), plus the run folder.
    assert "![phase scores](phase_scores.png)" in summary_md and "![phase scores]" not in found["summary"].data
    assert found["summary"].data.startswith(summary_md.split("\n## Phase scores")[0].rstrip("\n"))
    assert f"`{(tmp_path / 'out').resolve()}`" in found["summary"].data and "file://" not in found["summary"].data
    metrics = json.loads(found["metrics"].data) if isinstance(found["metrics"].data, str) else found["metrics"].data
    assert "absrel" in {row["metric"] for row in metrics}
    phases = json.loads(found["phases"].data) if isinstance(found["phases"].data, str) else found["phases"].data
    assert "overall" in {row["phase"] for row in phases}
    [progress] = [
        a
        for a in artifacts_with_key(prefect_client, expected["summary"].replace("-summary", "-progress"))
        if a.flow_run_id == flow_run.id
    ]
    assert progress.type == "progress" and float(progress.data) == 100.0
    assert {"task:monocular_depth", "model:ground_plane_prior", "split:hard", "data:sample", "device:cpu"} <= set(
        flow_run.tags
    )


def test_run_bench_flow_maps_cli_options_and_reports_progress(prefect_api, depth_manifest, tmp_path):
    seen = []
    summary = run_bench_flow(
        {
            "task": "monocular_depth",
            "split": "hard",
            "model_name": "constant_depth",
            "hf_checkpoint": None,
            "manifest": str(depth_manifest),
            "max_samples": 5,
            "device": "cpu",
            "output_dir": str(tmp_path),
        },
        progress=lambda done, total, stage: seen.append((done, total, stage)),
    )
    assert summary["model"] == "constant_depth" and summary["num_samples"] == 5
    assert (5, 5, "predict") in seen


def test_a_process_with_prefect_api_url_runs_in_that_api_quietly(
    prefect_client, prefect_api_url, depth_manifest, tmp_path
):
    import os
    import subprocess
    import sys

    script = (
        "import json\n"
        "from flows.bootstrap import configure_quiet_prefect\n"
        "configure_quiet_prefect()\n"
        "from flows.rpx_bench import run_bench_flow\n"
        f"print(json.dumps(run_bench_flow({{'task': 'monocular_depth', 'model_name': 'constant_depth', "
        f"'manifest': {str(depth_manifest)!r}, 'max_samples': 3, 'device': 'cpu', "
        f"'output_dir': {str(tmp_path)!r}}})))\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_LOGGING", "DO_NOT_TRACK"))}
    env.update(PREFECT_API_URL=prefect_api_url, PREFECT_HOME=str(tmp_path / "home"))
    env.pop("PREFECT_SERVER_ANALYTICS_ENABLED", None)
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # quiet: no Prefect console logs, no warnings, no telemetry notice
    summary = json.loads(done.stdout)
    assert summary["num_samples"] == 3
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    named = prefect_client.read_flow_runs(
        flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["monocular_depth-constant_depth-hard"]))
    )
    [flow_run] = [run for run in named if run.parameters.get("output_dir") == str(tmp_path)]
    assert flow_run.state.is_completed()


def test_an_unreachable_prefect_server_is_a_config_error(tmp_path):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/api"
    with temporary_settings(updates={PREFECT_API_URL: url}):
        with pytest.raises(ConfigError, match="does not answer") as info:
            run_bench_flow(
                {"task": "monocular_depth", "model": "constant_depth", "manifest": BUILTIN_SAMPLE, "device": "cpu"}
            )
    assert "prefect server start" in info.value.hint and not (tmp_path / "out").exists()


# -- failures: fast config errors, message and hint in the logs, no retries but for transient ---


def test_config_error_fails_before_any_expensive_step(prefect_client, tmp_path):
    with pytest.raises(ConfigError, match="Unknown model") as info:
        run_bench_flow(
            {
                "task": "monocular_depth",
                "model": "no_such_model",
                "manifest": BUILTIN_SAMPLE,
                "device": "cpu",
                "output_dir": str(tmp_path),
            }
        )
    error = info.value
    state = run({"task": "monocular_depth", "model": "no_such_model", "split": "hardest", "device": "cpu"})
    assert state.is_failed()
    steps = task_runs(prefect_client, state.state_details.flow_run_id)
    assert list(steps) == ["validate-config"] and steps["validate-config"].state.is_failed()
    logs = flow_run_logs(prefect_client, state.state_details.flow_run_id)
    assert "ConfigError: Unknown difficulty split 'hardest'." in logs and "hint: Use one of" in logs
    assert error.hint  # the caller (the CLI) gets the original error with its hint


def test_second_identical_run_is_cached_and_fetches_nothing(prefect_client, hub_env):
    first = run(hub_params(hub_env))
    assert first.is_completed(), first.message
    assert task_runs(prefect_client, first.state_details.flow_run_id)["download-split"].state.name == "Completed"
    assert hub_env.server.fetched_files()

    hub_env.server.clear()
    second = run(hub_params(hub_env, model="constant_depth"))  # another model, same data
    assert second.is_completed(), second.message
    assert task_runs(prefect_client, second.state_details.flow_run_id)["download-split"].state.name == "Cached"
    assert hub_env.server.fetched_files() == [] and hub_env.server.fetched_files("HEAD") == []
    assert second.result()["num_samples"] == first.result()["num_samples"] == 12


def test_a_bad_sample_in_a_cached_split_fails_in_open_split_before_the_model(prefect_client, hub_env):
    first = run(hub_params(hub_env))
    assert first.is_completed(), first.message
    manifest_path = Path(json.loads(Path(first.result()["result_json"]).read_text())["manifest"])
    manifest = json.loads(manifest_path.read_text())
    manifest["samples"][0]["phase"] = "lunch"
    manifest_path.write_text(json.dumps(manifest))

    second = run(hub_params(hub_env, model="constant_depth"))
    assert second.is_failed()
    steps = task_runs(prefect_client, second.state_details.flow_run_id)
    assert steps["download-split"].state.name == "Cached"
    assert steps["open-split"].state.is_failed() and "resolve-model" not in steps
    logs = flow_run_logs(prefect_client, second.state_details.flow_run_id)
    assert "ManifestError" in logs and "lunch" in logs and manifest["samples"][0]["id"] in logs


def test_cache_is_bypassed_when_the_resolved_manifest_is_gone(prefect_client, hub_env):
    first = run(hub_params(hub_env, max_samples=4))
    assert first.is_completed(), first.message
    manifest = Path(json.loads(Path(first.result()["result_json"]).read_text())["manifest"])
    manifest.unlink()

    hub_env.server.clear()
    second = run(hub_params(hub_env, max_samples=4))
    assert second.is_completed(), second.message
    assert task_runs(prefect_client, second.state_details.flow_run_id)["download-split"].state.name == "Completed"
    assert manifest.is_file()
    assert hub_env.server.api_calls()  # the step ran: it resolved the revision again

    third = run(hub_params(hub_env, max_samples=4))
    assert task_runs(prefect_client, third.state_details.flow_run_id)["download-split"].state.name == "Cached"


def test_cache_is_bypassed_when_a_data_file_is_gone(prefect_client, hub_env):
    first = run(hub_params(hub_env, max_samples=4))
    assert first.is_completed(), first.message
    manifest = Path(json.loads(Path(first.result()["result_json"]).read_text())["manifest"])
    resolved = json.loads(manifest.read_text())
    lost = Path(resolved["root"], resolved["samples"][2]["depth"])
    lost.resolve().unlink()  # the blob in the HF cache, then its snapshot link: the file is gone
    lost.unlink()

    hub_env.server.clear()
    second = run(hub_params(hub_env, max_samples=4))
    assert second.is_completed(), second.message
    assert task_runs(prefect_client, second.state_details.flow_run_id)["download-split"].state.name == "Completed"
    assert resolved["samples"][2]["depth"] in hub_env.server.fetched_files()
    assert lost.is_file() and manifest.is_file()

    hub_env.server.clear()
    third = run(hub_params(hub_env, max_samples=4))  # the refreshed record is used again
    assert task_runs(prefect_client, third.state_details.flow_run_id)["download-split"].state.name == "Cached"
    assert hub_env.server.fetched_files() == []


def requests_per_attempt(hub_env, pattern: str) -> int:
    """How many requests matching ``pattern`` one failing download attempt makes (huggingface_hub may retry inside)."""
    from rpx_tasks.errors import TransientDownloadError
    from rpx_tasks.hub import download_split

    fault = hub_env.server.add_fault(pattern, "status", times=-1, status=503)
    with pytest.raises(TransientDownloadError):
        download_split(
            "monocular_depth",
            "hard",
            modalities=("rgb", "depth"),
            repo_id="rpx-test/sharded",
            revision="main",
            cache_dir=str(hub_env.hf_cache),
            max_samples=2,
        )
    hub_env.server.clear()
    return fault.fired


def test_transient_download_fault_is_retried_and_the_run_completes(prefect_client, hub_env):
    pattern = "/api/datasets/rpx-test/sharded/revision/*"
    # Fail every request of the step's first attempt (503), then let the Hub recover.
    hub_env.server.add_fault(pattern, "status", times=requests_per_attempt(hub_env, pattern), status=503)
    state = run(hub_params(hub_env, repo_id="rpx-test/sharded", max_samples=2))
    assert state.is_completed(), state.message
    download = task_runs(prefect_client, state.state_details.flow_run_id)["download-split"]
    assert download.run_count == 2 and download.state.name == "Completed"
    history = [s.name for s in prefect_client.read_task_run_states(download.id)]
    assert "AwaitingRetry" in history or "Retrying" in history


def test_manifest_error_is_not_retried(prefect_client, hub_env):
    files = build_repo_files("loose")
    files[manifest_relpath("monocular_depth", "hard")] = b"{ not json"
    hub_env.server.add_repo("rpx-test/broken", files)
    state = run(hub_params(hub_env, repo_id="rpx-test/broken"))
    assert state.is_failed()
    with pytest.raises(ManifestError, match="not valid JSON"):
        state.result()
    download = task_runs(prefect_client, state.state_details.flow_run_id)["download-split"]
    assert download.run_count == 1 and download.state.is_failed()
    assert hub_env.server.fetched_files().count(manifest_relpath("monocular_depth", "hard")) == 1
    logs = flow_run_logs(prefect_client, state.state_details.flow_run_id)
    assert "ManifestError:" in logs and "hint:" in logs


# -- the matrix ----------------------------------------------------------------------------------


def test_matrix_runs_every_entry_and_one_failure_does_not_stop_the_others(prefect_client, tmp_path, monkeypatch):
    monkeypatch.setenv("RPX_CACHE_DIR", str(tmp_path / "cache"))
    runs = [
        {"task": "monocular_depth", "model": "ground_plane_prior"},
        {"task": "monocular_depth", "model": "no_such_model"},
        {"task": "monocular_depth", "model": "constant_depth", "split": "easy"},
    ]
    state = rpx_bench_matrix(
        runs,
        defaults={"manifest": BUILTIN_SAMPLE, "device": "cpu"},
        output_root=str(tmp_path / "board"),
        leaderboard_key="rpx-test-board",
        return_state=True,
    )
    assert state.is_failed() and "1 of 3 benchmark runs failed" in state.message
    [board] = [
        a
        for a in artifacts_with_key(prefect_client, "rpx-test-board")
        if a.flow_run_id == state.state_details.flow_run_id
    ]
    rows = json.loads(board.data) if isinstance(board.data, str) else board.data
    assert [(row["model"], row["split"], row["state"]) for row in rows] == [
        ("ground_plane_prior", "hard", "Completed"),
        ("no_such_model", "hard", "Failed"),
        ("constant_depth", "easy", "Completed"),
    ]
    assert "Unknown model" in rows[1]["error"] and rows[0]["primary_value"] is not None
    assert (tmp_path / "board" / "monocular_depth" / "constant_depth" / "easy" / "result.json").is_file()
    # The leaderboard files of the two completed runs, beside the runs (<output_root>/leaderboard).
    for name in ("leaderboard.parquet", "leaderboard.md", "leaderboard.png"):
        assert (tmp_path / "board" / "leaderboard" / name).is_file(), name
    board_md = (tmp_path / "board" / "leaderboard" / "leaderboard.md").read_text()
    assert "ground_plane_prior" in board_md and "constant_depth" in board_md and "no_such_model" not in board_md

    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    children = prefect_client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[state.state_details.flow_run_id])
        )
    )
    assert sorted(child.name for child in children) == sorted(
        [
            "monocular_depth-ground_plane_prior-hard",
            "monocular_depth-no_such_model-hard",
            "monocular_depth-constant_depth-easy",
        ]
    )


def test_a_matrix_run_after_a_memory_hungry_model_reports_its_own_peak(prefect_client, depth_manifest, tmp_path):
    from tests.support.compute_models import HUNGRY_BYTES

    state = rpx_bench_matrix(
        [
            {"task": "monocular_depth", "model": "tests.support.compute_models:build_memory_hungry"},
            {"task": "monocular_depth", "model": "tests.support.compute_models:build_frugal"},
        ],
        defaults={"manifest": str(depth_manifest), "device": "cpu", "max_samples": 4, "batch_size": 2},
        output_root=str(tmp_path / "board"),
        leaderboard_key="rpx-test-peaks",
        return_state=True,
    )
    assert state.is_completed(), state.message
    hungry, frugal = (
        json.loads((tmp_path / "board" / "monocular_depth" / label / "hard" / "result.json").read_text())["compute"]
        for label in ("build_memory_hungry", "build_frugal")
    )
    assert hungry["peak_host_memory_scope"] == frugal["peak_host_memory_scope"] == "run"
    assert hungry["peak_host_memory_mb"] > HUNGRY_BYTES / 2**20
    # The frugal run comes second in the same process; its peak is its own, not the hungry one's.
    assert frugal["peak_host_memory_mb"] < hungry["peak_host_memory_mb"] - 200
