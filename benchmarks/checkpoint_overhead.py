"""What committing a run's rows and state costs, on camera-sized frames.

Generates the procedural hard split of monocular_depth at 640x480 (``--scenes`` scenes x 3 phases
x ``--frames`` frames), then runs ``bench.run_bench`` in this process with a trivial numpy model
(``benchmarks/trivial_model.py``: the per-frame cost is decoding, scoring and temporal stability,
so commits weigh as much as they ever will) at three commit intervals, interleaved, ``--repeats``
times each:

* ``every 10``: a commit (pipeline drain + a row file + the previous depth map, 1.2 MB, fsync'd)
  every 10 samples;
* ``every 200``: the default;
* ``final only``: one commit at the end (an interval longer than the split).

It prints the median wall time of each and its ratio to ``final only``, and the cost of resuming:
opening the journal of the complete run and replaying its rows into the aggregates.

Usage: ``.venv/bin/python benchmarks/checkpoint_overhead.py [--scenes 3 --frames 30 --repeats 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=3)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from rpx_tasks.aggregation import MetricTable
    from rpx_tasks.bench import run_bench
    from rpx_tasks.config import RunConfig
    from rpx_tasks.manifest import manifest_relpath
    from rpx_tasks.reports import per_sample_schema
    from rpx_tasks.run_journal import RunJournal
    from rpx_tasks.sample_data import write_sample_dataset
    from rpx_tasks.tasks import get_task

    work = Path(tempfile.mkdtemp(prefix="rpx-checkpoint-bench-"))
    root = write_sample_dataset(
        work / "data", scenes_per_split=args.scenes, frames_per_clip=args.frames, height=480, width=640
    )
    manifest = root / manifest_relpath("monocular_depth", "hard")
    intervals = {"every 10": 10, "every 200": 200, "final only": 10**9}
    times: dict[str, list[float]] = {name: [] for name in intervals}
    samples = 0
    for repeat in range(args.repeats):
        for name, every in intervals.items():
            config = RunConfig(
                task="monocular_depth",
                manifest=str(manifest),
                model_name="trivial_model:constant_depth_2m",
                device="cpu",
                output_dir=str(work / f"{name.replace(' ', '_')}-{repeat}"),
                checkpoint_every=every,
                checkpoint_seconds=10**9,
                count_flops=False,
            )
            start = time.perf_counter()
            _, payload = run_bench(config)
            times[name].append(time.perf_counter() - start)
            samples = payload["num_samples"]
    base = statistics.median(times["final only"])
    print(f"monocular_depth hard, {samples} frames of 640x480, trivial model, {args.repeats} runs each")
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"  {name:<11} median {median:6.2f} s  ({samples / median:5.1f} frames/s)  "
            f"ratio {median / base:.3f}  runs {[round(v, 2) for v in values]}"
        )

    # Resuming: open a journal of `samples` committed rows and replay them.
    spec = get_task("monocular_depth")
    journal = RunJournal(work / "resume", per_sample_schema(spec.metric_names), every_samples=200)
    journal.open()
    row = {"id": "s", "scene": "a", "phase": "clutter", "difficulty": "hard", "frame_idx": 0, "latency_ms": 1.0}
    row.update({metric: 0.5 for metric in spec.metric_names})
    for index in range(samples):
        journal.write({**row, "id": f"s{index}"})
        if journal.due(index + 1):
            journal.commit(index + 1, {})
    journal.commit(samples, {})
    start = time.perf_counter()
    reopened = RunJournal(work / "resume", per_sample_schema(spec.metric_names))
    reopened.open()
    table = MetricTable(spec.metric_names)
    for replayed in reopened.rows():
        table.add_row({metric: replayed[metric] for metric in spec.metric_names})
    print(f"  resume: open the journal and replay {samples} rows in {1000 * (time.perf_counter() - start):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
