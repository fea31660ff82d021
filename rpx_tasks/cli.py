"""The ``rpx`` command line: ls, models, info, download, bench, runs, compare, phi, merge, sample-data, demo.

Exit codes: 0 done, 1 an RPX error (message and hint on stderr, no traceback), 2 usage
error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from flows.parameters import PARAMETER_DEFAULTS, PARAMETER_FIELDS
from rpx_tasks.allocator import tune_allocator_for_frames
from rpx_tasks.bench import validate_config
from rpx_tasks.cli_compare import add_compare_parser, cmd_compare, plot_runs
from rpx_tasks.cli_merge import add_merge_parser, cmd_merge
from rpx_tasks.cli_phi import add_phi_parser, cmd_phi
from rpx_tasks.cli_run_path import RECORD_HINT, choose_run_path, comparison_line, run_in_process
from rpx_tasks.config import RunConfig
from rpx_tasks.constants import DEFAULT_SPLIT, SPLITS
from rpx_tasks.contracts.spec import TaskSpec
from rpx_tasks.cpu_budget import apply_torch_threads
from rpx_tasks.errors import ConfigError, RPXError
from rpx_tasks.gc_policy import collect_from_now_on, defer_collection, skip_collection_at_exit
from rpx_tasks.manifest import manifest_relpath
from rpx_tasks.tasks import get_task, iter_tasks
from rpx_tasks.ui import PlainUI, make_ui

logger = logging.getLogger("rpx_tasks")


def _configure_logging(verbose: bool, quiet: bool, plain: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    level = os.environ.get("RPX_LOG_LEVEL", level)
    handler: logging.Handler
    if not plain and sys.stderr.isatty():
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, show_time=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[%(levelname)s] %(name)s: %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--split", choices=SPLITS, default=DEFAULT_SPLIT, help=f"difficulty split (default: {DEFAULT_SPLIT})"
    )
    parser.add_argument(
        "--repo",
        dest="repo_id",
        default=None,
        help="dataset repo ORG/NAME or a local mirror directory (default: $RPX_HF_REPO or IRVLUTD/RPX)",
    )
    parser.add_argument(
        "--revision", default=None, help="dataset revision (default: $RPX_HF_REVISION or the pinned commit)"
    )
    parser.add_argument("--cache-dir", default=None, help="Hugging Face cache directory")
    parser.add_argument("--max-samples", type=int, default=None, help="use only the first N samples of the split")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser; ``bench`` gets one sub-command per registered task."""
    parser = argparse.ArgumentParser(
        prog="rpx",
        description="RPX — choose and rank perception models for robot learning. "
        "`rpx bench <task>` runs a benchmark on the RPX dataset.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings only, no banner")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("ls", help="list tasks and splits")
    commands.add_parser("models", help="list registered models")

    for name, help_text in (
        ("info", "describe a split from its manifest (no frames fetched)"),
        ("download", "download a split"),
    ):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("task", help="RPX task, e.g. monocular_depth")
        _add_data_options(sub)

    sample = commands.add_parser("sample-data", help="write the built-in procedural dataset")
    sample.add_argument("directory")
    sample.add_argument("--scenes-per-split", type=int, default=2)
    sample.add_argument("--frames-per-clip", type=int, default=4)
    sample.add_argument("--height", type=int, default=96)
    sample.add_argument("--width", type=int, default=128)

    _add_runs_parser(commands)
    add_compare_parser(commands)
    add_phi_parser(commands)
    add_merge_parser(commands)

    demo = commands.add_parser("demo", help="benchmark a weight-free baseline on the built-in sample data (offline)")
    demo.add_argument("--output-dir", default=None)
    demo.add_argument("--plain", action="store_true")
    _add_prefect_option(demo)

    bench = commands.add_parser("bench", help="benchmark a model on one task and split")
    tasks = bench.add_subparsers(dest="task", required=True, metavar="TASK")
    for spec in iter_tasks():
        sub = tasks.add_parser(
            spec.name, help=spec.display_name, description=f"Benchmark {spec.display_name} ({spec.name})."
        )
        _add_bench_options(sub, spec)
    return parser


