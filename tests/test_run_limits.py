"""Runs that never hang for ever nor give up on a brief Hub incident: the flow parameters ``timeout_seconds``,
``benchmark_timeout_seconds`` and ``hub_retry_delays`` (rpx_tasks/steps/run_limits.py), against the session's
Prefect API and the Hub look-alike of tests/support/hub_server.py."""

from __future__ import annotations

import pytest

from flows.rpx_bench import rpx_bench
from rpx_tasks.errors import ConfigError
from rpx_tasks.sample_data.builtin import BUILTIN_SAMPLE
from tests.test_flows import flow_run_logs, hub_params, requests_per_attempt, task_runs

pytest_plugins = ["tests.conftest_prefect"]

SLOW = "tests.support.slow_models:build"


def slow_run(tmp_path, **limits):
    return rpx_bench(
        task="monocular_depth",
        model=SLOW,
        model_kwargs={"delay_s": 0.5},
        manifest=BUILTIN_SAMPLE,
        max_samples=12,
        batch_size=1,
        device="cpu",
        count_flops=False,
        output_dir=str(tmp_path / "slow"),
        return_state=True,
        **limits,
    )


def test_a_benchmark_past_its_timeout_fails_timed_out_and_is_not_retried(prefect_client, tmp_path):
    state = slow_run(tmp_path, benchmark_timeout_seconds=1.5)
    assert state.is_failed()
    benchmark = task_runs(prefect_client, state.state_details.flow_run_id)["run-benchmark"]
    assert benchmark.state.name == "TimedOut" and benchmark.run_count == 1  # a hang would hang again
    assert "exceeded timeout of 1.5 second(s)" in flow_run_logs(prefect_client, state.state_details.flow_run_id)
    assert not (tmp_path / "slow" / "result.json").exists()


def test_a_flow_run_past_its_timeout_fails_timed_out(prefect_client, tmp_path):
    state = slow_run(tmp_path, timeout_seconds=2.5)
    assert state.is_failed() and state.name == "TimedOut", (state.name, state.message)
    assert "exceeded its timeout_seconds (2.5 s)" in state.message
    assert not (tmp_path / "slow" / "result.json").exists()


@pytest.mark.parametrize(
    "limits, word",
    [
        ({"timeout_seconds": -1}, "timeout_seconds"),
        ({"benchmark_timeout_seconds": 0}, "benchmark_timeout_seconds"),
        ({"hub_retry_delays": [30, -1]}, "hub_retry_delays"),
        ({"hub_retry_delays": [1] * 11}, "at most 10"),
    ],
)
def test_bad_limits_fail_before_any_step(prefect_client, tmp_path, limits, word):
    state = slow_run(tmp_path, **limits)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, ConfigError) and word in error.message and error.hint
    assert task_runs(prefect_client, state.state_details.flow_run_id) == {}


def test_hub_retry_delays_set_how_often_a_transient_download_fault_is_retried(prefect_client, hub_env):
    pattern = "/api/datasets/rpx-test/sharded/revision/*"
    per_attempt = requests_per_attempt(hub_env, pattern)
    # Two failing attempts, then the Hub recovers: the default (3 retries) and two delays both get through ...
    hub_env.server.add_fault(pattern, "status", times=2 * per_attempt, status=503)
    state = rpx_bench(
        **hub_params(hub_env, repo_id="rpx-test/sharded", max_samples=2),
        hub_retry_delays=[0.05, 0.1],
        return_state=True,
    )
    assert state.is_completed(), state.message
    assert task_runs(prefect_client, state.state_details.flow_run_id)["download-split"].run_count == 3
    # ... but with no retries at all, a Hub down fails the run at once (another max_samples: not the cached split).
    hub_env.server.clear()
    hub_env.server.add_fault("*rpx-test/sharded*", "status", times=-1, status=503, method=None)
    state = rpx_bench(
        **hub_params(hub_env, repo_id="rpx-test/sharded", max_samples=3, output_dir=str(hub_env.tmp_path / "b")),
        hub_retry_delays=[],
        return_state=True,
    )
    download = task_runs(prefect_client, state.state_details.flow_run_id)["download-split"]
    assert state.is_failed() and download.run_count == 1


def checkpoint_run(hub_env, manifest, **limits):
    return rpx_bench(
        task="monocular_depth",
        hf_checkpoint="rpx-test/tiny-depth",
        manifest=str(manifest),  # the session's sample data: only the checkpoint comes from the Hub
        max_samples=2,
        device="cpu",
        cache_dir=str(hub_env.hf_cache),
        output_dir=str(hub_env.tmp_path / "hf"),
        return_state=True,
        **limits,
    )


def test_resolve_model_retries_a_transient_hub_error_while_fetching_the_checkpoint(
    prefect_client, hub_env, depth_manifest
):
    # The Hub answers 503 for everything of the checkpoint: each attempt fails transiently.
    hub_env.server.add_fault("/rpx-test/tiny-depth/*", "status", times=-1, status=503, method=None)
    state = checkpoint_run(hub_env, depth_manifest, hub_retry_delays=[0.05, 0.05])
    resolve = task_runs(prefect_client, state.state_details.flow_run_id)["resolve-model"]
    assert state.is_failed() and resolve.run_count == 3
    history = [s.name for s in prefect_client.read_task_run_states(resolve.id)]
    assert history.count("AwaitingRetry") + history.count("Retrying") >= 2


def test_resolve_model_does_not_retry_a_checkpoint_the_hub_does_not_have(prefect_client, hub_env, depth_manifest):
    state = checkpoint_run(hub_env, depth_manifest, hub_retry_delays=[0.05, 0.05])  # the look-alike answers 404
    resolve = task_runs(prefect_client, state.state_details.flow_run_id)["resolve-model"]
    assert state.is_failed() and resolve.run_count == 1
