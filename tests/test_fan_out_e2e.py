"""End to end: the matrix fanned out through a deployment onto two GPU workers, and a nightly collision.

A real ``prefect server`` (own PREFECT_HOME, free port, leases on disk), ``deployments/setup_prefect.py --gpus 2``
(work queues ``gpu-0`` and ``gpu-1`` with concurrency 1, limits ``gpu-<host>-0/1``), ``prefect deploy`` of the
deployments ``matrix-entry`` and ``nightly-depth``, and two process workers, one per queue
(``CUDA_VISIBLE_DEVICES=i``; this machine's CPU stands in for the GPUs: the queue and limit plumbing is what is
tested; worker 0 also serves the default queue). Then:

- ``rpx-bench-matrix`` with ``deployment="rpx-bench/matrix-entry"`` runs four slow entries and one failing entry:
  two run at a time (overlap observed from the flow runs' start and end times), the wall time is clearly less
  than the sum of the runs' times (what they would take in sequence), the per-sample results equal those of the
  in-process matrix, and the failing entry leaves the others and the leaderboard intact;
- a second run of ``rpx-bench/nightly-depth`` scheduled while the first is active is cancelled by the
  deployment's collision strategy (CANCEL_NEW).

The measured overlap and wall-time ratio are printed (``pytest -s``). Every process is stopped by its PID.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from flows.rpx_bench_matrix import rpx_bench_matrix
from rpx_tasks.sample_data.builtin import BUILTIN_SAMPLE
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

SLOW = "tests.support.slow_models:build"
DELAY_S = 1.0  # per sample: four samples make each entry sleep 4 s

# Four entries that finish, then one that fails at validate-config (an unknown model).
ENTRIES = {
    "easy": {"task": "monocular_depth", "model": SLOW, "split": "easy"},
    "medium": {"task": "monocular_depth", "model": SLOW, "split": "medium"},
    "hard": {"task": "monocular_depth", "model": SLOW, "split": "hard"},
    "hard-affine": {"task": "monocular_depth", "model": SLOW, "split": "hard", "alignment": "ls_affine"},
}
DEFAULTS = {"manifest": BUILTIN_SAMPLE, "device": "cpu", "max_samples": 4, "batch_size": 1, "count_flops": False}

MATRIX = """
import json, sys
from flows.rpx_bench_matrix import rpx_bench_matrix