def _add_runs_parser(commands: Any) -> None:
    """Add ``rpx runs [RESULTS_DIR] [--json] [--task --model --split --status] [--plain]``."""
    runs = commands.add_parser("runs", help="list the runs under a results folder (complete, incomplete, failed)")
    runs.add_argument("results_dir", nargs="?", default="rpx_results", help="default: ./rpx_results")
    runs.add_argument("--json", action="store_true", help="print the runs as a JSON list")
    runs.add_argument("--task", default=None, help="only runs of this task")
    runs.add_argument("--model", default=None, help="only runs of this model (its name in reports)")
    runs.add_argument("--split", default=None, help="only runs of this split")
    runs.add_argument("--status", default=None, choices=("complete", "incomplete", "failed"))
    runs.add_argument("--plain", action="store_true", help="plain text output")
    runs.add_argument(
        "--plot",
        metavar="FILE",
        default=None,
        help="also write a PNG of the primary metric (95%% CI) and WPS over the runs (one task/model/split)",
    )


def _add_bench_options(sub: argparse.ArgumentParser, spec: TaskSpec) -> None:
    """Add the options of ``rpx bench <task>``: the dest of each is its RunConfig field."""
    _add_data_options(sub)
    sub.add_argument(
        "--shard",
        default=None,
        metavar="I/K",
        help="run only shard I of K of the split (whole clips, balanced by frame count: 1/3, 2/3, 3/3); "
        "`rpx merge` joins the shards into the unsharded run's report",
    )
    sub.add_argument(
        "--model",
        dest="model_name",
        default=None,
        help="registry name (`rpx models`), `baseline`, or import path package.module:callable",
    )
    sub.add_argument(
        "--hf-checkpoint",
        default=None,
        help="Hugging Face checkpoint id" + ("" if spec.hf_loader is not None else " (no fast path for this task)"),
    )
    sub.add_argument(
        "--manifest",
        default=None,
        help="local manifest JSON: its samples are the run (--split only "
        "names the output); builtin:sample for the built-in sample data of --split",
    )
    # None: RunConfig's default applies (validate_config drops None), shown in the help.
    sub.add_argument("--batch-size", type=int, default=None, help=f"default: {PARAMETER_DEFAULTS['batch_size']}")
    sub.add_argument(
        "--device",
        default=None,
        help=f"cuda, cuda:N or cpu (default: {PARAMETER_DEFAULTS['device']}; CUDA falls back to CPU with a warning)",
    )
    sub.add_argument(
        "--require-cuda",
        dest="require_cuda",
        action="store_true",
        default=None,
        help="fail (ConfigError) instead of falling back to the CPU when the GPU is missing",
    )
    sub.add_argument(
        "--output-dir", default=None, help="the run folder (default: a new ./rpx_results/<model>/<split>/<run id>/)"
    )
    sub.add_argument(
        "--model-kwarg",
        dest="model_kwargs",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="keyword argument for the model factory or HF loader (repeatable; VALUE is JSON, else text), "
        "e.g. --model-kwarg threshold=0.3",
    )
    sub.add_argument(
        "--vocabulary",
        default=None,
        metavar="PHRASES|@FILE|frame-labels",
        help=(
            "the vocabulary every sample's model receives, overriding the dataset's: 'red box,mug', @FILE "
            "(a .json list of strings, else one phrase per line) or frame-labels (each frame's own labels; "
            "recorded as not comparable)"
            if spec.settle_vocabulary is not None
            else "(this task takes no vocabulary)"
        ),
    )
    sub.add_argument(
        "--alignment",
        default=None,
        metavar="none|ls_affine|ls_disparity",
        help=(
            "fit the prediction to the ground truth before the depth metrics, per frame: ls_affine (scale and "
            "shift on depth), ls_disparity (scale and shift on inverse depth) or none; default: the registry "
            "model's (relative-depth models align, metric ones do not); part of the run's fingerprint"
            if spec.align_prediction is not None
            else "(this task takes no alignment)"
        ),
    )
    if spec.clip is not None:
        sub.add_argument(
            "--frame-budget",
            type=int,
            default=None,
            metavar="N",
            help="score at most N frames of each clip (memory of a whole-clip model is O(N frames))",
        )
        sub.add_argument(
            "--sampling",
            choices=("all", "stride"),
            default=None,
            help="with --frame-budget: the first N frames (all, default) or every k-th frame so that at most N remain",
        )
        sub.add_argument("--fscore", action="store_true", default=None, help="also compute fscore_5cm (slower)")
    if spec.geometric_coherence:
        sub.add_argument(
            "--sgc",
            dest="geometric_coherence",
            action="store_true",
            help="also compute SGC (needs depth in the manifest)",
        )
    sub.add_argument(
        "--no-flops",
        dest="count_flops",
        action="store_false",
        default=None,
        help="skip the FLOP count (a deep copy of the model runs one extra sample); result.json records null",
    )
    sub.add_argument(
        "--no-resume",
        dest="resume",
        action="store_false",
        default=None,
        help="start afresh instead of resuming the incomplete run of the same configuration",
    )
    sub.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        metavar="N",
        help=f"commit rows and state every N samples (default: {PARAMETER_DEFAULTS['checkpoint_every']}) or "
        f"{PARAMETER_DEFAULTS['checkpoint_seconds']:.0f} s, whichever comes first; a killed run resumes from there",
    )
    _add_execution_options(sub, spec)
    sub.add_argument("--plain", action="store_true", help="plain text output")
    _add_prefect_option(sub)


