"""End to end: a real Prefect server, the deployment set-up, prefect deploy, a process worker and
``prefect deployment run rpx-bench/smoke --watch``.

Every process started here is stopped by its PID in a ``finally`` block (the worker ignores
its first SIGTERM, so it gets a second one, then SIGKILL). Takes about a minute.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.prefect_server import (
    PREFECT,
    REPO,
    api_post,
    free_port,
    isolated_env,
    run_cli,
    start_background,
    stop,
    wait_for_health,
)


def set_up_and_deploy(api_url: str, env: dict) -> None:
    """Run the work-pool set-up twice (create, then find), ``prefect deploy --all``; check what was stored."""
    setup = run_cli([sys.executable, "deployments/setup_prefect.py"], env, timeout=60)
    assert "work pool rpx-process: created" in setup.stdout
    assert "keeps concurrency leases in memory" in setup.stdout  # this server was started without lease storage
    again = run_cli([sys.executable, "deployments/setup_prefect.py", "--gpus", "1"], env, timeout=60)
    assert "work pool rpx-process: exists" in again.stdout and "work queue rpx-process/gpu-0: created" in again.stdout

    run_cli([PREFECT, "deploy", "--all", "--no-prompt"], env, timeout=120)
    deployments = api_post(api_url, "/deployments/filter", {})
    assert {d["name"] for d in deployments} == {"smoke", "matrix-entry", "nightly-depth", "nightly-leaderboard"}
    smoke = next(d for d in deployments if d["name"] == "smoke")
    assert smoke["pull_steps"] == [{"flows.bootstrap.enter_checkout": {}}]
    assert str(REPO) not in json.dumps(deployments)  # nothing machine-specific was stored
    nightly = next(d for d in deployments if d["name"] == "nightly-depth")
    assert nightly["schedules"][0]["schedule"]["timezone"] == "America/Chicago"
    assert nightly["parameters"]["require_cuda"] is True  # a missing GPU fails the nightly run


def run_smoke(env: dict, output_dir: Path, *params: str) -> None:
    """``prefect deployment run rpx-bench/smoke --watch`` with ``params`` and ``output_dir``; must exit 0."""
    args = [PREFECT, "deployment", "run", "rpx-bench/smoke", "--watch"]
    for param in (*params, f"output_dir={json.dumps(str(output_dir))}"):
        args += ["--param", param]
    run_cli(args, env, timeout=150)


def completed_flow_run(api_url: str, name: str) -> dict:
    """The one flow run named like ``name``, checked COMPLETED."""
    [flow_run] = api_post(api_url, "/flow_runs/filter", {"flow_runs": {"name": {"like_": name}}})
    assert flow_run["state"]["type"] == "COMPLETED"
    return flow_run


def check_depth_smoke_run(api_url: str, output_dir: Path) -> None:
    """The default smoke run completed, wrote the four report files and published its artifacts, keyed by the
    data source (``sample``) and device class (``cpu``), and carries the run's tags."""
    flow_run = completed_flow_run(api_url, "monocular_depth-ground_plane_prior-hard")
    for name in ("result.json", "summary.md", "per_sample_metrics.parquet", "cells.parquet"):
        assert (output_dir / name).is_file(), name
    artifacts = api_post(api_url, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [flow_run["id"]]}}})
    types = {artifact["key"]: artifact["type"] for artifact in artifacts if artifact["key"]}  # not the result
    assert types == {
        "rpx-monocular-depth-ground-plane-prior-hard-sample-cpu-summary": "markdown",
        "rpx-monocular-depth-ground-plane-prior-hard-sample-cpu-metrics": "table",
        "rpx-monocular-depth-ground-plane-prior-hard-sample-cpu-phases": "table",
        "rpx-monocular-depth-ground-plane-prior-hard-sample-cpu-progress": "progress",
    }
    assert {"smoke", "task:monocular_depth", "data:sample", "device:cpu"} <= set(flow_run["tags"])


def test_smoke_deployment_on_a_real_server_and_worker(tmp_path):
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = isolated_env(tmp_path, api_url)
    server_env = {key: value for key, value in env.items() if key != "PREFECT_API_URL"}
    started: list[subprocess.Popen] = []
    logs = tmp_path / "logs"
    logs.mkdir()
    try:
        server_command = [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
        server = start_background(server_command, tmp_path, server_env, logs / "server.log")
        started.append(server)
        wait_for_health(api_url, server)
        set_up_and_deploy(api_url, env)
        worker_command = [PREFECT, "worker", "start", "--pool", "rpx-process"]
        started.append(start_background(worker_command, tmp_path, env, logs / "worker.log"))

        run_smoke(env, tmp_path / "smoke-report")
        check_depth_smoke_run(api_url, tmp_path / "smoke-report")

        # The same deployment runs any task: its model is `baseline`, the task's own.
        # video_depth, whose unit is a clip: one row per clip.
        video_dir = tmp_path / "smoke-video-depth"
        run_smoke(env, video_dir, "task=video_depth")
        completed_flow_run(api_url, "video_depth-video_ground_plane_prior-hard")
        video_result = json.loads((video_dir / "result.json").read_text())
        assert video_result["task"] == "video_depth" and video_result["num_frames"] > video_result["num_samples"]
    finally:
        for process in reversed(started):
            stop(process)
