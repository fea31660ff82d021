"""End to end against a real ``prefect server``: the regression event, both automations and their webhook.

One server (own PREFECT_HOME, free port, with its event persister and triggers services) and one local HTTP
server (``http.server`` on 127.0.0.1 in a thread) that records every request, standing in for Slack / Teams.
``deployments/setup_prefect.py --webhook-url`` creates the webhook block and the two automations (run twice:
idempotent). Then, in one subprocess, three flow runs of ``rpx-bench`` on the built-in sample data with the
same import-path model: a good run, a worse run (its quality comes from an environment variable outside the
run's fingerprint, so the runs are comparable) and a run that fails. Every process is stopped by its PID.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.test_deployments_e2e import (
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

# Three flow runs in one process (one import of Prefect and torch); prints one JSON line per run.
FLOW_RUNS_SCRIPT = f"""
import json, os
from flows.rpx_bench import rpx_bench

def run(**extra):
    params = dict(task="monocular_depth", model={MODEL!r}, manifest="builtin:sample", device="cpu")
    state = rpx_bench(**{{**params, **extra}}, return_state=True)
    summary = state.result() if state.is_completed() else None
    print(json.dumps({{"flow_run_id": str(state.state_details.flow_run_id), "state": state.name,
                      "comparison": (summary or {{}}).get("comparison"), "run_id": (summary or {{}}).get("run_id")}}))

run()
os.environ["RPX_TEST_DEPTH_QUALITY"] = "bad"
run()
run(max_samples=-1)  # a ConfigError at validate-config: the flow run fails
"""


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

        result = subprocess.run(
            [sys.executable, "-c", FLOW_RUNS_SCRIPT], cwd=work, env=env, capture_output=True, text=True, timeout=240
        )
        assert result.returncode == 0, result.stderr[-4000:]
        good, worse, failed = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]

        assert good["state"] == "Completed" and good["comparison"] == {"status": "no previous run"}
        assert worse["state"] == "Completed"
        comparison = worse["comparison"]
        assert comparison["status"] == "compared" and comparison["verdict"] == "regressed"
        assert comparison["previous_run_id"] == good["run_id"] and comparison["metric"] == "absrel"
        assert failed["state"] == "Failed"

        # The worse run: Completed, tagged regression, with the comparison artifact; the good run untagged.
        worse_run = read_flow_run(api_url, worse["flow_run_id"])
        assert worse_run["state"]["type"] == "COMPLETED"
        assert "regression" in worse_run["tags"] and "data:sample" in worse_run["tags"]
        assert "regression" not in read_flow_run(api_url, good["flow_run_id"])["tags"]
        artifacts = api_post(
            api_url, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [worse["flow_run_id"]]}}}
        )
        [artifact] = [a for a in artifacts if a["key"] == comparison["artifact"]]
        assert artifact["type"] == "markdown" and artifact["key"].endswith("-sample-cpu-comparison")

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
        assert worse["flow_run_id"] in regression["body"]  # the flow-run URL
        [failure] = notifications("Failed")
        assert failed["flow_run_id"] in failure["body"] and "monocular_depth" in failure["subject"]
        assert len(webhook.received) == 2
    finally:
        for process in reversed(started):
            stop(process)
        webhook.shutdown()