def _add_prefect_option(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--prefect",
        action="store_true",
        help="run as a Prefect flow even without a configured server (a temporary server, ~8 s); with "
        "PREFECT_API_URL set (`prefect config set`) every run is a flow run on that server",
    )


def _add_execution_options(sub: argparse.ArgumentParser, spec: TaskSpec) -> None:
    """Add ``--precision``, ``--compile`` (HF fast paths) and ``--num-workers`` to ``rpx bench <task>``."""
    fast_path = spec.hf_loader is not None
    sub.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        default=None,
        help="HF fast path: run the forward pass under autocast in bf16 or fp16 (fp16 needs CUDA; default: fp32)"
        if fast_path
        else "(HF fast paths only)",
    )
    sub.add_argument(
        "--compile",
        action="store_true",
        default=None,
        help="HF fast path: torch.compile the model (the warm-up batch pays the compilation)"
        if fast_path
        else "(HF fast paths only)",
    )
    sub.add_argument(
        "--num-workers",
        type=int,
        default=None,
        metavar="N",
        help="decoding workers (0: decode on the loop's thread); default: sized from the cores available, "
        "leaving torch the rest (RPX_TORCH_THREADS sets torch's threads)",
    )


def cmd_ls(args, ui: PlainUI) -> int:
    """Print the tasks with the files they download and what a model predicts, and the splits; returns 0."""
    from rpx_tasks.hub import MODALITY_FILES

    print("Tasks:")
    for spec in iter_tasks():
        globs = [glob for modality in spec.modalities for glob in MODALITY_FILES[modality][0]]
        print(f"  {spec.name:<22} modalities: {', '.join(globs)}")
        print(f"  {'':<22} predicts:   {spec.numpy_signature}")
    print()
    print(f"Splits: {', '.join(SPLITS)}")
    return 0


def cmd_models(args, ui: PlainUI) -> int:
    """Print the registered models and each task's default baseline; returns 0. Raises ConfigError."""
    from rpx_tasks.model_selection import default_baseline, list_models

    print("Registered models:")
    for entry in list_models():
        print(f"  {entry.name:<40} {entry.task:<22} {entry.kind}:{entry.target}")
    print()
    print("`--model baseline` picks the task's default weight-free baseline:")
    for spec in iter_tasks():
        print(f"  {spec.name:<22} {default_baseline(spec.name).name}")
    return 0


def cmd_info(args, ui: PlainUI) -> int:
    """Print a split's scenes, clips, samples and download size from its manifest; returns 0.

    Raises DownloadError / ManifestError / DatasetError.
    """
    from rpx_tasks import hub

    spec = get_task(args.task)
    info = hub.describe_split(
        spec.name,
        args.split,
        modalities=spec.modalities,
        repo_id=args.repo_id,
        revision=args.revision,
        cache_dir=args.cache_dir,
        max_samples=args.max_samples,
    )
    print(f"Task: {spec.name}")
    print(f"Split: {args.split}")
    print(f"Scenes: {len(info.scenes)}")
    print(f"(scene, phase) pairs: {len(info.pairs)}")
    print(f"Samples: {info.num_samples}")
    print(f"Modalities: {', '.join(info.modalities)}")
    if info.estimated_bytes is not None:
        print(f"Estimated download: {info.estimated_bytes / 1e6:.1f} MB")
    resolved = hub.resolved_manifest_path(
        info.repo_id, spec.name, args.split, args.max_samples, modalities=info.modalities
    )
    print(f"Resolved manifest: {resolved} ({'on disk' if hub.resolved_files_present(resolved) else 'not downloaded'})")
    return 0


