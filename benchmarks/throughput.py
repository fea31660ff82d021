"""Throughput and memory of ``rpx bench monocular_depth`` on realistic 640x480 data.

Generates the sample dataset at two sizes of the hard split (54 and 270 frames by default) with
camera-like RGB (``--rgb camera``, the default: the procedural frames plus Gaussian sensor noise,
re-encoded by PIL, ~650 KB PNGs that barely compress, as RPX's RGB frames), runs the benchmark on
each in a child process with a trivial numpy model (``benchmarks/trivial_model.py``), and prints:

* wall time per size, steady-state frames/s = (N2 - N1) / (T2 - T1) and the implied fixed
  start-up cost T1 - N1 / fps;
* peak RSS of the rpx process (``os.wait4``) and of its whole process tree (sampled from
  /proc every 50 ms) at each size, and the ratio large/small (about 1 when memory is O(batch)).
  Linux carries the parent's peak RSS over fork+exec into the child's, so this script keeps
  itself small (data are generated in a child process, numpy is imported only at the end);
  its own RSS at launch time is printed as the floor of the wait4 figure;
* decode-only frames/s of the large split in this process (the ceiling for the runner).

``--upstream-python PATH`` also runs upstream rpx-benchmark 0.3.0 (installed in the venv of
that interpreter) on the same data through its library API (``MonocularDepthRunConfig`` +
``run_monocular_depth`` with ``make_numpy_depth_model``) and prints the same figures.

``rpx bench`` runs as a user without a Prefect server runs it (in-process; ``--api server`` or
``--api temporary`` for the flow).

``--hf`` measures the HF depth path instead (``benchmarks/hf_throughput.py``): ``rpx bench --hf-checkpoint``
end to end against the by-hand loop (processor -> forward -> resize) at batch 1 and 8.

Usage: ``.venv/bin/python benchmarks/throughput.py [--upstream-python /path/to/python] [--repeat 3]``,
``.venv/bin/python benchmarks/throughput.py --hf [--arch tiny] [--busy]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rpx_tasks.manifest import manifest_relpath  # small: no numpy (see above)

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
MODEL = "trivial_model:constant_depth_2m"
HEIGHT, WIDTH = 480, 640
SCENES_PER_SPLIT = 3
RUN_TIMEOUT_S = 300


@dataclass
class Run:
    """One measured child process."""

    frames: int
    wall_s: float
    peak_rss_mib: float  # the child process itself (wait4 rusage)
    tree_rss_mib: float  # sum over the child's process tree, sampled
    ok: bool
    note: str = ""


# --------------------------------------------------------------------------- measuring


def _process_tree_rss_bytes(root_pid: int) -> int:
    """Sum of the resident set sizes of ``root_pid`` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    total, stack = 0, [root_pid]
    page = os.sysconf("SC_PAGE_SIZE")
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/statm", "rb") as f:
                total += int(f.read().split()[1]) * page
        except OSError:
            pass
        stack.extend(children.get(pid, ()))
    return total


def measure(command: list[str], env: dict[str, str], frames: int, log_path: Path) -> Run:
    """Run ``command``; return its wall time, peak RSS (own and process tree) and exit status."""
    with open(log_path, "wb") as log:
        start = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=log_path.parent)
        peak_tree = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak_tree
            while not done.is_set():
                peak_tree = max(peak_tree, _process_tree_rss_bytes(child.pid))
                done.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        timer = threading.Timer(RUN_TIMEOUT_S, child.kill)
        timer.start()
        _pid, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        timer.cancel()
        done.set()
        sampler.join()
        child.returncode = os.waitstatus_to_exitcode(status)
    ok = child.returncode == 0
    note = "" if ok else f"exit {child.returncode}; last output: {_tail(log_path)}"
    return Run(frames, wall, usage.ru_maxrss / 1024, peak_tree / 2**20, ok, note)


def best_of(runs: list[Run]) -> Run:
    """Combine repeats of one measurement: the fastest wall time (least disturbed), the largest RSS."""
    notes = [run.note for run in runs if run.note]
    return Run(
        runs[0].frames,
        min(run.wall_s for run in runs),
        max(run.peak_rss_mib for run in runs),
        max(run.tree_rss_mib for run in runs),
        all(run.ok for run in runs),
        notes[0] if notes else "",
    )


def _tail(path: Path, lines: int = 6) -> str:
    text = path.read_text(errors="replace").strip().splitlines()
    return " | ".join(text[-lines:])


def _own_rss_mib() -> float:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# --------------------------------------------------------------------------- the runs


