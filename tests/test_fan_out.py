"""The fan-out of a matrix through a deployment (flows/fan_out.py) against the session's Prefect API: which GPU
queues it uses, its bound, and the errors a user can make, refused before any entry is submitted. The fan-out
with real workers is tests/test_fan_out_e2e.py."""

from __future__ import annotations

import time

import pytest

from flows.fan_out import FanOut, gpu_queues, plan_fan_out
from flows.rpx_bench_matrix import rpx_bench_matrix
from rpx_tasks.errors import ConfigError
from rpx_tasks.sample_data.builtin import BUILTIN_SAMPLE
from tests.test_flows import task_runs

pytest_plugins = ["tests.conftest_prefect"]


def test_each_entry_goes_to_the_gpu_queue_with_the_fewest_in_flight():
    plan = FanOut(deployment="rpx-bench/x", queues=["gpu-0", "gpu-1", "gpu-2"], max_parallel=3)
    assert plan.next_queue() == "gpu-0"
    plan.in_flight["a"] = (0, "gpu-0")
    plan.in_flight["b"] = (1, "gpu-1")
    assert plan.next_queue() == "gpu-2"
    plan.in_flight["c"] = (2, "gpu-2")
    del plan.in_flight["b"]  # GPU 1's entry finished: the next one goes there
    assert plan.next_queue() == "gpu-1"
    assert FanOut(deployment="rpx-bench/x", queues=[], max_parallel=4).next_queue() is None


def test_the_gpu_queues_are_those_a_worker_polls_in_natural_order(prefect_client):
    from prefect.client.schemas.actions import WorkPoolCreate

    pool = f"fan-out-{time.monotonic_ns()}"
    prefect_client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    for name in ("gpu-10", "gpu-2", "gpu-1", "gpu-idle", "gpu-paused", "other"):
        prefect_client.create_work_queue(name=name, work_pool_name=pool, concurrency_limit=1)
    prefect_client.create_work_queue(name="gpu-3", work_pool_name=pool, is_paused=True)
    # A worker polling its queues is what makes them READY (gpu-idle has no worker).
    prefect_client.get_scheduled_flow_runs_for_work_pool(
        pool, work_queue_names=["gpu-10", "gpu-2", "gpu-1", "gpu-3", "other"]
    )
    deadline = time.monotonic() + 15  # the server marks polled queues READY in the background
    while gpu_queues(prefect_client, pool) != ["gpu-1", "gpu-2", "gpu-10"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert gpu_queues(prefect_client, pool) == ["gpu-1", "gpu-2", "gpu-10"]
    assert gpu_queues(prefect_client, None) == []


def test_a_fan_out_through_a_missing_deployment_is_refused_before_any_entry_runs(prefect_client, tmp_path):
    state = rpx_bench_matrix(
        [{"task": "monocular_depth", "model": "constant_depth"}],
        defaults={"manifest": BUILTIN_SAMPLE, "device": "cpu"},
        deployment="rpx-bench/no-such-deployment",
        leaderboard_dir=str(tmp_path / "board"),
        return_state=True,
    )
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, ConfigError) and "was not found" in error.message and "prefect deploy" in error.hint
    assert task_runs(prefect_client, state.state_details.flow_run_id) == {}
    assert not (tmp_path / "board").exists()


@pytest.mark.parametrize(
    "bound, poll, word", [(0, 5.0, "max_parallel"), (-2, 5.0, "max_parallel"), (None, 0, "poll_seconds")]
)
def test_a_bad_bound_or_poll_interval_is_refused(prefect_api, bound, poll, word):
    with pytest.raises(ConfigError, match=f"{word} must be") as info:
        plan_fan_out("rpx-bench/anything", None, bound, 3, poll)
    assert info.value.hint


def test_a_matrix_timeout_that_is_not_a_positive_number_is_refused(prefect_api):
    state = rpx_bench_matrix(
        [{"task": "monocular_depth", "model": "constant_depth"}], timeout_seconds=0, return_state=True
    )
    error = state.result(raise_on_failure=False)
    assert isinstance(error, ConfigError) and "timeout_seconds" in error.message