def cmd_download(args, ui: PlainUI) -> int:
    """Download a split and print its resolved manifest, root and samples; returns 0.

    Raises DownloadError / ManifestError / DatasetError.
    """
    from rpx_tasks import hub

    spec = get_task(args.task)
    with ui.stage(f"download {spec.name}/{args.split}"):
        split = hub.download_split(
            spec.name,
            args.split,
            modalities=spec.modalities,
            repo_id=args.repo_id,
            revision=args.revision,
            cache_dir=args.cache_dir,
            max_samples=args.max_samples,
        )
    print(f"Manifest: {split.manifest_path}")
    print(f"Root: {split.root}")
    print(f"Samples: {split.num_samples}")
    return 0


def cmd_runs(args, ui: PlainUI) -> int:
    """Print the runs under ``args.results_dir`` (a table, or JSON with ``--json``), and with ``--plot FILE`` write
    their trend chart; returns 0.

    Raises ConfigError when the folder does not exist, or (``--plot``) the runs mix tasks, models or splits.
    """
    from rpx_tasks.runs_listing import RUN_COLUMNS, format_run_cell, list_runs

    runs = list_runs(Path(args.results_dir), task=args.task, model=args.model, split=args.split, status=args.status)
    if args.plot:
        plot_runs(runs, Path(args.plot))
    if args.json:
        print(json.dumps(runs, indent=2))
    elif runs:
        ui.grid(RUN_COLUMNS, [[format_run_cell(run, column) for column in RUN_COLUMNS] for run in runs])
    else:
        print(f"No runs under {args.results_dir}.")
    return 0


def cmd_sample_data(args, ui: PlainUI) -> int:
    """Write the procedural sample dataset to ``args.directory`` and print its manifests; returns 0."""
    from rpx_tasks.sample_data import write_sample_dataset

    root = write_sample_dataset(
        Path(args.directory),
        scenes_per_split=args.scenes_per_split,
        frames_per_clip=args.frames_per_clip,
        height=args.height,
        width=args.width,
    )
    print(f"Sample dataset: {root}")
    for spec in iter_tasks():
        if spec.sample_entry is not None:
            print(f"  {spec.name:<22} {root / manifest_relpath(spec.name, 'all')}")
    return 0


def _bench(config: RunConfig, params: dict[str, Any], ui: PlainUI, prefect: bool = False) -> int:
    """Run the benchmark on ``params`` (RunConfig fields; ``config`` is them validated) with a progress bar
    and print the results: as flow rpx-bench when a Prefect server is configured and answers, or with
    ``prefect`` (``--prefect``: Prefect's temporary server), else in this process without Prefect
    (``rpx_tasks.cli_run_path``).

    Validating first (the callers) makes a bad option fail cheaply, before any work. Returns 0. Raises the
    RPXError of the failed step, ConfigError when a configured Prefect server does not answer.
    """
    path = choose_run_path(prefect)
    ui.header(
        get_task(config.task).display_name,
        {
            "model": config.display_name,
            "split": config.split,
            "data": config.manifest or f"{config.effective_repo_id}@{config.effective_revision[:12]}",
            "device": config.device,
            "prefect": path.describe(),
        },
    )
    if not path.uses_prefect and logger.isEnabledFor(logging.INFO):
        ui.info(RECORD_HINT)
    run = _flow_runner() if path.uses_prefect else run_in_process
    collect_from_now_on()  # the imports are done (gc_policy)
    with ui.progress() as progress:
        summary = run(params if path.uses_prefect else config, progress)
    payload = json.loads(Path(summary["result_json"]).read_text(encoding="utf-8"))
    ui.results(payload)
    compared = comparison_line(summary.get("comparison"))
    if compared:
        ui.info(f"previous run: {compared}")
    ui.footer({"samples": payload["num_samples"], "output": summary["output_dir"]})
    return 0


def _flow_runner() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """Import Prefect and flow rpx-bench; return ``run(params, progress)``, which runs the flow in this process
    on ``params`` and returns its summary (raises the failed step's RPXError).

    Flow-run heartbeats are off for CLI runs (unless PREFECT_FLOWS_HEARTBEAT_FREQUENCY is set): ending the
    heartbeat thread costs up to 1 s per run. What the UI loses: a CLI run killed hard (SIGKILL, OOM, power
    loss) is not marked Crashed by heartbeat-based zombie detection; it stays Running. Deployment runs keep
    their heartbeats.
    """
    from flows.bootstrap import configure_quiet_prefect

    configure_quiet_prefect(verbose=logger.isEnabledFor(logging.DEBUG))  # before Prefect is imported
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.rpx_bench import run_bench_flow

    def run(params: dict[str, Any], progress: Any) -> dict[str, Any]:
        # choose_run_path asked a configured server for its health already.
        if os.environ.get("PREFECT_FLOWS_HEARTBEAT_FREQUENCY"):
            return run_bench_flow(params, progress=progress, check_api=False)
        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            return run_bench_flow(params, progress=progress, check_api=False)

    return run


