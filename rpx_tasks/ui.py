"""Terminal UI: rich panels, tables and a progress bar, or plain text for logs and pipes.

Tables and results go to stdout; the banner, progress, warnings and errors go to stderr.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from rpx_tasks.contracts.stage_timer import stages_line
from rpx_tasks.errors import RPXError
from rpx_tasks.readiness.robustness_lines import robustness_rows
from rpx_tasks.reports import efficiency_rows, execution_line, format_signed, format_value

BANNER = r"""
  ____  ____  __  __
 |  _ \|  _ \ \ \/ /
 | |_) | |_) | \  /     Robot Perception X — rpx-bench
 |  _ <|  __/  /  \     Choose and rank perception models for robot learning
 |_| \_\_|    /_/\_\
"""


def _phase_rows(readiness: dict[str, Any]) -> list[tuple[str, str]]:
    wps = readiness.get("wps") or {}
    rows = [
        ("clutter", format_value(wps.get("s_clutter"))),
        ("interaction", format_value(wps.get("s_interaction"))),
        ("clean", format_value(wps.get("s_clean"))),
        ("overall", format_value(wps.get("s_overall"))),
        ("Δ_int (I-C)", f"{format_signed(wps.get('delta_int'))} {wps.get('interaction_effect') or ''}".strip()),
        ("Δ_rec (L-I)", f"{format_signed(wps.get('delta_rec'))} {wps.get('recovery_effect') or ''}".strip()),
    ]
    ts = readiness.get("ts") or {}
    if ts.get("pairs"):
        rows.append(("TS", f"{format_value(ts.get('score'))} ({ts['pairs']} pairs)"))
    return rows


class PlainUI:
    """Plain-text output for pipes, CI logs and ``--plain``."""

    def __init__(self, out=None, err=None):
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def banner(self, subtitle: str = "") -> None:
        """Print the RPX banner (and ``subtitle``) to stderr."""
        print(BANNER.rstrip("\n") + (f"\n  {subtitle}" if subtitle else ""), file=self.err)

    def header(self, title: str, fields: dict[str, Any]) -> None:
        """Print the run's title and its key/value fields (model, split, data, device) to stdout."""
        print("=" * 64, file=self.out)
        print(f"RPX — {title}", file=self.out)
        print("=" * 64, file=self.out)
        for key, value in fields.items():
            print(f"  {key:<10} {value}", file=self.out)

    @contextmanager
    def stage(self, label: str) -> Iterator[None]:
        """Report ``label`` as started, then done with its duration or failed (the exception propagates)."""
        print(f"[..] {label}", file=self.err, flush=True)
        start = time.perf_counter()
        try:
            yield
        except BaseException:
            print(f"[!!] {label}  failed", file=self.err, flush=True)
            raise
        print(f"[ok] {label}  ({time.perf_counter() - start:.1f}s)", file=self.err, flush=True)

    @contextmanager
    def progress(self) -> Iterator[Any]:
        """Yield a ``progress(done, total, stage)`` callback that shows the benchmark loop's progress."""
        state = {"stage": None, "last": 0}

        def update(done: int, total: int | None, stage: str) -> None:
            if stage != state["stage"]:
                state["stage"], state["last"] = stage, 0
                print(f"[..] {stage}", file=self.err, flush=True)
            if total and (done - state["last"] >= max(1, total // 20) or done == total) and done > state["last"]:
                state["last"] = done
                print(f"     {done}/{total}  ({100.0 * done / total:.0f}%)", file=self.err, flush=True)

        yield update

    def info(self, message: str) -> None:
        """Print an informational line to stderr."""
        print(f"[info] {message}", file=self.err)

    def table(self, title: str, rows: list[tuple[str, str]]) -> None:
        """Print a titled two-column table to stdout."""
        print(f"-- {title} --", file=self.out)
        width = max((len(key) for key, _ in rows), default=0)
        for key, value in rows:
            print(f"    {key:<{width}}  {value}", file=self.out)

    def warning(self, message: str) -> None:
        """Print a warning line to stderr."""
        print(f"[warn] {message}", file=self.err)

    def grid(self, columns: Sequence[str], rows: list[list[str]], title: str | None = None) -> None:
        """Print a table (under ``title``, if given) with a header row to stdout, columns padded to their widest
        cell."""
        if title:
            print(f"-- {title} --", file=self.out)
        widths = [max([len(name), *(len(row[i]) for row in rows)]) for i, name in enumerate(columns)]
        for cells in [list(columns), *rows]:
            print("  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip(), file=self.out)

    def results(self, payload: dict[str, Any]) -> None:
        """Print result.json's aggregated metrics, Weighted Phase Score and efficiency tables."""
        rows = []
        for name, stats in payload["aggregated"].items():
            arrow = {True: "↑", False: "↓"}.get(stats.get("higher_is_better"), " ")
            extra = (
                f"  (NaN {stats['nan_count']}, inf {stats['inf_count']})"
                if stats["nan_count"] or stats["inf_count"]
                else ""
            )
            rows.append((f"{name} {arrow}", format_value(stats["mean"]) + extra))
        self.table("Aggregated metrics", rows)
        readiness = payload["readiness"]
        self.table(f"Weighted Phase Score ({readiness['primary_metric']})", _phase_rows(readiness))
        robustness = robustness_rows(readiness)
        if robustness:
            self.table("Phase robustness", robustness)
        self.table("Efficiency", efficiency_rows(payload["compute"]))
        compute = payload["compute"]
        lines = {"execution": execution_line(compute), "stages": stages_line(compute)}
        self.footer({label: line for label, line in lines.items() if line})

    def footer(self, fields: dict[str, Any]) -> None:
        """Print closing key/value lines (samples, output folder) to stdout."""
        for key, value in fields.items():
            print(f"[{key}] {value}", file=self.out)

    def error(self, error: RPXError) -> None:
        """Print an RPX error's message and hint to stderr (no traceback)."""
        print(f"error: {error.message}", file=self.err)
        if error.hint:
            print(f"  hint: {error.hint}", file=self.err)


class RichUI(PlainUI):
    """Rich panels, tables and a live progress bar with ETA for interactive terminals."""

    def __init__(self):
        from rich.console import Console

        super().__init__()
        self.console = Console()
        self.err_console = Console(stderr=True)

    def banner(self, subtitle: str = "") -> None:
        from rich.panel import Panel

        self.err_console.print(
            Panel(BANNER.strip("\n") + (f"\n{subtitle}" if subtitle else ""), border_style="cyan", expand=False)
        )

    def header(self, title: str, fields: dict[str, Any]) -> None:
        from rich.panel import Panel
        from rich.table import Table

        grid = Table.grid(padding=(0, 2))
        for key, value in fields.items():
            grid.add_row(f"[bold]{key}[/]", str(value))
        self.console.print(Panel(grid, title=f"RPX — {title}", border_style="cyan", expand=False))

    @contextmanager
    def stage(self, label: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            with self.err_console.status(label):
                yield
        except BaseException:
            self.err_console.print(f"[red]✗[/] {label} failed")
            raise
        self.err_console.print(f"[green]✓[/] {label} ({time.perf_counter() - start:.1f}s)")

    @contextmanager
    def progress(self) -> Iterator[Any]:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.err_console,
            transient=False,
        )
        task_id = bar.add_task("starting", total=None)

        def update(done: int, total: int | None, stage: str) -> None:
            label = {"predict": "inference", "setup": "model setup"}.get(stage, stage)
            bar.update(task_id, completed=done, total=total, description=label)

        with bar:
            yield update

    def info(self, message: str) -> None:
        self.err_console.print(f"[blue]ℹ[/] {message}")

    def table(self, title: str, rows: list[tuple[str, str]]) -> None:
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for key, value in rows:
            table.add_row(key, value)
        self.console.print(table)

    def warning(self, message: str) -> None:
        self.err_console.print(f"[bold yellow]⚠[/] {message}", highlight=False)

    def grid(self, columns: Sequence[str], rows: list[list[str]], title: str | None = None) -> None:
        from rich.table import Table

        table = Table(*columns, title=title, title_justify="left")
        for cells in rows:
            table.add_row(*cells)
        self.console.print(table)

    def footer(self, fields: dict[str, Any]) -> None:
        for key, value in fields.items():
            self.console.print(f"[bold]{key}:[/] {value}")

    def error(self, error: RPXError) -> None:
        self.err_console.print(f"[bold red]error:[/] {error.message}", highlight=False)
        if error.hint:
            self.err_console.print(f"  [yellow]hint:[/] {error.hint}", highlight=False)


def make_ui(plain: bool = False) -> PlainUI:
    """Rich UI on an interactive terminal, plain text otherwise or when ``plain`` is set."""
    if plain or not sys.stdout.isatty():
        return PlainUI()
    return RichUI()