state = rpx_bench_matrix(**json.loads(sys.argv[1]), return_state=True)
outcome = {"state": state.name, "message": state.message, "id": str(state.state_details.flow_run_id)}
print("MATRIX " + json.dumps(outcome))
"""


def entries(root: Path, delay_s: float) -> list[dict]:
    """The matrix entries writing into ``root/<name>``, the slow model sleeping ``delay_s`` per sample."""
    runs = [{**entry, "output_dir": str(root / name)} for name, entry in ENTRIES.items()]
    runs.append({"task": "monocular_depth", "model": "no_such_model", "output_dir": str(root / "failing")})
    for run in runs:
        run["model_kwargs"] = {"delay_s": delay_s}
    return runs


def metric_columns(folder: Path) -> dict:
    table = pq.read_table(folder / "per_sample_metrics.parquet").to_pydict()
    return {name: values for name, values in table.items() if name != "latency_ms"}  # timings differ


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise TimeoutError(f"not within {timeout:.0f} s: {what}")


def read_flow_run(api_url: str, flow_run_id: str) -> dict:
    [flow_run] = api_post(api_url, "/flow_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}})
    return flow_run


def final(api_url: str, flow_run_id) -> dict | None:
    """The flow run once its state is final, else None."""
    flow_run = read_flow_run(api_url, str(flow_run_id))
    return flow_run if flow_run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None


def instant(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def overlap_figures(children: list[dict]) -> dict:
    """The most entries in flight at once, the seconds two were, the wall time and the sum of the entries' times.

    An entry is in flight from its flow run's creation (the matrix submits it when a place frees up) to its end:
    the worker's pick-up and the flow-run process's start-up count, as they would in sequence."""
    intervals = [(instant(c["created"]), instant(c["end_time"])) for c in children]
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = most = 0
    both = 0.0
    previous = events[0][0]
    for moment, step in events:
        if running >= 2:
            both += moment - previous
        running += step
        most = max(most, running)
        previous = moment
    wall = max(end for _, end in intervals) - min(start for start, _ in intervals)
    total = sum(end - start for start, end in intervals)
    return {"most_at_once": most, "overlap_s": both, "wall_s": wall, "sequential_s": total, "ratio": wall / total}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, sample_dataset):
    """A server, the set-up with two GPU queues, every deployment, and one worker per queue; yields (api_url, env)."""
    tmp_path = tmp_path_factory.mktemp("fan-out")
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = isolated_env(tmp_path, api_url)
    env["PYTHONPATH"] = str(REPO)  # the workers' flow runs import tests.support.slow_models
    env["RPX_CACHE_DIR"] = str(sample_dataset.parent)  # the sample data is written already
    server_env = {key: value for key, value in env.items() if key != "PREFECT_API_URL"}
    server_env["PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE"] = "prefect.server.concurrency.lease_storage.filesystem"
    started: list[subprocess.Popen] = []
    logs = tmp_path / "logs"
    logs.mkdir()
    try:
        server_command = [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
        started.append(start_background(server_command, tmp_path, server_env, logs / "server.log"))
        wait_for_health(api_url, started[0])
        setup = run_cli([sys.executable, "deployments/setup_prefect.py", "--gpus", "2"], env, timeout=60)
        assert "work queue rpx-process/gpu-1: created (concurrency 1)" in setup.stdout, setup.stdout
        assert "warning" not in setup.stdout  # the server keeps its leases on disk
        # The two deployments these tests run, as `prefect deploy --all` stores them (tests/test_deployments_e2e.py).
        run_cli([PREFECT, "deploy", "--no-prompt", "-n", "matrix-entry", "-n", "nightly-depth"], env, timeout=120)
        for gpu, queues in (("0", ["gpu-0", "default"]), ("1", ["gpu-1"])):
            command = [PREFECT, "worker", "start", "--pool", "rpx-process"]
            for queue in queues:
                command += ["--work-queue", queue]
            worker_env = {**env, "CUDA_VISIBLE_DEVICES": gpu}
            started.append(start_background(command, tmp_path, worker_env, logs / f"worker-{gpu}.log"))

        def both_ready() -> bool:
            queues = api_post(api_url, "/work_pools/rpx-process/queues/filter", {})
            return {q["name"] for q in queues if q["status"] == "READY"} >= {"gpu-0", "gpu-1"}

        wait_until(both_ready, 60, "both GPU workers polling")
        yield api_url, env
    finally:
        for process in reversed(started):
            stop(process)


def test_the_matrix_fans_out_two_at_a_time_with_the_results_of_the_in_process_matrix(cluster, prefect_client, tmp_path):
    api_url, env = cluster
    arguments = {
        "runs": entries(tmp_path / "fanned", DELAY_S),
        "defaults": DEFAULTS,
        "deployment": "rpx-bench/matrix-entry",  # max_parallel: one per ready GPU queue, so 2
        "poll_seconds": 0.5,
        "leaderboard_key": "rpx-test-fan-out",
        "leaderboard_dir": str(tmp_path / "board"),
    }
    matrix = subprocess.Popen(
        [sys.executable, "-c", MATRIX, json.dumps(arguments)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Meanwhile the in-process matrix (no deployment; the session's test API) gives the reference results.
        reference = rpx_bench_matrix(
            entries(tmp_path / "in-process", 0.0),
            defaults=DEFAULTS,
            leaderboard_key="rpx-test-local",
            return_state=True,
        )
        stdout, stderr = matrix.communicate(timeout=240)
    finally:
        if matrix.poll() is None:
            stop(matrix)
    assert reference.is_failed() and "1 of 5" in reference.message
    outcome = json.loads(next(line[7:] for line in stdout.splitlines() if line.startswith("MATRIX ")))
    assert outcome["state"] == "Failed" and "1 of 5 benchmark runs failed" in outcome["message"], stderr[-4000:]

    children = api_post(api_url, "/flow_runs/filter", {"flow_runs": {"parent_flow_run_id": {"any_": [outcome["id"]]}}})
    states = sorted(child["state"]["type"] for child in children)
    assert states == ["COMPLETED"] * 4 + ["FAILED"], states
    queues = sorted(child["work_queue_name"] for child in children)
    assert queues.count("gpu-0") >= 2 and queues.count("gpu-1") >= 2, queues  # both GPU workers served entries
    figures = overlap_figures(children)
    print(
        f"\nfan-out of 5 entries on 2 workers: at most {figures['most_at_once']} in flight at once, two for "
        f"{figures['overlap_s']:.1f} s; wall {figures['wall_s']:.1f} s vs {figures['sequential_s']:.1f} s in "
        f"sequence: ratio {figures['ratio']:.2f}"
    )
    assert figures["most_at_once"] == 2  # two at a time, never more
    assert figures["ratio"] < 0.8, figures

    for name in ENTRIES:  # the same per-sample results as in-process
        assert metric_columns(tmp_path / "fanned" / name) == metric_columns(tmp_path / "in-process" / name), name
    assert not (tmp_path / "fanned" / "failing" / "result.json").exists()

    # The failing entry left the leaderboard of the four others intact, and the table says why it failed.
    board = pq.read_table(tmp_path / "board" / "leaderboard.parquet").to_pydict()
    assert sorted(board["split"]) == ["easy", "hard", "hard", "medium"] and None not in board["primary_mean"]
    [artifact] = api_post(api_url, "/artifacts/filter", {"artifacts": {"key": {"any_": ["rpx-test-fan-out"]}}})
    rows = json.loads(artifact["data"]) if isinstance(artifact["data"], str) else artifact["data"]
    assert [row["state"] for row in rows] == ["Completed"] * 4 + ["Failed"]
    assert "no_such_model" in rows[4]["error"] and all(row["primary_value"] is not None for row in rows[:4])


def test_a_second_nightly_run_while_one_is_active_is_cancelled(cluster, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Scheduled

    api_url, _ = cluster
    overrides = {  # the nightly deployment as it is stored, on this machine's CPU with the sample data
        "model": SLOW,
        "model_kwargs": {"delay_s": 1.0},
        "manifest": BUILTIN_SAMPLE,
        "device": "cpu",
        "require_cuda": False,
        "max_samples": 8,
        "batch_size": 1,
        "count_flops": False,
    }
    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        nightly = client.read_deployment_by_name("rpx-bench/nightly-depth")
        assert nightly.global_concurrency_limit.limit == 1
        assert nightly.concurrency_options.collision_strategy.value == "CANCEL_NEW"
        assert nightly.parameters["hub_retry_delays"] == [30, 120, 600] and nightly.parameters["timeout_seconds"]
        first = client.create_flow_run_from_deployment(
            nightly.id, parameters={**overrides, "output_dir": str(tmp_path / "first")}
        )
        wait_until(
            lambda: read_flow_run(api_url, str(first.id))["state"]["type"] in ("PENDING", "RUNNING"),
            60,
            "the first nightly run started",
        )
        second = client.create_flow_run_from_deployment(
            nightly.id, parameters={**overrides, "output_dir": str(tmp_path / "second")}, state=Scheduled()
        )
        ended = wait_until(lambda: final(api_url, second.id), 60, "the second nightly run ended")
        assert ended["state"]["type"] == "CANCELLED", ended["state"]
        first_run = wait_until(lambda: final(api_url, first.id), 90, "the first nightly run finished")
    assert first_run["state"]["type"] == "COMPLETED", first_run["state"]  # the active run was not disturbed
    assert (tmp_path / "first" / "result.json").is_file() and not (tmp_path / "second").exists()