_GENERATE_SNIPPET = """
import sys, time
from pathlib import Path
from rpx_tasks.sample_data import write_sample_dataset
start = time.perf_counter()
root = Path(write_sample_dataset(sys.argv[1], scenes_per_split={scenes}, frames_per_clip=int(sys.argv[2]),
                                 height={height}, width={width}, splits=["hard"]))
rgb_sizes = []
if sys.argv[3] == "camera":
    import numpy as np
    from PIL import Image
    for index, path in enumerate(sorted(root.glob("scenes/*/*/rgb/*.png"))):
        rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
        noise = np.random.default_rng(index).normal(0.0, {sigma}, rgb.shape).astype(np.float32)
        Image.fromarray(np.clip(rgb + noise + 0.5, 0, 255).astype(np.uint8)).save(path, format="PNG")
for path in root.glob("scenes/*/*/rgb/*.png"):
    rgb_sizes.append(path.stat().st_size)
print(sum(rgb_sizes) / len(rgb_sizes) / 1000)
print(time.perf_counter() - start)
"""
# Camera-like RGB (--rgb camera): the procedural frames plus Gaussian sensor noise of this standard
# deviation, re-encoded by PIL (zlib level 6, adaptive filters, as camera-recording tools write PNGs):
# about 650 KB per 640x480 frame, barely compressible, as RPX's RGB frames (600-700 KB).
CAMERA_NOISE_SIGMA = 8.0


