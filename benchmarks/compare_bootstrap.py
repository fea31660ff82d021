"""How long ``rpx compare`` takes on a large comparison: 10,000 samples x 20 metrics, 2,000 scene resamples.

Writes two synthetic run folders (result.json + per_sample_metrics.parquet: ``--scenes`` scenes, 3 phases,
difficulties round-robin over the scenes, ``--samples`` samples, ``--metrics`` metrics with 5% missing values;
B is A plus a small shift on the interaction phase) into a temporary folder, then times
``rpx_tasks.comparison.compare_runs`` end to end (reading both runs, pairing, the bootstrap overall, per
phase, per difficulty and per phase x difficulty, verdicts) ``--repeats`` times and prints the median and
the slowest. The requirement (issue 11): under 5 s.

Usage: ``.venv/bin/python benchmarks/compare_bootstrap.py [--samples 10000 --metrics 20 --resamples 2000]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rpx_tasks.comparison import compare_runs
from rpx_tasks.constants import PHASES, SPLITS


def write_synthetic_run(folder: Path, values: np.ndarray, keys: dict[str, list], model: str) -> None:
    """Write a run folder whose per-sample metrics are the columns of ``values`` (samples x metrics)."""
    folder.mkdir(parents=True)
    names = [f"metric_{index:02d}" for index in range(values.shape[1])]
    columns = {key: pa.array(column) for key, column in keys.items()}
    columns.update({name: pa.array(values[:, index], from_pandas=True) for index, name in enumerate(names)})
    pq.write_table(pa.table(columns), folder / "per_sample_metrics.parquet")
    aggregated = {
        name: {"mean": float(np.nanmean(values[:, i])), "higher_is_better": i % 2 == 0} for i, name in enumerate(names)
    }
    result = {
        "task": "monocular_depth",
        "model": model,
        "split": "all",
        "num_samples": len(values),
        "primary_metric": names[0],
        "aggregated": aggregated,
        "readiness": {"wps": {"s_overall": aggregated[names[0]]["mean"]}},
        "compute": {"device": "cpu"},
        "run": {"id": model, "fingerprint": model, "data": {"builtin": "builtin:sample", "version": "0"}},
    }
    (folder / "result.json").write_text(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument("--scenes", type=int, default=100)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    per_scene = -(-args.samples // args.scenes)
    index = np.arange(args.samples)
    scene = index // per_scene
    phase = np.minimum((index % per_scene) * 3 // per_scene, 2)
    keys = {
        "id": [f"s{s:04d}_{i:06d}" for s, i in zip(scene, index)],
        "scene": [f"scene_{s:04d}" for s in scene],
        "phase": [PHASES[p] for p in phase],
        "difficulty": [SPLITS[s % 3] for s in scene],
        "frame_idx": index.tolist(),
    }
    a = rng.normal(size=(args.samples, args.metrics)) + rng.normal(size=(args.scenes, 1))[scene]
    a[rng.random(a.shape) < 0.05] = np.nan
    b = a + np.where(phase == 1, 0.1, 0.0)[:, None] + rng.normal(scale=0.05, size=a.shape)
    with tempfile.TemporaryDirectory() as tmp:
        write_synthetic_run(Path(tmp) / "a", a, keys, "model_a")
        write_synthetic_run(Path(tmp) / "b", b, keys, "model_b")
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            comparison = compare_runs(Path(tmp) / "a", Path(tmp) / "b", resamples=args.resamples)
            times.append(time.perf_counter() - start)
    print(
        f"compare_runs: {args.samples} samples x {args.metrics} metrics, {args.scenes} scenes, "
        f"{args.resamples} resamples: median {statistics.median(times):.2f} s, slowest {max(times):.2f} s "
        f"over {args.repeats} runs (requirement: < 5 s); primary {comparison['primary']['verdict']}"
    )


if __name__ == "__main__":
    main()
