"""End to end against a real ``prefect server``: the regression event, both automations and their webhook.

One server (own PREFECT_HOME, free port, with its event persister and triggers services) and one local HTTP
server (``http.server`` on 127.0.0.1 in a thread) that records every request, standing in for Slack / Teams.
``deployments/setup_prefect.py --webhook-url`` creates the work pool, the webhook block and the two automations
(run twice: idempotent); ``prefect deploy --all`` and a process worker follow. Two runs of the deployment
``rpx-bench/smoke`` with the same import-path model on the built-in sample data, a good one and a worse one
(its quality comes from a file the worker's environment names, outside the run's fingerprint, so the runs are
comparable; their run folders are siblings, so the second finds the first), and one flow run that fails.
Every process is stopped by its PID.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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

MODEL = "tests.support.regressing_models:depth"

# A flow run that fails (a ConfigError at validate-config), in a process of its own; prints its flow-run id.
FAILING_FLOW_RUN = f"""
from flows.rpx_bench import rpx_bench

state = rpx_bench(task="monocular_depth", model={MODEL!r}, manifest="builtin:sample", max_samples=-1, return_state=True)
print(state.name, state.state_details.flow_run_id)
"""


def deployment_run(env: dict, output_dir, api_url: str) -> dict:
    """``prefect deployment run rpx-bench/smoke`` of MODEL into ``output_dir``, watched to the end; returns the
    flow run (it must have completed) with ``summary``, the run summary its result holds (via result.json)."""
    args = [PREFECT, "deployment", "run", "rpx-bench/smoke", "--watch", "--param", f"model={MODEL}"]
    args += ["--param", f"output_dir={json.dumps(str(output_dir))}"]
    run_cli(args, env, timeout=180)
    result = json.loads((output_dir / "result.json").read_text())
    flow_run = read_flow_run(api_url, result["run"]["orchestration"]["flow_run_id"])
    assert result["run"]["orchestration"]["deployment"] == "smoke"
    return {**flow_run, "run_id": result["run"]["id"]}


class Recorder(BaseHTTPRequestHandler):
    """Records the JSON body of every POST in ``server.received``; answers 200."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append({"path": self.path, "json": json.loads(body or b"null")})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def start_webhook() -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise TimeoutError(f"not within {timeout:.0f} s: {what}")


def read_flow_run(api_url: str, flow_run_id: str) -> dict:
    [flow_run] = api_post(api_url, "/flow_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}})
    return flow_run


def test_regression_event_and_both_automations_notify_a_webhook(tmp_path):
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = isolated_env(tmp_path, api_url)
    env["PYTHONPATH"] = str(REPO)
    server_env = {key: value for key, value in env.items() if key != "PREFECT_API_URL"}
    # Events in, automations evaluated and acted on: the services the alerts need (on by default; said here).
    server_env.update(
        {
            "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": "true",
            "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "true",
            "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_FOREMAN_ENABLED": "false",
        }
    )
    webhook = start_webhook()
    hook_url = f"http://127.0.0.1:{webhook.server_address[1]}/hook"
    started = []
    logs = tmp_path / "logs"
    logs.mkdir()
    work = tmp_path / "work"  # the runs' default results folder: work/rpx_results/<model>/hard/<run id>/
    work.mkdir()
    try:
        server_command = [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
        server = start_background(server_command, tmp_path, server_env, logs / "server.log")
        started.append(server)
        wait_for_health(api_url, server, timeout=90)

        setup = [sys.executable, "deployments/setup_prefect.py", "--gpus", "0", "--webhook-url", hook_url]
        first = run_cli(setup, env, timeout=90)
        assert "automation rpx-benchmark-regressed: created" in first.stdout
        assert "automation rpx-bench-failed: created" in first.stdout
        again = run_cli(setup, env, timeout=90)  # idempotent: updated in place, nothing duplicated
        assert "automation rpx-benchmark-regressed: updated" in again.stdout
        automations = api_post(api_url, "/automations/filter", {})
        assert sorted(a["name"] for a in automations) == ["rpx-bench-failed", "rpx-benchmark-regressed"]

        run_cli([PREFECT, "deploy", "--all", "--no-prompt"], env, timeout=120)
        quality = tmp_path / "quality.txt"
        quality.write_text("good")
        worker_env = {**env, "RPX_TEST_DEPTH_QUALITY_FILE": str(quality)}
        worker_command = [PREFECT, "worker", "start", "--pool", "rpx-process"]
        started.append(start_background(worker_command, tmp_path, worker_env, logs / "worker.log"))

        good = deployment_run(env, work / "good", api_url)
        quality.write_text("bad")
        worse = deployment_run(env, work / "worse", api_url)
        failing = subprocess.run(
            [sys.executable, "-c", FAILING_FLOW_RUN], cwd=work, env=env, capture_output=True, text=True, timeout=240
        )
        state_name, failed_id = failing.stdout.split()[-2:]
        assert state_name == "Failed", failing.stderr[-4000:]

        # The worse run: Completed, tagged regression, with the comparison artifact; the good run untagged.
        assert worse["state"]["type"] == "COMPLETED" and good["state"]["type"] == "COMPLETED"
        assert "regression" in worse["tags"] and "data:sample" in worse["tags"]
        assert "regression" not in good["tags"]
        artifacts = api_post(api_url, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [worse["id"]]}}})
        [artifact] = [a for a in artifacts if (a["key"] or "").endswith("-sample-cpu-comparison")]
        assert artifact["type"] == "markdown" and good["run_id"] in artifact["data"] and "regressed" in artifact["data"]

        def notifications(word: str) -> list[dict]:
            return [r["json"] for r in webhook.received if word in r["json"]["subject"]]

        wait_for(
            lambda: notifications("RPX regression") and notifications("Failed"),
            timeout=60,
            what=f"both notifications; received {webhook.received}",
        )
        time.sleep(3)  # a duplicate would come within this
        [regression] = notifications("RPX regression")
        assert "absrel" in regression["subject"] and "absrel" in regression["body"]
        assert good["run_id"] in regression["body"] and worse["run_id"] in regression["body"]
        assert worse["id"] in regression["body"]  # the flow-run URL
        [failure] = notifications("Failed")
        assert failed_id in failure["body"] and "monocular_depth" in failure["subject"]
        assert len(webhook.received) == 2
    finally:
        for process in reversed(started):
            stop(process)
        webhook.shutdown()