def generate(root: Path, frames_per_clip: int, env: dict[str, str], rgb: str = "camera") -> tuple[int, float, float]:
    """Write the hard split in a child process (keeps this process small) with environment ``env``;
    ``rgb``: ``camera`` (camera-like noisy frames, ~650 KB PNGs) or ``procedural`` (the sample data's own).
    Returns (frames, seconds, mean RGB PNG size in KB); raises CalledProcessError when the child fails."""
    code = _GENERATE_SNIPPET.format(scenes=SCENES_PER_SPLIT, height=HEIGHT, width=WIDTH, sigma=CAMERA_NOISE_SIGMA)
    done = subprocess.run(
        [sys.executable, "-c", code, str(root), str(frames_per_clip), rgb],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    kilobytes, seconds = (float(line) for line in done.stdout.strip().splitlines()[-2:])
    return SCENES_PER_SPLIT * 3 * frames_per_clip, seconds, kilobytes


def _rpx_command() -> list[str]:
    script = Path(sys.executable).parent / "rpx"
    if script.exists():
        return [str(script)]
    found = shutil.which("rpx")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from rpx_tasks.cli import main; sys.exit(main())"]


def child_env(api_url: str | None, prefect_home: Path) -> dict[str, str]:
    """The environment of the generating and `rpx bench` children: this one, the package and the trivial
    model on PYTHONPATH, no banner, and ``api_url`` as PREFECT_API_URL (None: no Prefect server configured,
    with ``prefect_home`` as an empty PREFECT_HOME, so no profile of this user names one)."""
    env = {key: value for key, value in os.environ.items() if key not in ("PREFECT_API_URL", "PREFECT_PROFILES_PATH")}
    env["PREFECT_HOME"] = str(prefect_home)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(BENCH_DIR), str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env["RPX_NO_BANNER"] = "1"
    return env


def run_rpx(dataset: Path, frames: int, out_dir: Path, env: dict[str, str], extra: tuple[str, ...] = ()) -> Run:
    """Measure `rpx bench` (plus the options ``extra``) on the hard split of ``dataset`` in a child with
    environment ``env``."""
    manifest = dataset / manifest_relpath("monocular_depth", "hard")
    command = _rpx_command() + [
        "bench",
        "monocular_depth",
        "--model",
        MODEL,
        "--manifest",
        str(manifest),
        "--split",
        "hard",
        "--device",
        "cpu",
        "--output-dir",
        str(out_dir),
        "--plain",
        *extra,
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    run = measure(command, env, frames, out_dir / "rpx.log")
    if run.ok:
        run.note = _check_result(out_dir / "result.json", frames)
    return run


def _check_result(path: Path, frames: int) -> str:
    if not path.exists():
        return "no result.json written"
    num = json.loads(path.read_text()).get("num_samples")
    return "" if num == frames else f"result.json says num_samples={num}, expected {frames}"


_UPSTREAM_SNIPPET = """
import sys
import rpx_benchmark as rpx
sys.path.insert(0, {bench_dir!r})
from trivial_model import constant_depth_2m
cfg = rpx.MonocularDepthRunConfig(
    model=rpx.make_numpy_depth_model(constant_depth_2m, name="trivial"),
    split="hard", manifest_path={manifest!r}, device="cpu", output_dir={out_dir!r},
)
rpx.run_monocular_depth(cfg)
"""


def run_upstream(python: str, dataset: Path, frames: int, out_dir: Path) -> Run:
    # Upstream resolves a null root against the manifest's folder, so give it an absolute root.
    manifest = json.loads((dataset / manifest_relpath("monocular_depth", "hard")).read_text())
    manifest["root"] = str(dataset)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / "hard_rooted.json"
    manifest_path.write_text(json.dumps(manifest))
    code = _UPSTREAM_SNIPPET.format(bench_dir=str(BENCH_DIR), manifest=str(manifest_path), out_dir=str(out_dir))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = measure([python, "-c", code], env, frames, out_dir / "upstream.log")
    if run.ok:
        run.note = _check_result(out_dir / "result.json", frames)
    return run


def decode_only(dataset: Path) -> tuple[int, float, str]:
    """Decode the hard split in this process (imports numpy: call it last). Returns (frames, seconds, how)."""
    from rpx_tasks.dataset import open_split
    from rpx_tasks.tasks import get_task

    split = open_split(dataset / manifest_relpath("monocular_depth", "hard"), get_task("monocular_depth"))
    start = time.perf_counter()
    frames = sum(len(batch) for batch in split.iter_batches(batch_size=1))
    return frames, time.perf_counter() - start, "rpx_tasks.dataset.open_split(...).iter_batches(batch_size=1)"


# --------------------------------------------------------------------------- report


def _steady_state(small: Run, large: Run) -> tuple[float, float]:
    fps = (large.frames - small.frames) / (large.wall_s - small.wall_s)
    return fps, small.wall_s - small.frames / fps


def print_table(title: str, small: Run, large: Run) -> None:
    print(f"\n{title}")
    print(f"  {'frames':>8} {'wall s':>9} {'peak RSS MiB':>13} {'tree RSS MiB':>13}  status")
    for run in (small, large):
        status = "ok" if run.ok and not run.note else (run.note or "failed")
        print(f"  {run.frames:>8} {run.wall_s:>9.2f} {run.peak_rss_mib:>13.0f} {run.tree_rss_mib:>13.0f}  {status}")
    if not (small.ok and large.ok) or large.wall_s <= small.wall_s:
        print("  steady state: n/a (a run failed or the larger run was not slower)")
        return
    fps, fixed = _steady_state(small, large)
    print(f"  steady-state throughput : {fps:8.1f} frames/s  ((N2-N1)/(T2-T1))")
    print(f"  implied fixed cost      : {fixed:8.2f} s        (start-up, imports, reports)")
    print(
        f"  peak RSS ratio {large.frames}/{small.frames}   : {large.peak_rss_mib / small.peak_rss_mib:8.2f} "
        f"(process), {large.tree_rss_mib / small.tree_rss_mib:.2f} (tree)"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring). Exits 2 on a usage error."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--hf",
        action="store_true",
        help="instead: the HF depth path end to end vs by hand at batch 1 and 8 (benchmarks/hf_throughput.py; "
        "its options: --arch, --frames, --batch-sizes, --busy)",
    )
    parser.add_argument("--upstream-python", help="python of a venv with rpx-benchmark 0.3.0 installed")
    parser.add_argument("--small-frames-per-clip", type=int, default=6)
    parser.add_argument("--large-frames-per-clip", type=int, default=30)
    parser.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="runs per size; the fastest counts (default 5: the flow's start-up varies by about a second between runs)",
    )
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temp dir, removed)")
    parser.add_argument(
        "--api",
        choices=("none", "server", "temporary"),
        default="none",
        help="none (default): no Prefect server configured, so `rpx bench` runs in-process without Prefect; "
        "server: start one local `prefect server` for all rpx runs (each run is a flow run there); temporary: "
        "`rpx bench --prefect`, each run starts Prefect's temporary server (~8 s, noisy)",
    )
    parser.add_argument(
        "--rgb",
        choices=("camera", "procedural"),
        default="camera",
        help="camera (default): camera-like RGB, the procedural frames plus sensor noise, ~650 KB PNGs that barely "
        "compress, as RPX's; procedural: the sample data's own frames (~330 KB PNGs)",
    )
    return parser.parse_args(argv)


def generate_sizes(args: argparse.Namespace, work: Path, env: dict[str, str]) -> dict[str, tuple[Path, int]]:
    """Generate the small and the large hard split under ``work``. Returns {label: (dataset root, frames)}."""
    sizes = {}
    for label, per_clip in (("small", args.small_frames_per_clip), ("large", args.large_frames_per_clip)):
        root = work / f"data_{label}"
        frames, seconds, kilobytes = generate(root, per_clip, env, args.rgb)
        print(
            f"generated the hard split: {frames} frames ({WIDTH}x{HEIGHT}, {args.rgb} RGB, PNGs of "
            f"{kilobytes:.0f} KB on average) in {seconds:.1f} s ({1000 * seconds / frames:.1f} ms/frame)"
        )
        sizes[label] = (root, frames)
    return sizes


