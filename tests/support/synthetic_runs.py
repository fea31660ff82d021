"""Run folders written by hand (result.json + per_sample_metrics.parquet) for the comparison tests, and two real
runs of weight-free baselines on the built-in sample data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

PHASES = ("clutter", "interaction", "clean")
DIRECTIONS = {"absrel": False, "delta1": True}


def frame_grid(scenes: int, frames: int = 4, difficulty: str = "hard") -> dict[str, np.ndarray]:
    """Return the key columns of ``scenes`` scenes x 3 phases x ``frames`` frames."""
    keys: dict[str, list[Any]] = {"id": [], "scene": [], "phase": [], "difficulty": [], "frame_idx": []}
    for scene in range(scenes):
        for phase_index, phase in enumerate(PHASES):
            for frame in range(frames):
                keys["id"].append(f"scene_{scene:03d}__{phase_index}__{frame:05d}")
                keys["scene"].append(f"scene_{scene:03d}")
                keys["phase"].append(phase)
                keys["difficulty"].append(difficulty)
                keys["frame_idx"].append(frame)
    return {key: np.array(values) for key, values in keys.items()}


def write_run(
    folder: Path,
    keys: dict[str, np.ndarray],
    metrics: dict[str, np.ndarray],
    *,
    model: str = "model_a",
    task: str = "monocular_depth",
    primary: str = "absrel",
    run_id: str = "20260101T000000Z-aaaaaa",
    device: str = "cpu",
    data: dict[str, Any] | None = None,
    readiness: dict[str, Any] | None = None,
) -> Path:
    """Write a run folder with result.json and per_sample_metrics.parquet; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    columns = {key: pa.array(values.tolist()) for key, values in keys.items()}
    for name, values in metrics.items():
        columns[name] = pa.array([None if np.isnan(value) else float(value) for value in values], pa.float64())
    pq.write_table(pa.table(columns), folder / "per_sample_metrics.parquet")
    aggregated = {
        name: {"mean": float(np.nanmean(values)), "higher_is_better": DIRECTIONS.get(name, True)}
        for name, values in metrics.items()
    }
    result = {
        "task": task,
        "model": model,
        "split": str(keys["difficulty"][0]),
        "num_samples": len(keys["id"]),
        "primary_metric": primary,
        "aggregated": aggregated,
        "readiness": readiness
        or {"primary_metric": primary, "wps": {"s_overall": aggregated[primary]["mean"]}, "ts": {"score": 0.5}},
        "compute": {"device": device, "latency_ms_p50": 1.0, "throughput_sps": 100.0},
        "environment": {"device": device},
        "run": {
            "id": run_id,
            "fingerprint": f"fp-{model}",
            "data": data or {"builtin": "builtin:sample", "version": "0.1.0"},
        },
    }
    (folder / "result.json").write_text(json.dumps(result, indent=2))
    return folder


def base_values(keys: dict[str, np.ndarray], seed: int = 0) -> np.ndarray:
    """Return absrel-like values: a level per scene plus frame noise."""
    rng = np.random.default_rng(seed)
    scene_codes = np.unique(keys["scene"], return_inverse=True)[1]
    levels = rng.uniform(0.1, 0.3, size=scene_codes.max() + 1)
    return levels[scene_codes] + rng.normal(0.0, 0.01, size=len(scene_codes))


def bench_baseline(model_name: str, out: Path) -> Path:
    """Run the monocular_depth baseline ``model_name`` on the built-in sample data (hard split) into ``out``, in
    process and without Prefect; returns the run folder."""
    from rpx_tasks.bench import run_bench
    from rpx_tasks.config import RunConfig

    config = RunConfig(
        task="monocular_depth",
        split="hard",
        model_name=model_name,
        manifest="builtin:sample",
        device="cpu",
        output_dir=str(out),
        count_flops=False,
    )
    paths, _ = run_bench(config)
    return paths.output_dir
