"""A nightly run never benchmarks on the CPU by accident: ``require_cuda`` (flow parameter, ``--require-cuda``)
fails a run on a machine without CUDA with a ConfigError saying the GPU is required, before any download or
model load, and the failed flow run still carries its task, model, split and data tags."""

from __future__ import annotations

import pytest

from flows.rpx_bench import rpx_bench
from rpx_tasks.cli import main
from rpx_tasks.errors import ConfigError
from rpx_tasks.sample_data.builtin import BUILTIN_SAMPLE
from tests.test_flows import task_runs

pytest_plugins = ["tests.conftest_prefect"]


@pytest.fixture(autouse=True)
def no_cuda():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: a run requiring it would run")


def test_a_nightly_like_flow_run_without_cuda_fails_saying_the_gpu_is_required(prefect_client, tmp_path):
    state = rpx_bench(
        task="monocular_depth",
        model="ground_plane_prior",
        manifest=BUILTIN_SAMPLE,
        device="cuda",
        require_cuda=True,
        output_dir=str(tmp_path / "out"),
        return_state=True,
    )
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, ConfigError) and "GPU is required" in error.message
    assert not (tmp_path / "out" / "result.json").exists()
    flow_run = prefect_client.read_flow_run(state.state_details.flow_run_id)
    assert {"task:monocular_depth", "model:ground_plane_prior", "split:hard", "data:sample"} <= set(flow_run.tags)
    steps = task_runs(prefect_client, flow_run.id)
    assert steps["resolve-device"].state.is_failed() and "run-benchmark" not in steps


def test_cli_require_cuda_flag_fails_without_cuda(tmp_path, capsys):
    code = main(
        [
            "bench",
            "monocular_depth",
            "--model",
            "ground_plane_prior",
            "--manifest",
            BUILTIN_SAMPLE,
            "--device",
            "cuda",
            "--require-cuda",
            "--output-dir",
            str(tmp_path / "out"),
            "--plain",
        ]
    )
    captured = capsys.readouterr()
    assert code != 0 and "GPU is required" in captured.out + captured.err