def _ratio(ours: dict[str, Run], upstream: dict[str, Run]) -> float | None:
    """Steady-state frames/s of ``ours`` over ``upstream`` (runs by size label); None when a run failed or a
    larger run was not slower."""
    for runs in (ours, upstream):
        if not all(run.ok for run in runs.values()) or runs["large"].wall_s <= runs["small"].wall_s:
            return None
    return _steady_state(ours["small"], ours["large"])[0] / _steady_state(upstream["small"], upstream["large"])[0]


def print_upstream(upstream: list[dict[str, Run]], ours: list[dict[str, Run]]) -> None:
    """Print upstream's table (best of its rounds) and the steady-state ratio rpx-bench / upstream: of the
    best-of figures, and the median of the per-round ratios (each round ran both, back to back)."""
    best = {label: best_of([round_[label] for round_ in upstream]) for label in upstream[0]}
    print_table(
        f"upstream rpx-benchmark 0.3.0 (run_monocular_depth, same data and model, best of {len(upstream)})",
        best["small"],
        best["large"],
    )
    ours_best = {label: best_of([round_[label] for round_ in ours]) for label in ours[0]}
    ratio = _ratio(ours_best, best)
    per_round = sorted(r for r in (_ratio(a, b) for a, b in zip(ours, upstream)) if r is not None)
    if ratio is None:
        print("\nsteady-state ratio rpx-bench / upstream: n/a (a run failed or the larger run was not slower)")
        return
    median = f"{statistics.median(per_round):.2f}x" if per_round else "n/a"
    rounds = ", ".join(f"{r:.2f}" for r in per_round)
    print(f"\nsteady-state ratio rpx-bench / upstream: {ratio:.2f}x (best of each)")
    print(f"  median of the per-round ratios: {median} ({rounds})")


def print_decode_only(dataset: Path, repeats: range) -> None:
    """Decode ``dataset``'s hard split in this process ``repeats`` times and print the fastest."""
    decodes = [decode_only(dataset) for _ in repeats]
    frames, seconds, how = min(decodes, key=lambda decode: decode[1])
    print(
        f"\ndecode-only (ceiling): {frames} frames in {seconds:.2f} s = {frames / seconds:.1f} frames/s "
        f"(best of {len(repeats)})"
    )
    print(f"  via {how}")


def measure_all(args: argparse.Namespace, work: Path, api_url: str | None) -> None:
    """Generate both sizes, measure and print rpx (and upstream when asked), then decode-only."""
    env = child_env(api_url, work / "prefect-home-of-the-runs")
    extra = ("--prefect",) if args.api == "temporary" else ()
    sizes = generate_sizes(args, work, env)
    print(f"this script's RSS when launching the runs (floor of the wait4 peak): {_own_rss_mib():.0f} MiB")
    repeats = range(max(1, args.repeat))
    # Interleaved rounds: each runs rpx (and upstream) on both sizes back to back, so the drifts of a shared
    # machine hit both alike.
    ours: list[dict[str, Run]] = []
    upstream: list[dict[str, Run]] = []
    for i in repeats:
        ours.append({})
        upstream.append({})
        for label, (root, n) in sizes.items():
            ours[-1][label] = run_rpx(root, n, work / f"out_{label}_{i}", env, extra)
            if args.upstream_python:
                upstream[-1][label] = run_upstream(args.upstream_python, root, n, work / f"upstream_{label}_{i}")
    runs = {label: best_of([round_[label] for round_ in ours]) for label in sizes}
    how = {"none": "in-process, no Prefect server", "server": f"flow runs on {api_url}", "temporary": "--prefect"}
    print_table(
        f"rpx bench monocular_depth --model {MODEL} --device cpu "
        f"(hard split, {WIDTH}x{HEIGHT}, {how[args.api]}, best of {len(repeats)})",
        runs["small"],
        runs["large"],
    )
    if args.upstream_python:
        print_upstream(upstream, ours)
    print_decode_only(sizes["large"][0], repeats)


def main(argv: list[str] | None = None) -> int:
    """Run the measurements and print them. Returns 0; raises when a generating child fails."""
    if "--hf" in (sys.argv[1:] if argv is None else argv):  # the HF depth path: benchmarks/hf_throughput.py
        from hf_throughput import main as hf_main

        return hf_main(argv)
    args = parse_args(argv)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="rpx-throughput-"))
    work.mkdir(parents=True, exist_ok=True)
    server = None
    try:
        api_url = None
        if args.api == "server":
            from fixed_cost import start_server

            server, api_url = start_server(dict(os.environ), work / "prefect-home")
            print(f"prefect server for the rpx runs: {api_url}")
        measure_all(args, work, api_url)
    finally:
        if server is not None:
            from fixed_cost import stop_server

            stop_server(server)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
