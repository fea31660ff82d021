"""Where a run's time goes (contracts.stage_timer): compute.stages in result.json, the summary and terminal line."""

from __future__ import annotations

import io
import json
import sys
import threading
import time

import numpy as np
import pytest

from rpx_tasks.bench import run_bench, validate_config
from rpx_tasks.contracts.stage_timer import STAGES, StageClock, cpu_mark, cpu_since, stages_line
from rpx_tasks.ui import PlainUI
from tests.support.hf_seed import DEFAULT_REPO_ID, seed_tiny_depth_anything


class SleepyDepth:
    """A depth model whose forward pass is 40 ms of waiting per batch: the loop's bottleneck."""

    task = "monocular_depth"
    name = "sleepy_depth"

    def setup(self) -> None:
        pass

    def predict(self, batch):
        time.sleep(0.04)
        return [np.full(sample.rgb.shape[:2], 2.0, np.float32) for sample in batch]


def _run(tmp_path, **options):
    params = {"task": "monocular_depth", "manifest": "builtin:sample", "device": "cpu", "split": "hard"}
    params.update(output_dir=str(tmp_path / "run"), resume=False, **options)
    paths, payload = run_bench(validate_config(params))
    return paths, payload


def test_every_stage_is_reported_and_the_slow_forward_is_the_bottleneck(tmp_path):
    paths, payload = _run(tmp_path, model=SleepyDepth(), batch_size=2)
    compute = payload["compute"]
    stages = compute["stages"]
    assert list(stages) == list(STAGES)
    for figures in stages.values():
        assert figures["wall_s"] >= 0 and figures["cpu_s"] >= 0 and 0 <= figures["bottleneck_share"] <= 1
    batches = payload["num_samples"] // 2
    assert stages["forward"]["wall_s"] >= 0.04 * batches * 0.95
    assert stages["forward"]["cpu_s"] < stages["forward"]["wall_s"] / 2  # sleeping costs no CPU
    shares = {name: figures["bottleneck_share"] for name, figures in stages.items()}
    assert max(shares, key=shares.get) == "forward" and shares["forward"] > 0.5
    assert sum(shares.values()) <= 1.0 + 1e-6
    assert stages["read"]["wall_s"] > 0 and stages["score"]["wall_s"] > 0 and stages["write"]["wall_s"] > 0
    # A model without sub-stages is one forward stage.
    assert compute["model_substages"] is False
    assert stages["preprocess"]["wall_s"] == 0 and stages["postprocess"]["wall_s"] == 0
    assert compute["stages_loop_wall_s"] >= stages["forward"]["wall_s"]
    line = stages_line(compute)
    assert "forward" in line and "(bottleneck: forward" in line and "preprocess" not in line
    assert f"Stages (share of the loop each held up): {line}" in paths.summary_md.read_text()
    assert json.loads(paths.result_json.read_text())["compute"]["stages"] == stages
    out = io.StringIO()
    PlainUI(out=out, err=io.StringIO()).results(payload)
    assert f"[stages] {line}" in out.getvalue()


def test_an_hf_model_reports_its_preprocess_and_postprocess(offline, tmp_path):
    seed_tiny_depth_anything(tmp_path / "hf", DEFAULT_REPO_ID)
    paths, payload = _run(
        tmp_path,
        hf_checkpoint=DEFAULT_REPO_ID,
        cache_dir=str(tmp_path / "hf"),
        max_samples=6,
        batch_size=3,
        count_flops=False,
        precision="bf16",
    )
    compute = payload["compute"]
    assert compute["model_substages"] is True
    for name in ("preprocess", "forward", "postprocess"):
        assert compute["stages"][name]["wall_s"] > 0 and compute["stages"][name]["cpu_s"] > 0
    assert compute["execution"]["precision"] == "bf16" and compute["execution"]["data_path"] == "processor"
    summary = paths.summary_md.read_text()
    assert "- Execution: precision bf16, compile off" in summary and "preprocess" in stages_line(compute)


def test_waiting_for_scores_is_shared_between_validate_and_score():
    clock = StageClock()
    clock.add("validate", 1.0, 0.5)
    clock.add("score", 3.0, 2.0)
    clock.hold("scoring", 2.0)
    clock.hold("read", 1.0)
    report = clock.report(10.0)
    assert report["validate"]["bottleneck_share"] == pytest.approx(0.05)
    assert report["score"]["bottleneck_share"] == pytest.approx(0.15)
    assert report["read"]["bottleneck_share"] == pytest.approx(0.1)
    assert report["score"]["cpu_s"] == 2.0 and report["forward"]["wall_s"] == 0.0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread CPU clocks are Linux's")
def test_cpu_since_leaves_out_the_other_python_threads():
    spun, release = threading.Event(), threading.Event()

    def spin() -> None:  # a long-lived helper thread (as the scoring threads are): busy, then idle
        stop = time.perf_counter() + 0.3
        while time.perf_counter() < stop:
            pass
        spun.set()
        release.wait()

    worker = threading.Thread(target=spin)
    mark = cpu_mark()
    worker.start()
    spun.wait()  # this thread only waits: its CPU (and that of native threads) is ~0
    try:
        assert cpu_since(mark) < 0.1
    finally:
        release.set()
        worker.join()
    mark = cpu_mark()
    start_thread = time.thread_time()
    np.linalg.svd(np.random.default_rng(0).random((300, 300)))
    assert cpu_since(mark) >= (time.thread_time() - start_thread) * 0.95  # at least this thread's own CPU
