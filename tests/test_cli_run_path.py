"""How `rpx bench` runs (rpx_tasks.cli_run_path): flow rpx-bench on a configured Prefect server, or in-process
without Prefect, with the same reports, cache, errors and exit codes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from rpx_tasks.cli import main
from rpx_tasks.cli_run_path import (
    FLOW_ON_SERVER,
    FLOW_ON_TEMPORARY_SERVER,
    IN_PROCESS,
    RECORD_HINT,
    choose_run_path,
    configured_api_url,
)
from rpx_tasks.errors import ConfigError
from tests.test_flows import STEP_NAMES, task_runs

# Prints the exit code and the Prefect modules the process imported, after `rpx bench` ran in it.
RUN_AND_LIST_PREFECT = (
    "import json, sys\n"
    "from rpx_tasks.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "loaded = sorted(m for m in sys.modules if m == 'prefect' or m.startswith('prefect.'))\n"
    "print(json.dumps({'code': code, 'prefect_modules': loaded}))\n"
)


def bench_args(manifest: Path, out: Path, *extra: str) -> list[str]:
    return [
        "bench",
        "monocular_depth",
        "--model",
        "ground_plane_prior",
        "--manifest",
        str(manifest),
        "--device",
        "cpu",
        "--max-samples",
        "6",
        "--plain",
        "--output-dir",
        str(out),
        *extra,
    ]


@pytest.fixture
def no_server(monkeypatch, tmp_path):
    """This process and its children see no Prefect server: no PREFECT_API_URL, an empty PREFECT_HOME."""
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("PREFECT_PROFILE", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    monkeypatch.chdir(tmp_path)  # no .env / prefect.toml / pyproject.toml of the checkout
    return tmp_path


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api"


def comparable(result: dict) -> dict:
    """What two runs of the same configuration must agree on (not timings, run ids or paths)."""
    return {key: result[key] for key in ("task", "model", "split", "num_samples", "primary_metric", "aggregated")} | {
        "readiness": {k: v for k, v in result["readiness"].items()}
    }


def test_the_api_url_is_read_as_prefect_reads_it_without_importing_prefect(no_server, monkeypatch):
    home = no_server / "prefect-home"
    assert configured_api_url() is None
    assert choose_run_path().kind == IN_PROCESS and choose_run_path(prefect=True).kind == FLOW_ON_TEMPORARY_SERVER
    # What `prefect config set PREFECT_API_URL=...` writes: the active profile of PREFECT_HOME/profiles.toml.
    home.mkdir()
    (home / "profiles.toml").write_text(
        'active = "local"\n\n[profiles.local]\nPREFECT_API_URL = "http://127.0.0.1:1/api"\n\n[profiles.other]\n'
        'PREFECT_API_URL = "http://127.0.0.1:2/api"\n'
    )
    assert configured_api_url() == "http://127.0.0.1:1/api"
    monkeypatch.setenv("PREFECT_PROFILE", "other")
    assert configured_api_url() == "http://127.0.0.1:2/api"
    (no_server / "prefect.toml").write_text('[api]\nurl = "http://127.0.0.1:3/api"\n')
    assert configured_api_url() == "http://127.0.0.1:3/api"
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4/api")
    assert configured_api_url() == "http://127.0.0.1:4/api"


def test_a_configured_server_that_does_not_answer_is_a_config_error_before_any_work(
    depth_manifest, no_server, monkeypatch, capsys
):
    url = closed_port_url()
    monkeypatch.setenv("PREFECT_API_URL", url)
    with pytest.raises(ConfigError, match="does not answer"):
        choose_run_path()
    code = main(bench_args(depth_manifest, no_server / "out"))
    err = capsys.readouterr().err
    assert code == 1 and f"The Prefect server at {url} does not answer" in err and "hint:" in err
    assert not (no_server / "out").exists()


def test_without_a_server_rpx_bench_runs_in_process_without_importing_prefect(depth_manifest, no_server):
    out = no_server / "out"
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_LIST_PREFECT, *bench_args(depth_manifest, out)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=no_server,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"code": 0, "prefect_modules": []}
    assert RECORD_HINT in done.stderr and "Traceback" not in done.stderr
    assert "prefect    in-process" in done.stdout
    for name in ("result.json", "summary.md", "per_sample_metrics.parquet", "cells.parquet", "run.json"):
        assert (out / name).is_file(), name
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "complete" and record["orchestration"] is None
    assert json.loads((out / "result.json").read_text())["num_samples"] == 6
    assert not (no_server / "prefect-home").exists()  # nothing of Prefect was started or written


def test_in_process_and_flow_runs_write_the_same_metrics_and_compare_with_the_previous_run(
    depth_manifest, no_server, prefect_api_url, monkeypatch, capsys
):
    results = no_server / "rpx_results" / "ground_plane_prior" / "hard"
    assert main(bench_args(depth_manifest, results / "in-process")) == 0
    assert "prefect    in-process" in capsys.readouterr().out
    monkeypatch.setenv("PREFECT_API_URL", prefect_api_url)
    assert main(bench_args(depth_manifest, results / "flow")) == 0
    out = capsys.readouterr().out
    assert f"prefect    flow run on {prefect_api_url}" in out
    monkeypatch.delenv("PREFECT_API_URL")
    assert main(bench_args(depth_manifest, results / "in-process-2")) == 0
    err = capsys.readouterr().err
    # The third run finds the previous complete run beside it (the flow's) and compares, without Prefect.
    assert "[info] previous run: absrel " in err and "against run " in err

    in_process, flow, again = (
        json.loads((results / name / "result.json").read_text()) for name in ("in-process", "flow", "in-process-2")
    )
    assert comparable(in_process) == comparable(flow) == comparable(again)
    assert flow["run"]["orchestration"]["flow_run_id"] and in_process["run"]["orchestration"] is None
    assert flow["run"]["id"] in err


def test_with_a_configured_server_rpx_bench_is_a_flow_run_with_its_task_runs(
    depth_manifest, no_server, prefect_api_url, prefect_client
):
    """The server configured as `prefect config set` does (the active profile), in a fresh `rpx` process."""
    home = no_server / "prefect-home"
    home.mkdir()
    profile = f'active = "local"\n\n[profiles.local]\nPREFECT_API_URL = "{prefect_api_url}"\n'
    (home / "profiles.toml").write_text(profile)
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    out = no_server / "out"
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_LIST_PREFECT, *bench_args(depth_manifest, out)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=no_server,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["prefect_modules"]  # the flow ran here
    assert RECORD_HINT not in done.stderr
    orchestration = json.loads((out / "run.json").read_text())["orchestration"]
    flow_run = prefect_client.read_flow_run(orchestration["flow_run_id"])
    assert flow_run.name == "monocular_depth-ground_plane_prior-hard" and flow_run.state.is_completed()
    assert orchestration["flow_run_name"] == flow_run.name and orchestration["deployment"] is None
    steps = task_runs(prefect_client, flow_run.id)
    assert sorted(steps) == sorted(STEP_NAMES)
    assert all(run.state.is_completed() for run in steps.values())


def test_choose_run_path_uses_a_configured_server_that_answers(no_server, prefect_api_url, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", prefect_api_url)
    path = choose_run_path()
    assert path.kind == FLOW_ON_SERVER and path.api_url == prefect_api_url and path.uses_prefect


def hub_bench_args(hub_env, out: Path, *extra: str) -> list[str]:
    return [
        "bench",
        "monocular_depth",
        "--model",
        "ground_plane_prior",
        "--split",
        "hard",
        "--repo",
        "rpx-test/sharded",
        "--revision",
        "main",
        "--cache-dir",
        str(hub_env.hf_cache),
        "--max-samples",
        "2",
        "--device",
        "cpu",
        "--plain",
        "--output-dir",
        str(out),
        *extra,
    ]


def test_in_process_a_transient_fault_is_retried_and_a_warm_cache_makes_no_request(hub_env, no_server, capsys):
    from tests.test_flows import requests_per_attempt

    pattern = "/api/datasets/rpx-test/sharded/revision/*"
    # Every request of the first download attempt fails (503), then the Hub recovers: retried as the flow's step is.
    fault = hub_env.server.add_fault(pattern, "status", times=requests_per_attempt(hub_env, pattern), status=503)
    assert main(hub_bench_args(hub_env, no_server / "first")) == 0, capsys.readouterr().err
    assert fault.fired and "trying again" in capsys.readouterr().err
    assert hub_env.server.fetched_files()

    hub_env.server.clear()
    assert main(hub_bench_args(hub_env, no_server / "second")) == 0, capsys.readouterr().err
    assert hub_env.server.requests == []  # not even the revision or the manifest
    first, second = (json.loads((no_server / name / "result.json").read_text()) for name in ("first", "second"))
    assert comparable(first) == comparable(second) and first["revision"] == second["revision"]

    # The match is on what selects the files, as the Prefect step's cache key: another revision, size or
    # Hugging Face cache folder is not this split.
    from rpx_tasks.hub import warm_split

    selection = {"modalities": ("rgb", "depth"), "repo_id": "rpx-test/sharded", "cache_dir": str(hub_env.hf_cache)}
    assert warm_split("monocular_depth", "hard", revision="main", max_samples=2, **selection).num_samples == 2
    commit = hub_env.server.repos["rpx-test/sharded"].commit
    assert warm_split("monocular_depth", "hard", revision=commit, max_samples=2, **selection) is None
    assert warm_split("monocular_depth", "hard", revision="main", max_samples=3, **selection) is None
    other_cache = {**selection, "cache_dir": str(no_server / "other-hf-cache")}
    assert warm_split("monocular_depth", "hard", revision="main", max_samples=2, **other_cache) is None


def test_a_failing_run_is_the_same_error_and_exit_code_in_process_and_as_a_flow(
    depth_manifest, no_server, prefect_api_url, monkeypatch, capsys
):
    (no_server / "nan_model.py").write_text(
        "import numpy as np\ndef fn(rgb):\n    return np.full(rgb.shape[:2], np.nan, np.float32)\n"
    )
    monkeypatch.syspath_prepend(str(no_server))
    errors = {}
    for path in ("in-process", "flow"):
        if path == "flow":
            monkeypatch.setenv("PREFECT_API_URL", prefect_api_url)
        args = bench_args(depth_manifest, no_server / path)
        args[args.index("ground_plane_prior")] = "nan_model:fn"
        code = main(args)
        err = capsys.readouterr().err
        errors[path] = (code, [line for line in err.splitlines() if line.startswith(("error:", "  hint:"))])
        record = json.loads((no_server / path / "run.json").read_text())
        assert record["status"] == "failed" and not (no_server / path / "result.json").exists()
    assert errors["in-process"] == errors["flow"]
    code, lines = errors["in-process"]
    assert code == 1 and "NaN" in lines[0] and lines[1].startswith("  hint:")
