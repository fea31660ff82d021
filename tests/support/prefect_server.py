"""A real Prefect server and processes around it, for the end-to-end tests: free ports, health waits,
an isolated environment, background processes in their own session and stopping them by PID (a worker
ignores its first SIGTERM), the REST API and the CLIs."""

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

REPO = Path(__file__).resolve().parents[2]
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
