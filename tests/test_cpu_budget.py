"""Sharing the cores (rpx_tasks.cpu_budget) and the run options of issue 13 (--precision, --compile,
--num-workers): validation, flow parameters, CLI options."""

from __future__ import annotations

import inspect
import os
import sys
import threading

import numpy as np
import pytest

from flows.parameters import PARAMETER_DEFAULTS, PARAMETER_FIELDS
from rpx_tasks.bench import validate_config
from rpx_tasks.cli import build_parser
from rpx_tasks.cpu_budget import (
    BACKGROUND_NICENESS,
    apply_torch_threads,
    available_cores,
    decode_threads,
    run_in_background,
    torch_threads,
)
from rpx_tasks.dataset import open_split
from rpx_tasks.errors import ConfigError
from rpx_tasks.sample_data.builtin import builtin_manifest_path
from rpx_tasks.tasks import get_task


def test_cores_come_from_the_affinity_mask():
    assert available_cores() == len(os.sched_getaffinity(0))
    assert decode_threads(None) == max(2, min(4, available_cores() // 4))
    assert decode_threads(0) == 0 and decode_threads(3) == 3


def test_rpx_torch_threads(monkeypatch):
    import torch

    monkeypatch.delenv("RPX_TORCH_THREADS", raising=False)
    assert torch_threads() is None and apply_torch_threads() is None
    before = torch.get_num_threads()
    monkeypatch.setenv("RPX_TORCH_THREADS", "1")
    try:
        assert apply_torch_threads() == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("RPX_TORCH_THREADS", bad)
        with pytest.raises(ConfigError, match="RPX_TORCH_THREADS") as info:
            torch_threads()
        assert "integer >= 1" in info.value.hint


def _helper_scheduling():
    seen = {}

    def helper():
        native = threading.get_native_id()
        seen.update(policy=os.sched_getscheduler(native), nice=os.getpriority(os.PRIO_PROCESS, native))

    worker = threading.Thread(target=run_in_background(helper))
    worker.start()
    worker.join()
    return seen


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread scheduling is Linux's")
def test_background_helpers_lower_their_own_thread_only(monkeypatch):
    main = threading.get_native_id()
    policy, nice = os.sched_getscheduler(main), os.getpriority(os.PRIO_PROCESS, main)
    monkeypatch.delenv("RPX_HELPER_PRIORITY", raising=False)
    assert _helper_scheduling() == {"policy": policy, "nice": min(19, nice + BACKGROUND_NICENESS)}
    monkeypatch.setenv("RPX_HELPER_PRIORITY", "idle")
    assert _helper_scheduling()["policy"] == os.SCHED_IDLE
    monkeypatch.setenv("RPX_HELPER_PRIORITY", "0")
    assert _helper_scheduling() == {"policy": policy, "nice": nice}
    assert (os.sched_getscheduler(main), os.getpriority(os.PRIO_PROCESS, main)) == (policy, nice)
    monkeypatch.setenv("RPX_HELPER_PRIORITY", "lowest")
    with pytest.raises(ConfigError, match="RPX_HELPER_PRIORITY") as info:
        validate_config(_params())
    assert "idle" in info.value.hint


def test_zero_workers_decode_on_the_callers_thread_with_the_same_samples():
    split = open_split(builtin_manifest_path("monocular_depth", "hard"), get_task("monocular_depth"))
    threads_seen = set()
    decode = split.decode

    def spy(entry):
        threads_seen.add(threading.get_ident())
        return decode(entry)

    split.decode = spy
    inline = [s for batch in split.iter_batches(3, workers=0) for s in batch]
    assert threads_seen == {threading.get_ident()}
    threaded = [s for batch in split.iter_batches(3, workers=2, engine="threads", background=True) for s in batch]
    assert [s.id for s in inline] == [s.id for s in threaded] == [e["id"] for e in split.entries]
    for a, b in zip(inline, threaded):
        np.testing.assert_array_equal(a.rgb, b.rgb)
        assert a.read_seconds is not None and a.read_seconds[0] > 0


def _params(**extra):
    return {"task": "monocular_depth", "model_name": "baseline", "manifest": "builtin:sample", **extra}


def test_run_options_are_validated_before_anything_runs():
    config = validate_config(_params(device="cpu", num_workers=0))
    assert config.precision == "fp32" and config.compile is False and config.num_workers == 0
    with pytest.raises(ConfigError, match="num_workers"):
        validate_config(_params(num_workers=-1))
    with pytest.raises(ConfigError, match="Unknown precision"):
        validate_config(_params(precision="fp8"))
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        validate_config({"task": "monocular_depth", "hf_checkpoint": "org/name", "device": "cpu", "precision": "fp16"})
    # precision and compile belong to the HF fast paths: a numpy baseline refuses them, with a hint.
    for option in ({"precision": "bf16"}, {"compile": True}):
        with pytest.raises(ConfigError, match="apply to the HF fast paths") as info:
            validate_config(_params(**option))
        assert "--hf-checkpoint" in info.value.hint
    # A fast path that does not take them (keypoint matching's) says so.
    with pytest.raises(ConfigError, match="not supported by the keypoint_matching HF fast path"):
        validate_config({"task": "keypoint_matching", "hf_checkpoint": "org/name", "precision": "bf16"})
    # bf16 on the CPU and fp16 on a CUDA device (not yet resolved) pass validation.
    validate_config({"task": "monocular_depth", "hf_checkpoint": "org/name", "device": "cpu", "precision": "bf16"})
    validate_config({"task": "monocular_depth", "hf_checkpoint": "org/name", "device": "cuda", "precision": "fp16"})


def test_precision_is_part_of_the_fingerprint_and_compile_is_not():
    from rpx_tasks.run_identity import config_fingerprint

    def fingerprint(**options):
        hf = {"task": "monocular_depth", "hf_checkpoint": "org/name", "manifest": "builtin:sample", "device": "cpu"}
        return config_fingerprint(validate_config({**hf, **options}))

    assert fingerprint(precision="bf16") != fingerprint() == fingerprint(precision="fp32")
    assert fingerprint(compile=True) == fingerprint() and fingerprint(num_workers=0) == fingerprint()


def test_flow_parameters_and_cli_options():
    from flows.rpx_bench import bench_flow

    for name, default in (("precision", "fp32"), ("compile", False), ("num_workers", None)):
        assert PARAMETER_FIELDS[name] == name and PARAMETER_DEFAULTS[name] == default
        assert name in inspect.signature(bench_flow().fn).parameters
    args = build_parser().parse_args(
        ["bench", "monocular_depth", "--hf-checkpoint", "x/y", "--precision", "bf16", "--compile", "--num-workers", "0"]
    )
    assert (args.precision, args.compile, args.num_workers) == ("bf16", True, 0)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "monocular_depth", "--model", "baseline", "--precision", "fp8"])
