"""Write, then compare, the reports of every task on one copy of the built-in sample data.

Used to prove that a refactor changed no number:

    python scripts/report_snapshot.py write /tmp/before          # on the old tree
    python scripts/report_snapshot.py write /tmp/after --data /tmp/before/data
    python scripts/report_snapshot.py compare /tmp/before /tmp/after

``write`` generates the sample data (unless ``--data`` names an existing copy), runs each
registered task with its baseline through the ``rpx`` CLI, and monocular depth with a tiny
random-weight Depth Anything seeded into a private HF cache. ``compare`` checks that
per_sample_metrics.parquet and cells.parquet are equal apart from timing columns, and that
result.json differs only in timings and the environment record; it exits 1 on a difference.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from rpx_tasks.manifest import MANIFESTS_DIR, manifest_relpath

REPO = Path(__file__).resolve().parents[1]
TIMING_COLUMNS = {"latency_ms"}
# result.json keys whose values are timings or describe the machine, not the benchmark.
VOLATILE_KEYS = {
    "environment",
    "efficiency",
    "timings",
    "latency_ms",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_ms_p50",
    "latency_ms_p95",
    "throughput_sps",
    "throughput_fps",
    "wall_s",
    "peak_memory_mb",
    "peak_host_memory_mb",
    "peak_gpu_memory_mb",
    "started",
    "finished",
    "created",
    "duration_s",
    "output_dir",
    "run",
    "stages",
}
HF_REPO_ID = "depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf"


def _rpx(*args: str, env: dict[str, str]) -> None:
    command = [str(Path(sys.executable).with_name("rpx")), *args]
    completed = subprocess.run(command, env=env, capture_output=True, text=True)
    if completed.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({completed.returncode}):\n{completed.stderr}")


def write(out: Path, data: Path | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PREFECT_HOME": str(out / "prefect"),
        "HF_HUB_OFFLINE": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    env.pop("PREFECT_API_URL", None)
    if data is None:
        data = out / "data"
        _rpx("sample-data", str(data), env=env)
    tasks = sorted(p.name for p in (data / MANIFESTS_DIR).iterdir() if p.is_dir())
    for task in tasks:
        manifest = data / manifest_relpath(task, "all")
        _rpx(
            "bench",
            task,
            "--model",
            "baseline",
            "--manifest",
            str(manifest),
            "--split",
            "hard",
            "--device",
            "cpu",
            "--plain",
            "--output-dir",
            str(out / "reports" / task),
            env=env,
        )
    sys.path.insert(0, str(REPO))
    from tests.support.hf_seed import seed_tiny_depth_anything

    cache = out / "hf-cache"
    seed_tiny_depth_anything(cache, HF_REPO_ID)
    manifest = data / manifest_relpath("monocular_depth", "all")
    _rpx(
        "bench",
        "monocular_depth",
        "--hf-checkpoint",
        HF_REPO_ID,
        "--cache-dir",
        str(cache),
        "--manifest",
        str(manifest),
        "--split",
        "hard",
        "--device",
        "cpu",
        "--plain",
        "--output-dir",
        str(out / "reports" / "monocular_depth_hf"),
        env={**env, "HF_HUB_CACHE": str(cache)},
    )
    print(f"wrote {len(tasks) + 1} reports to {out / 'reports'}")


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _diff_json(a, b, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}/{k}: only in {'before' if k in a else 'after'}" for k in set(a) ^ set(b)]
        for key in sorted(set(a) & set(b)):
            out += _diff_json(a[key], b[key], f"{path}/{key}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _diff_json(x, y, f"{path}[{i}]")]
    return [] if _same(a, b) else [f"{path}: {a!r} != {b!r}"]


def compare(before: Path, after: Path) -> int:
    differences: list[str] = []
    runs = sorted(p.name for p in (before / "reports").iterdir())
    for run in runs:
        for name in ("per_sample_metrics.parquet", "cells.parquet"):
            table_a = pq.read_table(before / "reports" / run / name)
            table_b = pq.read_table(after / "reports" / run / name)
            keep_a = [c for c in table_a.column_names if c not in TIMING_COLUMNS]
            keep_b = [c for c in table_b.column_names if c not in TIMING_COLUMNS]
            if keep_a != keep_b:
                differences.append(f"{run}/{name}: columns {keep_a} != {keep_b}")
                continue
            rows_a, rows_b = table_a.select(keep_a).to_pylist(), table_b.select(keep_b).to_pylist()
            differences += [f"{run}/{name}{d}" for d in _diff_json(rows_a, rows_b)]
        result_a = json.loads((before / "reports" / run / "result.json").read_text())
        result_b = json.loads((after / "reports" / run / "result.json").read_text())
        differences += [f"{run}/result.json{d}" for d in _diff_json(_strip(result_a), _strip(result_b))]
    for line in differences[:50]:
        print(line)
    print(f"{len(runs)} runs compared, {len(differences)} differences")
    return 1 if differences else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    write_parser = sub.add_parser("write")
    write_parser.add_argument("out", type=Path)
    write_parser.add_argument("--data", type=Path, default=None)
    compare_parser = sub.add_parser("compare")
    compare_parser.add_argument("before", type=Path)
    compare_parser.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "write":
        write(args.out, args.data)
        return 0
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
