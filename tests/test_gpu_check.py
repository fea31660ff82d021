"""benchmarks/gpu_check.py runs here on the CPU (``--device cpu --quick``), so the GPU check cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_on_the_cpu_and_prints_its_table(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", RPX_NO_BANNER="1")
    script = REPO / "benchmarks" / "gpu_check.py"
    done = subprocess.run(
        [sys.executable, str(script), "--device", "cpu", "--quick", "--keep", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["precision", "batch"])
    for column in ("model f/s", "rpx f/s", "ratio", "model p50/p95 ms", "rpx p50/p95 ms", "peak GPU MB model/rpx"):
        assert column in lines[header]
    rows = [line.split() for line in lines[header + 1 : header + 5]]
    assert [(row[0], row[1]) for row in rows] == [("fp32", "1"), ("fp32", "8"), ("bf16", "1"), ("bf16", "8")]
    for row in rows:
        model_fps, rpx_fps = float(row[2]), row[3]
        assert model_fps > 0
        assert rpx_fps == "–" or float(rpx_fps) > 0  # the slope of two runs (– if the longer was not slower)
        assert re.fullmatch(r"[\d.]+/[\d.]+", row[5]) and row[7] == "–/–"  # no GPU memory on the CPU
    assert sum(line.startswith("stages ") for line in lines) == 4
    # Each end-to-end run wrote a complete report, bf16 recorded as its precision.
    results = sorted(tmp_path.glob("rpx_bf16_b8_n*/result.json"))
    assert len(results) == 2 and '"precision": "bf16"' in results[-1].read_text()
