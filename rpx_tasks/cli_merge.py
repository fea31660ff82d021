"""``rpx merge RUN... [--output-dir DIR] [--allow-partial]``: the shard runs of one split merged into one report.

RUN is a shard run's folder (``rpx bench ... --shard i/K``), or a results folder whose ``latest`` names one
(the default ``rpx_results/<model>/<split>/shard-<i>of<K>/``). The merged report equals the unsharded run's
(timings excepted): ``rpx_tasks.run_merge``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rpx_tasks.ui import PlainUI


def add_merge_parser(commands: Any) -> None:
    """Add ``rpx merge RUN... [--output-dir DIR] [--allow-partial] [--plain]``."""
    merge = commands.add_parser(
        "merge",
        help="merge the shard runs of one split (rpx bench --shard i/K) into the unsharded run's report",
        description="RUN: a shard run's folder, or a results folder whose `latest` names one "
        "(e.g. rpx_results/<model>/<split>/shard-1of3). Every shard 1/K..K/K must be given once.",
    )
    merge.add_argument("runs", nargs="+", metavar="RUN", help="the shard runs")
    merge.add_argument(
        "--output-dir",
        default=None,
        help="the merged run's folder (default: a new ./rpx_results/<model>/<split>/<run id>/, made `latest`)",
    )
    merge.add_argument(
        "--allow-partial",
        action="store_true",
        help="merge even when shards are missing (the report names them; it is not the unsharded run's)",
    )
    merge.add_argument("--plain", action="store_true", help="plain text output")


def cmd_merge(args: argparse.Namespace, ui: PlainUI) -> int:
    """Merge the shard runs and print the merged results; returns 0. Raises MergeError (the runs cannot be
    merged), RunLockedError (another run writes into the output folder)."""
    from rpx_tasks.run_merge import merge_runs

    with ui.stage(f"merge {len(args.runs)} shard run(s)"):
        merged = merge_runs([Path(run) for run in args.runs], args.output_dir, allow_partial=args.allow_partial)
    ui.results(merged.payload)
    shards = ", ".join(entry["shard"] for entry in merged.payload["run"]["merged_from"])
    ui.footer({"samples": merged.payload["num_samples"], "shards": shards, "output": merged.folder})
    return 0