def parse_model_kwargs(items: list[str], parser: argparse.ArgumentParser) -> dict[str, Any]:
    """``["threshold=0.3", "name=x"]`` -> ``{"threshold": 0.3, "name": "x"}`` (JSON values, else text).

    A malformed item is a usage error (exit 2).
    """
    kwargs: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip().isidentifier():
            parser.error(f"--model-kwarg expects KEY=VALUE with KEY a Python identifier, got {item!r}")
        try:
            kwargs[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            kwargs[key.strip()] = text
    return kwargs


def cmd_bench(args, ui: PlainUI, parser: argparse.ArgumentParser) -> int:
    """Run ``rpx bench <task>`` as flow rpx-bench; returns 0. Exits 2 without a model; raises RPXError."""
    # Every flow parameter is a RunConfig field of the same name as the option's dest (None: the default).
    params = {name: getattr(args, name, None) for name in PARAMETER_FIELDS.values()}
    if args.model_kwargs:
        params["model_kwargs"] = parse_model_kwargs(args.model_kwargs, parser)
    try:
        config = validate_config(params)
    except ConfigError as error:
        # RunConfig applies the one-model-selector rule (model_selection.check_one_selector); naming
        # no model at all is a usage error of the command line (exit 2), two models a ConfigError (exit 1).
        if error.details.get("given_fields") == []:
            parser.error(f"bench {args.task}: one of --model or --hf-checkpoint is required")
        raise
    return _bench(config, params, ui, prefect=args.prefect)


def cmd_demo(args, ui: PlainUI) -> int:
    """Benchmark ``ground_plane_prior`` on the built-in sample data (hard split, CPU); returns 0. Raises RPXError."""
    from rpx_tasks.sample_data.builtin import BUILTIN_SAMPLE, ensure_sample_data

    with ui.stage("write sample data"):
        ensure_sample_data()  # once per version; the run below finds it
    params = {
        "task": "monocular_depth",
        "split": "hard",
        "model_name": "ground_plane_prior",
        "manifest": BUILTIN_SAMPLE,
        "device": "cpu",
        "output_dir": args.output_dir,
    }
    return _bench(validate_config(params), params, ui, prefect=args.prefect)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rpx``; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # Process-wide malloc setting for frame-sized buffers: the entry point decides, not the library.
    tune_allocator_for_frames()
    if args.command not in ("bench", "demo"):
        collect_from_now_on()  # no run to wait for (rpx_tasks.gc_policy; a no-op unless `entry` deferred it)
    plain = getattr(args, "plain", False)
    _configure_logging(args.verbose, args.quiet, plain)
    ui = make_ui(plain)
    if not args.quiet and not os.environ.get("RPX_NO_BANNER") and args.command in ("bench", "demo"):
        ui.banner(f"rpx {args.command}" + (f" {args.task}" if args.command == "bench" else ""))
    handlers = {
        "ls": cmd_ls,
        "models": cmd_models,
        "info": cmd_info,
        "download": cmd_download,
        "sample-data": cmd_sample_data,
        "runs": cmd_runs,
        "compare": cmd_compare,
        "phi": cmd_phi,
        "merge": cmd_merge,
        "demo": cmd_demo,
    }
    try:
        if args.command == "bench":
            apply_torch_threads()  # RPX_TORCH_THREADS: process-wide, so the entry point applies it
            return cmd_bench(args, ui, parser)
        return handlers[args.command](args, ui)
    except RPXError as error:
        ui.error(error)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`rpx ls | head`): stop quietly, and keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def entry() -> int:
    """The ``rpx`` console script: ``main`` in a process of its own, which it ends. The garbage collector waits
    while the command starts and skips its final collection (``rpx_tasks.gc_policy``: ~0.5 s of a run against
    a Prefect server); ``main`` called in a longer-lived process (tests, notebooks) leaves the collector alone.
    Returns the exit code."""
    defer_collection()  # bench and demo turn it on when the run starts, other commands at once
    try:
        return main()
    finally:
        skip_collection_at_exit()


if __name__ == "__main__":
    sys.exit(entry())
