"""GPU check: the Depth-Anything-V2 Small model alone vs ``rpx bench`` end to end, fp32 and bf16, batch 1 and 8.

A Depth-Anything-V2 Small checkpoint with random weights and the real image processor (518 px) is saved to
a temporary folder and ``--frames`` generated camera-like 640x480 frames are written as a monocular_depth
split (``hf_depth_setup``). For each precision (fp32, bf16) and batch size (1, 8):

* model only: the forward pass on pixel values already on the device, at the processor's size for a
  640x480 frame (518x686), under autocast for bf16, synchronised around each call; the first calls are
  warm-up. Frames/s, per-frame latency p50 / p95, peak GPU memory;
* rpx end to end: ``rpx_tasks.bench.run_bench`` (the steps of ``rpx bench`` in this process: decoding,
  the device data path, the model, scoring, writing) at two lengths (half of the frames and all of them);
  frames/s is the slope of result.json's ``compute.stages_loop_wall_s`` between them, latency and peak
  GPU memory from result.json (the longer run).

It prints one table (frames/s of both, ratio rpx / model, p50 / p95, peak GPU memory) and the stage line
of each long run. It finishes in a few minutes on one GPU (under 8). ``--device cpu --quick`` runs the same
code on the CPU with a tiny backbone, a small processor size and a few frames, in seconds: the test suite
runs it that way (``tests/test_gpu_check.py``), so this script cannot rot.

Usage: ``.venv/bin/python benchmarks/gpu_check.py [--device cuda] [--frames 256]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path[:0] = [p for p in (str(BENCH_DIR), str(REPO_ROOT)) if p not in sys.path]

from hf_depth_setup import camera_frames, save_checkpoint, write_split  # noqa: E402

PRECISIONS = ("fp32", "bf16")
BATCHES = (1, 8)
COLUMNS = (
    "precision",
    "batch",
    "model f/s",
    "rpx f/s",
    "ratio",
    "model p50/p95 ms",
    "rpx p50/p95 ms",
    "peak GPU MB model/rpx",
)


@dataclass
class Row:
    """One (precision, batch) line of the table."""

    precision: str
    batch: int
    model_fps: float
    rpx_fps: float | None
    model_p50: float
    model_p95: float
    rpx_p50: float | None
    rpx_p95: float | None
    model_peak_mb: float | None
    rpx_peak_mb: float | None
    stages: str = ""

    @property
    def ratio(self) -> float | None:
        return self.rpx_fps / self.model_fps if self.rpx_fps and self.model_fps else None


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def model_only(checkpoint: Path, frame: np.ndarray, device: str, precision: str, batch: int, calls: int):
    """Forward passes on device-resident pixel values; returns (frames/s, p50 ms, p95 ms, peak GPU MB)."""
    import contextlib

    import torch
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    model = AutoModelForDepthEstimation.from_pretrained(checkpoint).eval().to(device)
    pixels = AutoImageProcessor.from_pretrained(checkpoint)(images=[frame], return_tensors="pt")["pixel_values"]
    pixels = pixels.repeat(batch, 1, 1, 1).to(device)
    autocast = (
        torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
        if precision == "bf16"
        else contextlib.nullcontext()
    )
    cuda = device.startswith("cuda")
    seconds = []
    with torch.inference_mode(), autocast:
        for _ in range(2):  # warm-up
            model(pixel_values=pixels)
        _sync(device)
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        for _ in range(calls):
            start = time.perf_counter()
            model(pixel_values=pixels)
            _sync(device)
            seconds.append(time.perf_counter() - start)
    per_frame = np.asarray(seconds) / batch * 1000.0
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None
    del model, pixels
    if cuda:
        torch.cuda.empty_cache()
    return batch * calls / sum(seconds), float(np.percentile(per_frame, 50)), float(np.percentile(per_frame, 95)), peak


def rpx_end_to_end(checkpoint: Path, manifest: Path, frames: int, device: str, precision: str, batch: int, work: Path):
    """``run_bench`` at two lengths; returns (frames/s, p50 ms, p95 ms, peak GPU MB, stage line)."""
    from rpx_tasks.bench import run_bench, validate_config
    from rpx_tasks.contracts.stage_timer import stages_line

    short = max(batch, (frames // 2) // batch * batch)
    long = max(short + batch, frames // batch * batch)
    results = {}
    for samples in (short, long):
        config = validate_config(
            {
                "task": "monocular_depth",
                "hf_checkpoint": str(checkpoint),
                "manifest": str(manifest),
                "max_samples": samples,
                "batch_size": batch,
                "device": device,
                "precision": precision,
                "count_flops": False,
                "resume": False,
                "output_dir": str(work / f"rpx_{precision}_b{batch}_n{samples}"),
            }
        )
        results[samples] = run_bench(config)[1]["compute"]
    walls = {n: results[n]["stages_loop_wall_s"] for n in results}
    compute = results[long]
    fps = (long - short) / (walls[long] - walls[short]) if walls[long] > walls[short] else None
    return (
        fps,
        compute.get("latency_ms_p50"),
        compute.get("latency_ms_p95"),
        compute.get("peak_gpu_memory_mb"),
        stages_line(compute) or "",
    )


def _cell(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def format_table(rows: list[Row]) -> str:
    """The one table the check prints (``COLUMNS``), plus each run's stage line."""
    cells = [
        [
            row.precision,
            str(row.batch),
            _cell(row.model_fps, ".1f"),
            _cell(row.rpx_fps, ".1f"),
            _cell(row.ratio, ".2f"),
            f"{_cell(row.model_p50, '.1f')}/{_cell(row.model_p95, '.1f')}",
            f"{_cell(row.rpx_p50, '.1f')}/{_cell(row.rpx_p95, '.1f')}",
            f"{_cell(row.model_peak_mb, '.0f')}/{_cell(row.rpx_peak_mb, '.0f')}",
        ]
        for row in rows
    ]
    widths = [max(len(name), *(len(line[i]) for line in cells)) for i, name in enumerate(COLUMNS)]
    lines = ["  ".join(name.rjust(width) for name, width in zip(COLUMNS, widths))]
    lines += ["  ".join(cell.rjust(width) for cell, width in zip(line, widths)) for line in cells]
    lines += [f"stages {row.precision} batch {row.batch}: {row.stages}" for row in rows if row.stages]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    parser.add_argument("--frames", type=int, default=256, help="frames of the longer rpx run (default 256)")
    parser.add_argument("--calls", type=int, default=30, help="timed model-only calls per row (default 30)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a tiny backbone, a 56 px processor, 16 frames, 3 calls, 1 torch thread: the CPU smoke run of the "
        "test suite",
    )
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temp dir)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the check and print the table; returns 0. Raises what a run raises (e.g. an RPXError)."""
    args = parse_args(argv)
    arch, size = ("tiny", 56) if args.quick else ("small", 518)
    if args.quick:  # a smoke run: one torch thread keeps tiny ops steady on a busy machine
        import torch

        torch.set_num_threads(1)
    frames_count, calls = (16, 3) if args.quick else (args.frames, args.calls)
    work = Path(args.keep or tempfile.mkdtemp(prefix="rpx-gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    checkpoint = save_checkpoint(work / "checkpoint", arch, processor_size=size)
    frames = camera_frames(frames_count)
    manifest = write_split(work / "data", frames)
    device = args.device
    print(f"Depth-Anything-V2 {arch} (random weights), processor {size} px, {frames_count} frames 640x480, {device}")
    rows = []
    for precision in PRECISIONS:
        for batch in BATCHES:
            model_fps, model_p50, model_p95, model_peak = model_only(
                checkpoint, frames[0], device, precision, batch, calls
            )
            rpx_fps, rpx_p50, rpx_p95, rpx_peak, stages = rpx_end_to_end(
                checkpoint, manifest, frames_count, device, precision, batch, work
            )
            rows.append(
                Row(precision, batch, model_fps, rpx_fps, model_p50, model_p95, rpx_p50, rpx_p95, model_peak, rpx_peak)
            )
            rows[-1].stages = stages
    print(format_table(rows))
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
