"""Compute figures that say what they measure: peak memory of this run only, every parameter of
every torch module a model holds, and a FLOP pass that a stateful model never sees."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch

from rpx_tasks.cli import main
from rpx_tasks.dataset import open_split
from rpx_tasks.device import HOST_PEAK_PROCESS, HOST_PEAK_RUN, PeakMemoryWindow
from rpx_tasks.models.torch_module import ParameterCounts, parameter_counts, torch_modules_of
from rpx_tasks.reports import efficiency_rows
from rpx_tasks.runner import run_benchmark
from rpx_tasks.tasks import get_task
from tests.support.compute_models import FrugalDepth, TorchStatefulDepth

DEPTH = get_task("monocular_depth")
SCRATCH_MB = 200


class Rows:
    def __init__(self):
        self.rows = []

    def write(self, row):
        self.rows.append(row)


class FrozenBackboneDepth:
    """No ``torch_module``: a frozen 1.0 M backbone and a trainable 0.5 M head, held as attributes,
    in a dict and in a nested list (the backbone three times)."""

    task = "monocular_depth"
    name = "frozen_backbone"

    def __init__(self):
        self.backbone = torch.nn.Linear(1000, 1000, bias=False).requires_grad_(False)
        self.heads = {"depth": torch.nn.Linear(1000, 500, bias=False)}
        self.stages = [self.backbone, [self.heads["depth"], (self.backbone,)]]

    def setup(self):
        pass

    def predict(self, batch):
        with torch.inference_mode():
            for _ in batch:
                self.heads["depth"](self.backbone(torch.ones(1, 1000)))
        return [np.full(sample.rgb.shape[:2], 2.0, np.float32) for sample in batch]


class UncopyableStatefulDepth(TorchStatefulDepth):
    """A stateful torch model holding a lock, which ``copy.deepcopy`` refuses."""

    def __init__(self):
        super().__init__(name="uncopyable")
        self.lock = threading.Lock()


def _run(model, manifest, *, batch_size=3, **kwargs):
    rows = Rows()
    outcome = run_benchmark(
        model, open_split(manifest, DEPTH), DEPTH, device="cpu", batch_size=batch_size, rows=rows, **kwargs
    )
    return outcome, rows.rows


def _frame_pixels(manifest) -> int:
    dataset = open_split(manifest, DEPTH)
    height, width = dataset.decode(dataset.entries[0]).rgb.shape[:2]
    return height * width


# -- peak memory ---------------------------------------------------------------------------------


def test_a_new_window_forgets_the_host_peak_of_the_one_before():
    before = PeakMemoryWindow.start("cpu")
    scratch = np.empty(SCRATCH_MB * 2**20, np.uint8)
    scratch.fill(1)
    del scratch
    first = before.read()
    second = PeakMemoryWindow.start("cpu").read()
    assert first["peak_host_memory_method"] == second["peak_host_memory_method"] == HOST_PEAK_RUN
    assert first["peak_host_memory_scope"] == "run"
    assert second["peak_host_memory_mb"] < first["peak_host_memory_mb"] - SCRATCH_MB * 0.75
    assert first["peak_gpu_memory_mb"] is None and second["peak_gpu_memory_mb"] is None


def test_the_process_lifetime_fallback_says_so():
    scratch = np.empty(SCRATCH_MB * 2**20, np.uint8)
    scratch.fill(1)
    del scratch
    lifetime = PeakMemoryWindow("cpu", HOST_PEAK_PROCESS).read()
    run = PeakMemoryWindow.start("cpu").read()
    assert lifetime["peak_host_memory_scope"] == "process_lifetime"
    assert lifetime["peak_host_memory_mb"] > run["peak_host_memory_mb"] + SCRATCH_MB * 0.75
    labels = [label for label, _ in efficiency_rows(lifetime)]
    assert labels == ["peak host memory (MB, process lifetime)"]


# -- parameters ----------------------------------------------------------------------------------


def test_parameters_are_found_without_torch_module_counted_once_and_split_by_trainability():
    model = FrozenBackboneDepth()
    assert len(torch_modules_of(model)) == 2
    assert parameter_counts(model) == ParameterCounts(total_m=1.5, trainable_m=0.5, frozen_m=1.0)
    assert parameter_counts(FrugalDepth()) is None


def test_a_run_reports_params_and_flops_of_modules_held_as_attributes(depth_manifest):
    outcome, rows = _run(FrozenBackboneDepth(), depth_manifest)
    compute = outcome.compute
    assert (compute["params_m"], compute["params_trainable_m"], compute["params_frozen_m"]) == (1.5, 0.5, 1.0)
    # One sample: 1000x1000 then 1000x500 multiply-adds.
    assert compute["flops_g"] == pytest.approx(2 * (1000 * 1000 + 1000 * 500) / 1e9)
    assert compute["flops_skipped_reason"] is None


# -- the FLOP pass -------------------------------------------------------------------------------


def test_the_flop_pass_never_reaches_a_stateful_model(depth_manifest):
    model = TorchStatefulDepth()
    outcome, rows = _run(model, depth_manifest, batch_size=3)
    # Every sample once, in order, the warm-up batch included (it is scored like any other).
    assert model.frames_seen == [row["id"] for row in rows]
    assert outcome.compute["warmup_samples"] == 3 and outcome.compute["timed_samples"] == len(rows) - 3
    # Linear(3, 1) over every pixel of one frame.
    assert outcome.compute["flops_g"] == pytest.approx(2 * 3 * _frame_pixels(depth_manifest) / 1e9)


def test_no_flops_skips_the_pass_and_says_why(depth_manifest):
    model = TorchStatefulDepth()
    outcome, rows = _run(model, depth_manifest, count_flops=False)
    assert outcome.compute["flops_g"] is None and "--no-flops" in outcome.compute["flops_skipped_reason"]
    assert model.frames_seen == [row["id"] for row in rows]
    assert ("FLOPs (G)", f"– ({outcome.compute['flops_skipped_reason']})") in efficiency_rows(outcome.compute)


def test_a_model_that_cannot_be_copied_gets_no_flops_and_no_extra_frame(depth_manifest):
    model = UncopyableStatefulDepth()
    outcome, rows = _run(model, depth_manifest)
    assert outcome.compute["flops_g"] is None and "deep-copied" in outcome.compute["flops_skipped_reason"]
    assert model.frames_seen == [row["id"] for row in rows]


def test_a_numpy_model_has_no_params_and_flops_with_the_reason(depth_manifest):
    outcome, _ = _run(FrugalDepth(), depth_manifest)
    assert outcome.compute["params_m"] is None and outcome.compute["flops_g"] is None
    assert outcome.compute["flops_skipped_reason"] == "the model holds no torch.nn.Module"
    assert outcome.compute["peak_host_memory_scope"] == "run" and outcome.compute["peak_host_memory_mb"] > 0


def test_no_flops_through_the_cli_records_null_with_the_reason(depth_manifest, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        [
            "bench",
            "monocular_depth",
            "--model",
            "tests.support.compute_models:build_torch_stateful",
            "--manifest",
            str(depth_manifest),
            "--device",
            "cpu",
            "--max-samples",
            "4",
            "--output-dir",
            str(out),
            "--no-flops",
            "--plain",
        ]
    )
    assert code == 0, capsys.readouterr().err
    compute = json.loads((out / "result.json").read_text())["compute"]
    assert compute["flops_g"] is None and "--no-flops" in compute["flops_skipped_reason"]
    assert compute["params_m"] == 0.0 and compute["params_frozen_m"] == 0.0
    assert compute["peak_host_memory_scope"] == "run" and compute["peak_gpu_memory_mb"] is None
    assert "| FLOPs (G) | – (skipped on request" in (out / "summary.md").read_text()
