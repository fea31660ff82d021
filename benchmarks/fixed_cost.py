"""Fixed cost of an ``rpx bench`` run, without a Prefect server and against a running one.

Every measurement is a fresh process, as a user would start it:

- ``rpx bench``: the ``rpx`` command on the built-in sample data (CPU, ground-plane baseline). Without
  a configured server it runs in-process without Prefect; against a running server it runs flow
  ``rpx-bench`` there (``rpx_tasks.cli_run_path``);
- ``rpx bench --prefect`` (with ``--temporary-server``): the flow on Prefect's temporary server;
- ``empty flow``: a flow of six no-op tasks, with the same quiet Prefect defaults as rpx;
- ``flow in-process``: ``flows.rpx_bench.run_bench_flow`` in a bare Python process, to tell CLI
  overhead apart from the flow's;
- ``core only``: ``rpx_tasks.bench.run_bench`` without Prefect, for reference.

The checkout's modules are byte-compiled first (``compileall``), as an installed package's are.

Fixed cost = wall time at N1 frames minus N1 x per-frame work, medians over ``--repeats``
interleaved rounds (every kind once per round). Per-frame work comes from two run sizes of the
core alone: (T(N2) - T(N1)) / (N2 - N1); Prefect adds no per-frame work. Targets (issue 13):
``rpx bench`` <= 1.5 s without a server, <= 2.0 s against a running ``prefect server`` (started
here on a free port, stopped at the end)::

    .venv/bin/python benchmarks/fixed_cost.py [--repeats 5] [--sizes 4 24] [--temporary-server]
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
RPX = "rpx bench"
RPX_TEMPORARY = "rpx bench --prefect"
FLOW = "flow in-process"
CORE = "core only"
EMPTY = "empty flow (6 tasks)"
# Targets of the fixed cost of `rpx bench`, by API (issue 13).
TARGETS = {"no server": 1.5, "running server": 2.0}


def commands(kind: str, manifest: Path, frames: int, output: Path) -> list[str]:
    params = bench_params(manifest, frames, output)
    if kind in (RPX, RPX_TEMPORARY):
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
            *(["--prefect"] if kind == RPX_TEMPORARY else []),
        ]
    if kind == FLOW:
        return [sys.executable, "-c", FLOW_IN_PROCESS.format(repo=str(REPO), params=params)]
    if kind == CORE:
        return [sys.executable, "-c", CORE_ONLY.format(params=params)]
    if kind == EMPTY:
        return [sys.executable, "-c", EMPTY_FLOW.format(repo=str(REPO))]
    raise ValueError(kind)


def measure(
    env: dict[str, str], manifest: Path, sizes: tuple[int, int], repeats: int, workdir: Path, kinds: tuple[str, ...]
) -> dict[str, dict]:
    """{kind: {"median": s, "min": s, "fixed": s}} plus the per-frame work, from interleaved rounds.

    Each round runs every kind once at N1 frames, in turn, so drifts of this machine hit them
    alike. Per-frame work comes from the core alone at N1 and N2 frames (it has no Prefect
    noise); every rpx kind runs the same per-frame code.
    """
    n1, n2 = sizes
    kinds = tuple(dict.fromkeys((*kinds, CORE)))  # the core is always measured: it gives the per-frame work

    def command(kind: str, frames: int) -> list[str]:
        return commands(kind, manifest, frames, workdir / "out")

    for kind in kinds:  # warm-up: first database use, file caches
        timed(command(kind, n1), env)
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    core_n2: list[float] = []
    for _ in range(repeats):
        for kind in kinds:
            times[kind].append(timed(command(kind, n1), env))
        core_n2.append(timed(command(CORE, n2), env))
    per_frame = max(0.0, (statistics.median(core_n2) - statistics.median(times[CORE])) / (n2 - n1))
    rows: dict[str, dict] = {}
    for kind in kinds:
        work = 0.0 if kind == EMPTY else n1 * per_frame
        rows[kind] = {
            "median": statistics.median(times[kind]),
            "min": min(times[kind]),
            "fixed": statistics.median(times[kind]) - work,
            "runs": times[kind],
        }
    return {"kinds": rows, "per_frame_s": per_frame}


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


def print_table(title: str, results: dict, sizes: tuple[int, int], target: float) -> bool:
    """Print one API's table; returns whether ``rpx bench``'s fixed cost meets ``target`` seconds."""
    rows = results["kinds"]
    print(f"\n{title}")
    print(f"  {'run':<22} {'median s':>9} {'min s':>7} {'fixed s':>8}")
    for kind, row in rows.items():
        print(f"  {kind:<22} {row['median']:>9.2f} {row['min']:>7.2f} {row['fixed']:>8.2f}")
    fixed = rows[RPX]["fixed"]
    ok = fixed <= target
    print(
        f"  ({sizes[0]} frames per run; per-frame work {1000 * results['per_frame_s']:.1f} ms from the core at "
        f"{sizes[0]} and {sizes[1]} frames)"
    )
    print(f"  rpx bench fixed cost {fixed:.2f} s; target <= {target:.1f} s: {'met' if ok else 'NOT met'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fixed cost of rpx bench, without a Prefect server and with one.")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs=2, default=(4, 24), metavar=("N1", "N2"))
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    parser.add_argument(
        "--rpx-command", default=None, help="command line that stands for `rpx` (default: the venv's rpx)"
    )
    parser.add_argument(
        "--temporary-server",
        action="store_true",
        help="also measure `rpx bench --prefect` (the flow on Prefect's temporary server, ~8 s a run)",
    )
    args = parser.parse_args(argv)
    if args.rpx_command:
        RPX_COMMAND[:] = args.rpx_command.split()
    sizes = tuple(args.sizes)

    # As installed packages have it: bytecode of the checkout's modules (an editable install never writes it
    # where PYTHONDONTWRITEBYTECODE is set, and each run would compile ~150 modules again, ~0.1 s).
    subprocess.run([sys.executable, "-m", "compileall", "-q", "rpx_tasks", "flows"], cwd=REPO, check=True)
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
        no_server = (RPX, RPX_TEMPORARY) if args.temporary_server else (RPX,)
        results = {"no server": measure(env, manifest, sizes, args.repeats, workdir, no_server)}
        met = print_table(
            "No Prefect server configured (rpx bench runs in-process)",
            results["no server"],
            sizes,
            TARGETS["no server"],
        )

        server, api_url = start_server(env, workdir / "server-home")
        try:
            served = {**env, "PREFECT_API_URL": api_url, "PREFECT_HOME": str(workdir / "client-home")}
            kinds = (EMPTY, RPX, FLOW)
            results["running server"] = measure(served, manifest, sizes, args.repeats, workdir, kinds)
        finally:
            stop_server(server)
        met &= print_table(
            f"Running server ({api_url}; rpx bench runs flow rpx-bench there)",
            results["running server"],
            sizes,
            TARGETS["running server"],
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
