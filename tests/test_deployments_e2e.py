"""End to end: a real Prefect server, the deployment set-up, prefect deploy, a process worker and
``prefect deployment run rpx-bench/smoke --watch``.

Every process started here is stopped by its PID in a ``finally`` block (the worker ignores
its first SIGTERM, so it gets a second one, then SIGKILL). Takes about a minute.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PREFECT = str(BIN / "prefect")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_health(api_url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prefect server exited early with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"prefect server at {api_url} not healthy after {timeout:.0f} s")


def stop(process: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop a process we started: SIGTERM, a second SIGTERM, then SIGKILL; then reap it."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGTERM, grace / 2), (signal.SIGKILL, 5.0)):
        if process.poll() is not None:
            break
        try:
            process.send_signal(sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    # Children the process started in its own session (uvicorn, flow runs) go with it.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def api_post(api_url: str, path: str, body: dict) -> list | dict:
    request = urllib.request.Request(
        f"{api_url}{path}", data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def run_cli(args: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def isolated_env(tmp_path: Path, api_url: str) -> dict[str, str]:
    """This process's environment without Prefect settings, pointed at ``api_url`` with fast worker polls."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PREFECT_") and key not in ("RPX_PREFECT_RESULTS",)
    }
    env.update(
        {
            "PREFECT_HOME": str(tmp_path / "prefect-home"),
            "PREFECT_API_URL": api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "1",
            "RPX_CACHE_DIR": str(tmp_path / "rpx-cache"),
            "CUDA_VISIBLE_DEVICES": "",
        }
    )
    return env


def start_background(args: list[str], cwd: Path, env: dict, log: Path) -> subprocess.Popen:
    """Start ``args`` in its own session (so ``stop`` can take its children along), output to ``log``."""
    return subprocess.Popen(
        args, cwd=cwd, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True
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
