"""Fixed cost of an ``rpx bench`` run next to an empty six-task Prefect flow, on the same API.

Every measurement is a fresh process, as a user would start it:

- ``empty flow``: a flow of six no-op tasks, with the same quiet Prefect defaults as rpx;
- ``rpx bench``: the ``rpx`` command on the built-in sample data (CPU, ground-plane baseline);
- ``flow in-process``: ``flows.rpx_bench.run_bench_flow`` (what ``rpx bench`` calls) in a bare
  Python process, to tell CLI overhead apart from the flow's;
- ``core only``: ``rpx_tasks.bench.run_bench`` without Prefect, for reference.

Fixed cost = wall time at N1 frames minus N1 x per-frame work, medians over ``--repeats``
interleaved rounds (every kind once per round). Per-frame work comes from two run sizes of the
core alone: (T(N2) - T(N1)) / (N2 - N1); Prefect adds no per-frame work. It is measured twice: with
Prefect's embedded API (no PREFECT_API_URL: a temporary server per process) and against a
running ``prefect server`` started here on a free port (stopped at the end)::

    .venv/bin/python benchmarks/fixed_cost.py [--repeats 5] [--sizes 4 24]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

EMPTY_FLOW = """
import sys
sys.path.insert(0, {repo!r})
from flows.bootstrap import configure_quiet_prefect
configure_quiet_prefect()
from prefect import flow, task

@task
def step(value):
    return value

@flow(name="empty-six-steps")
def empty():
    value = 0
    for _ in range(6):
        value = step(value)
    return value

empty()
"""

FLOW_IN_PROCESS = """
import sys
sys.path.insert(0, {repo!r})
from flows.bootstrap import configure_quiet_prefect
configure_quiet_prefect()
from flows.rpx_bench import run_bench_flow
run_bench_flow({params!r})
"""

CORE_ONLY = """
from rpx_tasks.bench import run_bench, validate_config
run_bench(validate_config({params!r}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} ... failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return elapsed


def bench_params(manifest: Path, frames: int, output: Path) -> dict:
    return {
        "task": "monocular_depth",
        "split": "hard",
        "model_name": "ground_plane_prior",
        "manifest": str(manifest),
        "max_samples": frames,
        "device": "cpu",
        "output_dir": str(output),
    }


RPX_COMMAND = [str(BIN / "rpx")]


def commands(kind: str, manifest: Path, frames: int, output: Path) -> list[str]:
    params = bench_params(manifest, frames, output)
    if kind == "rpx bench":
        return [
            *RPX_COMMAND,
            "bench",
            "monocular_depth",
            "--model",
            "ground_plane_prior",
            "--manifest",
            str(manifest),
            "--max-samples",
            str(frames),
            "--device",
            "cpu",
            "--plain",
            "--output-dir",
            str(output),
        ]
    if kind == "flow in-process":
        return [sys.executable, "-c", FLOW_IN_PROCESS.format(repo=str(REPO), params=params)]
    if kind == "core only":
        return [sys.executable, "-c", CORE_ONLY.format(params=params)]
    raise ValueError(kind)


EMPTY = "empty flow (6 tasks)"
KINDS = (EMPTY, "rpx bench", "flow in-process", "core only")


def measure(
    env: dict[str, str], manifest: Path, sizes: tuple[int, int], repeats: int, workdir: Path
) -> dict[str, dict]:
    """{kind: {"median": s, "min": s, "fixed": s}} plus the per-frame work, from interleaved rounds.

    Each round runs every kind once at N1 frames, in turn, so drifts of this machine hit them
    alike. Per-frame work comes from the core alone at N1 and N2 frames (it has no Prefect
    noise); every rpx kind runs the same per-frame code.
    """
    n1, n2 = sizes

    def command(kind: str, frames: int) -> list[str]:
        if kind == EMPTY:
            return [sys.executable, "-c", EMPTY_FLOW.format(repo=str(REPO))]
        return commands(kind, manifest, frames, workdir / "out")

    for kind in KINDS:  # warm-up: first database use, file caches
        timed(command(kind, n1), env)
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    core_n2: list[float] = []
    for _ in range(repeats):
        for kind in KINDS:
            times[kind].append(timed(command(kind, n1), env))
        core_n2.append(timed(command("core only", n2), env))
    per_frame = max(0.0, (statistics.median(core_n2) - statistics.median(times["core only"])) / (n2 - n1))
    rows = {}
    for kind in KINDS:
        work = 0.0 if kind == EMPTY else n1 * per_frame
        rows[kind] = {
            "median": statistics.median(times[kind]),
            "min": min(times[kind]),
            "fixed": statistics.median(times[kind]) - work,
            "runs": times[kind],
        }
    rows["per_frame_s"] = per_frame
    return rows


def start_server(env: dict[str, str], home: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    server_env = {**env, "PREFECT_HOME": str(home), "PREFECT_UI_ENABLED": "false"}
    server_env.pop("PREFECT_API_URL", None)
    process = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2):
                return process, api_url
        except OSError:
            time.sleep(0.3)
    stop_server(process)
    raise TimeoutError("prefect server did not start within 60 s")


def stop_server(process: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            break
        process.send_signal(sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def print_table(title: str, rows: dict, sizes: tuple[int, int]) -> None:
    print(f"\n{title}")
    print(f"  {'run':<22} {'median s':>9} {'min s':>7} {'fixed s':>8} {'vs empty':>9}")
    empty = rows[EMPTY]["fixed"]
    for kind in KINDS:
        row = rows[kind]
        delta = "" if kind == EMPTY else f"{row['fixed'] - empty:+.2f}"
        print(f"  {kind:<22} {row['median']:>9.2f} {row['min']:>7.2f} {row['fixed']:>8.2f} {delta:>9}")
    print(
        f"  ({sizes[0]} frames per run; per-frame work {1000 * rows['per_frame_s']:.1f} ms from the core at "
        f"{sizes[0]} and {sizes[1]} frames; criterion: rpx bench at most +1.50 s over the empty flow)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fixed cost of rpx bench vs an empty six-task Prefect flow.")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs=2, default=(4, 24), metavar=("N1", "N2"))
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    parser.add_argument(
        "--rpx-command", default=None, help="command line that stands for `rpx` (default: the venv's rpx)"
    )
    args = parser.parse_args(argv)
    if args.rpx_command:
        RPX_COMMAND[:] = args.rpx_command.split()
    sizes = tuple(args.sizes)

    with tempfile.TemporaryDirectory(prefix="rpx-fixed-cost-") as tmp:
        workdir = Path(tmp)
        sys.path.insert(0, str(REPO))
        from rpx_tasks.manifest import manifest_relpath
        from rpx_tasks.sample_data import write_sample_dataset

        manifest = write_sample_dataset(workdir / "data") / manifest_relpath("monocular_depth", "hard")
        env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
        env.update(
            {
                "PREFECT_HOME": str(workdir / "embedded-home"),
                "DO_NOT_TRACK": "1",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "RPX_NO_BANNER": "1",
                "HF_HUB_OFFLINE": "1",
            }
        )
        results = {"embedded API": measure(env, manifest, sizes, args.repeats, workdir)}
        print_table("Embedded API (no PREFECT_API_URL: a temporary server per process)", results["embedded API"], sizes)

        server, api_url = start_server(env, workdir / "server-home")
        try:
            served = {**env, "PREFECT_API_URL": api_url, "PREFECT_HOME": str(workdir / "client-home")}
            results["running server"] = measure(served, manifest, sizes, args.repeats, workdir)
        finally:
            stop_server(server)
        print_table(f"Running server ({api_url})", results["running server"], sizes)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
