"""``rpx compare A B`` and ``rpx runs --plot``: the command-line side of ``rpx_tasks.comparison`` and the charts.

Exit codes of ``rpx compare``: 0 done, 1 an RPX error (not a run, runs of different tasks), 2 a usage
error, 3 with ``--fail-on-regression`` when the primary metric regressed. The comparison and the charts
(numpy, matplotlib) are imported when a command runs, not when the ``rpx`` parser is built.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rpx_tasks.errors import ConfigError
from rpx_tasks.ui import PlainUI

EXIT_REGRESSION = 3


def parse_min_delta(item: str) -> tuple[str, float]:
    """Return (metric, value) of a ``--min-delta METRIC=VALUE`` item. Raises ArgumentTypeError (exit 2)."""
    name, sep, value = item.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not sep or not name or number < 0:
        raise argparse.ArgumentTypeError(f"expected METRIC=VALUE with VALUE >= 0, got {item!r}")
    return name, number


def add_compare_parser(commands: Any) -> None:
    """Add ``rpx compare A B [--json] [--markdown FILE] [--plot FILE] [--resamples N] [--seed N] [--min-delta M=V]
    [--fail-on-regression] [--plain]``."""
    compare = commands.add_parser(
        "compare",
        help="compare two runs sample by sample: deltas B - A with scene-bootstrap 95%% CIs and verdicts",
        description="A and B: run folders, result.json files, or a model/split folder (its `latest` run). "
        "Exit 3 with --fail-on-regression when the primary metric regressed.",
    )
    compare.add_argument("a", help="the baseline run A")
    compare.add_argument("b", help="the run B compared against A")
    compare.add_argument("--json", action="store_true", help="print the comparison as JSON (docs/compare.md)")
    compare.add_argument("--markdown", metavar="FILE", default=None, help="also write the comparison as Markdown")
    compare.add_argument("--plot", metavar="FILE", default=None, help="also write the per-phase delta chart (PNG)")
    compare.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    compare.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    compare.add_argument(
        "--min-delta",
        metavar="METRIC=VALUE",
        type=parse_min_delta,
        action="append",
        default=[],
        help="smallest |delta| of METRIC that counts as a change (repeatable; defaults in docs/compare.md)",
    )
    compare.add_argument("--fail-on-regression", action="store_true", help="exit 3 when the primary metric regressed")
    compare.add_argument("--plain", action="store_true", help="plain text output")


def show_comparison(comparison: dict[str, Any], ui: PlainUI) -> None:
    """Print a comparison with ``ui``: the runs, warnings, the primary metric per group, every metric, readiness
    and compute deltas, and the headline."""
    from rpx_tasks.comparison.render import (
        GROUP_COLUMNS,
        METRIC_COLUMNS,
        SCALAR_COLUMNS,
        headline,
        metric_rows,
        primary_group_rows,
        scalar_rows,
    )

    runs, pairing, boot = comparison["runs"], comparison["pairing"], comparison["bootstrap"]
    ui.header(
        f"compare {comparison['task']}",
        {
            "A": f"{runs['a']['model']} / {runs['a']['split']}  {runs['a']['id']}  ({runs['a']['folder']})",
            "B": f"{runs['b']['model']} / {runs['b']['split']}  {runs['b']['id']}  ({runs['b']['folder']})",
            "paired": f"{pairing['paired']} samples in {pairing['scenes']} scenes "
            f"(only in A {pairing['only_in_a']}, only in B {pairing['only_in_b']})",
            "bootstrap": f"{boot['resamples']} scene resamples, seed {boot['seed']}, 95% percentile CI",
        },
    )
    for warning in comparison["warnings"]:
        ui.warning(warning["message"])
    ui.grid(GROUP_COLUMNS, primary_group_rows(comparison), title=f"Primary metric {comparison['primary']['metric']}")
    ui.grid(METRIC_COLUMNS, metric_rows(comparison["metrics"]), title="All metrics")
    if comparison["readiness"]:
        ui.grid(SCALAR_COLUMNS, scalar_rows(comparison["readiness"]), title="Readiness (WPS, STR, TS)")
    if comparison["compute"]:
        ui.grid(SCALAR_COLUMNS, scalar_rows(comparison["compute"]), title="Compute")
    ui.footer({"verdict": headline(comparison)})


def cmd_compare(args: argparse.Namespace, ui: PlainUI) -> int:
    """Run ``rpx compare``; returns 3 with ``--fail-on-regression`` when the primary metric regressed, else 0.
    Raises ConfigError (exit 1) when A or B is not a finished run or they are runs of different tasks."""
    from rpx_tasks.comparison import compare_runs, comparison_markdown
    from rpx_tasks.reports import write_text_atomic

    for option, value in (("--markdown", args.markdown), ("--plot", args.plot)):
        if value:
            check_output_file(option, Path(value))
    comparison = compare_runs(
        args.a, args.b, resamples=args.resamples, seed=args.seed, min_delta=dict(args.min_delta) or None
    )
    if args.json:
        print(json.dumps(comparison, indent=2))
    else:
        show_comparison(comparison, ui)
    if args.markdown:
        write_text_atomic(Path(args.markdown), comparison_markdown(comparison))
    if args.plot:
        from rpx_tasks.charts import write_comparison_chart  # matplotlib only when a chart is asked for

        write_comparison_chart(comparison, Path(args.plot))
    return EXIT_REGRESSION if args.fail_on_regression and comparison["regressed"] else 0


def check_output_file(option: str, path: Path) -> None:
    """Raise ConfigError unless ``path`` can be a file written by ``option``: not a folder, in a folder that exists."""
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a folder.", hint=f"pass a file name to {option}, e.g. {path / 'x'}")
    if not path.parent.is_dir():
        raise ConfigError(
            f"{option} {path}: the folder {path.parent} does not exist.", hint="create it first or pass another path"
        )


def plot_runs(runs: list[dict[str, Any]], path: Path) -> Path:
    """Write the trend chart of ``runs`` (rows of ``list_runs``) to ``path``; returns it. Raises ConfigError when the
    runs mix tasks, models or splits, or none is complete."""
    from rpx_tasks.charts import write_runs_trend
    from rpx_tasks.comparison.trend import trend_points

    check_output_file("--plot", path)
    points = trend_points(runs)
    first = next(run for run in runs if run["status"] == "complete")
    title = (
        f"{first['task']} — {first['model']} on {first['split']}: {points[0]['metric']} and WPS overall over "
        f"{len(points)} runs (95% scene-bootstrap CI)"
    )
    return write_runs_trend(points, path, title=title)
