"""The benchmark loop: warm-up, FLOPs outside the timed window (on a copy of the model), validation, progress."""

import json
import time

import numpy as np
import pytest
import torch

from rpx_tasks.cli import main
from rpx_tasks.dataset import open_split
from rpx_tasks.errors import ModelError
from rpx_tasks.runner import run_benchmark
from rpx_tasks.tasks import get_task
from tests.support.hf_seed import DEFAULT_REPO_ID, seed_tiny_depth_anything

DEPTH = get_task("monocular_depth")


class Rows:
    def __init__(self):
        self.rows = []

    def write(self, row):
        self.rows.append(row)


class ScriptedModel:
    """A real (tiny) model whose behaviour each test scripts."""

    task = "monocular_depth"
    name = "scripted"
    torch_module = None

    def __init__(self, *, first_sleep=0.0, drop_one=False):
        self.calls = 0
        self.first_sleep = first_sleep
        self.drop_one = drop_one
        self.setup_calls = 0

    def setup(self):
        self.setup_calls += 1

    def predict(self, batch):
        self.calls += 1
        if self.calls == 1:
            time.sleep(self.first_sleep)
        out = [np.full(s.rgb.shape[:2], 2.0, np.float32) for s in batch]
        return out[:-1] if self.drop_one else out


class ConvDepth(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 1, kernel_size=1)

    def forward(self, x):
        return self.conv(x).abs() + 0.5


class TorchDepthModel:
    task = "monocular_depth"
    name = "conv"

    def __init__(self):
        torch.manual_seed(0)
        self.torch_module = ConvDepth()
        self.calls = 0

    def setup(self):
        self.torch_module.eval()

    def predict(self, batch):
        self.calls += 1
        x = torch.stack([torch.from_numpy(np.array(s.rgb)).permute(2, 0, 1).float() / 255 for s in batch])
        with torch.inference_mode():
            y = self.torch_module(x)
        return [d[0].numpy().astype(np.float32) for d in y]


def _run(model, manifest, batch_size=2, progress=None, **kwargs):
    rows = Rows()
    outcome = run_benchmark(
        model,
        open_split(manifest, DEPTH),
        DEPTH,
        device="cpu",
        batch_size=batch_size,
        rows=rows,
        progress=progress,
        **kwargs,
    )
    return outcome, rows.rows


def test_first_batch_is_warmup_and_excluded_from_latency(depth_manifest):
    model = ScriptedModel(first_sleep=0.5)
    events = []
    outcome, rows = _run(model, depth_manifest, batch_size=2, progress=lambda *e: events.append(e))
    n = len(rows)
    assert outcome.compute["warmup_samples"] == 2 and outcome.compute["timed_samples"] == n - 2
    assert outcome.compute["latency_ms_p95"] < 200  # the 500 ms warm-up batch is not in the figures
    assert rows[0]["latency_ms"] >= 200  # but its rows still say what was measured
    assert model.setup_calls == 1
    assert events[0] == (0, None, "setup") and events[1] == (0, n, "predict") and events[-1] == (n, n, "predict")


def test_wrong_number_of_predictions_is_a_model_error(depth_manifest):
    with pytest.raises(ModelError, match="returned 1 predictions for a batch of 2"):
        _run(ScriptedModel(drop_one=True), depth_manifest, batch_size=2)


def test_task_mismatch_is_a_model_error(depth_manifest):
    model = ScriptedModel()
    model.task = "object_segmentation"
    with pytest.raises(ModelError, match="Task mismatch"):
        _run(model, depth_manifest)


def test_flops_come_from_a_single_sample_call_on_a_copy_of_the_model(depth_manifest):
    model = TorchDepthModel()
    outcome, rows = _run(model, depth_manifest, batch_size=4)
    height, width = open_split(depth_manifest, DEPTH).decode(open_split(depth_manifest, DEPTH).entries[0]).rgb.shape[:2]
    # 1x1 conv 3->1: one multiply-add per input channel and pixel.
    assert outcome.compute["flops_g"] == pytest.approx(2 * 3 * height * width / 1e9)
    batches = -(-len(rows) // 4)
    assert model.calls == batches  # the FLOP pass called the copy, not the model
    assert outcome.compute["params_m"] == pytest.approx(4 / 1e6, abs=1e-3)


def test_nan_prediction_names_the_sample(depth_manifest):
    class NaNModel(ScriptedModel):
        def predict(self, batch):
            out = super().predict(batch)
            out[-1][0, 0] = np.nan
            return out

    with pytest.raises(ModelError, match=r"Sample '.*': depth map contains NaN"):
        _run(NaNModel(), depth_manifest)


def test_hf_checkpoint_end_to_end_through_the_cli(depth_manifest, tmp_path, capsys):
    cache = tmp_path / "hf-cache"
    seed_tiny_depth_anything(cache, DEFAULT_REPO_ID)
    out = tmp_path / "out"
    code = main(
        [
            "bench",
            "monocular_depth",
            "--hf-checkpoint",
            DEFAULT_REPO_ID,
            "--cache-dir",
            str(cache),
            "--manifest",
            str(depth_manifest),
            "--device",
            "cpu",
            "--batch-size",
            "3",
            "--max-samples",
            "9",
            "--output-dir",
            str(out),
            "--plain",
        ]
    )
    assert code == 0, capsys.readouterr().err
    result = json.loads((out / "result.json").read_text())
    assert result["model"] == DEFAULT_REPO_ID and result["num_samples"] == 9
    assert result["compute"]["params_m"] > 0 and result["compute"]["flops_g"] > 0
    assert result["compute"]["warmup_samples"] == 3 and result["compute"]["timed_samples"] == 6
    assert result["aggregated"]["absrel"]["count"] == 9
