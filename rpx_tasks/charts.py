"""On-demand charts as PNG files (matplotlib, Agg: no display is ever opened), in the shared style of
``rpx_tasks.chart_style``. Files are written atomically (temp name + rename).

- ``write_comparison_chart``: ``rpx compare --plot``, the delta (B − A) of the primary metric per
  phase and difficulty with its 95% interval.
- ``write_runs_trend``: ``rpx runs --plot``, the primary metric (with its interval) and the
  overall WPS over the runs of one task/model/split.
- ``write_leaderboard_chart``: the matrix flow's ``leaderboard.png``.

The run report's ``phase_scores.png`` is drawn with Pillow instead (``rpx_tasks.phase_chart``): importing
matplotlib costs ~0.5 s, which every ``rpx bench`` would pay.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from rpx_tasks.chart_style import CHART_DPI, CHART_HEIGHT_PX, CHART_WIDTH_PX, GREYS, HATCHES, metric_label
from rpx_tasks.constants import PHASES, SPLITS
from rpx_tasks.readiness.phase_cells import ordered
from rpx_tasks.reports import write_bytes_atomic


def new_figure(rows: int = 1) -> tuple[Figure, list[Any]]:
    """Return a figure of the documented size and its ``rows`` stacked axes (no pyplot, no display)."""
    figure = Figure(figsize=(CHART_WIDTH_PX / CHART_DPI, CHART_HEIGHT_PX / CHART_DPI), dpi=CHART_DPI)
    FigureCanvasAgg(figure)
    axes = [figure.add_subplot(rows, 1, index + 1) for index in range(rows)]
    return figure, axes


def save_png(figure: Figure, path: Path | str) -> Path:
    """Write ``figure`` as a PNG of exactly the documented size to ``path`` atomically; returns the path.
    Raises OSError when it cannot be written."""
    figure.set_layout_engine("constrained")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=CHART_DPI)  # no bbox_inches="tight": the size stays fixed
    return write_bytes_atomic(Path(path), buffer.getvalue())


def grouped_bars(
    axes: Any,
    groups: list[str],
    series: list[str],
    values: dict[tuple[str, str], float],
    errors: dict[tuple[str, str], tuple[float, float]] | None = None,
) -> None:
    """Draw bars of ``values[(group, series)]`` grouped by ``groups``, one grey level and hatch per series, with
    asymmetric error bars from ``errors[(group, series)] = (low, high)`` when given; adds the legend."""
    width = 0.8 / max(len(series), 1)
    positions = np.arange(len(groups), dtype=float)
    for index, name in enumerate(series):
        heights = [values.get((group, name), np.nan) for group in groups]
        offsets = positions - 0.4 + width * (index + 0.5)
        yerr = None
        if errors is not None:
            lows = [heights[i] - errors.get((group, name), (np.nan, np.nan))[0] for i, group in enumerate(groups)]
            highs = [errors.get((group, name), (np.nan, np.nan))[1] - heights[i] for i, group in enumerate(groups)]
            yerr = np.nan_to_num(np.array([lows, highs], dtype=float))
        axes.bar(
            offsets,
            np.nan_to_num(np.array(heights, dtype=float)),
            width,
            label=name,
            color=GREYS[index % len(GREYS)],
            hatch=HATCHES[index % len(HATCHES)],
            edgecolor="black",
            yerr=yerr,
            capsize=4 if yerr is not None else 0,
        )
    axes.set_xticks(positions)
    axes.legend(title="difficulty", loc="best")


def write_comparison_chart(comparison: dict[str, Any], path: Path | str) -> Path:
    """Write the comparison chart of ``compare_runs``'s dict to ``path``: the primary metric's delta (B − A) per
    phase, one bar per difficulty, with its 95% interval. Returns the path. Raises OSError."""
    primary = comparison["primary"]
    cells = comparison["by_phase_difficulty"]
    values = {(cell["phase"], cell["difficulty"]): cell["delta"] for cell in cells if cell["delta"] is not None}
    errors = {
        (cell["phase"], cell["difficulty"]): tuple(cell["ci"])
        for cell in cells
        if cell["delta"] is not None and None not in cell["ci"]
    }
    phases = ordered([cell["phase"] for cell in cells], PHASES) or list(PHASES)
    levels = ordered([cell["difficulty"] for cell in cells], SPLITS)
    figure, (axes,) = new_figure()
    grouped_bars(axes, phases, levels, values, errors)
    verdicts = {(cell["phase"], cell["difficulty"]): cell["verdict"] for cell in cells}
    axes.set_xticklabels(
        [phase + "\n" + ", ".join(verdicts.get((phase, level), "–") for level in levels) for phase in phases]
    )
    axes.axhline(0.0, color="black", linewidth=1)
    runs = comparison["runs"]
    axes.set_xlabel("phase (verdict per difficulty); error bars: 95% scene-bootstrap interval")
    axes.set_ylabel(metric_label(primary["metric"], primary.get("higher_is_better"), prefix="Δ (B − A) "))
    axes.set_title(
        f"{comparison['task']}: {primary['metric']} {primary['verdict']}, B − A per phase and difficulty\n"
        f"A: {runs['a']['model']} ({runs['a']['id']})   B: {runs['b']['model']} ({runs['b']['id']})"
    )
    axes.grid(axis="y", color="0.85")
    return save_png(figure, path)


def write_runs_trend(points: list[dict[str, Any]], path: Path | str, *, title: str) -> Path:
    """Write the trend chart of ``rpx runs --plot`` to ``path``: per run (``points``, oldest first, each with
    ``id``, ``metric``, ``higher_is_better``, ``mean``, ``ci`` [low, high] or None, ``wps_overall``), the
    primary metric with its interval (top) and the overall WPS (bottom). Returns the path. Raises OSError."""
    figure, (top, bottom) = new_figure(rows=2)
    positions = np.arange(len(points))
    means = np.array([np.nan if p["mean"] is None else p["mean"] for p in points], dtype=float)
    cis = [p.get("ci") or [None, None] for p in points]
    lows = np.array([np.nan if low is None else low for low, _ in cis], dtype=float)
    highs = np.array([np.nan if high is None else high for _, high in cis], dtype=float)
    yerr = np.nan_to_num(np.vstack([means - lows, highs - means]))
    metric = points[0]["metric"] if points else "primary metric"
    higher = points[0].get("higher_is_better") if points else None
    top.errorbar(positions, means, yerr=yerr, color="black", marker="o", capsize=4, label=f"{metric} mean, 95% CI")
    wps = np.array([np.nan if p.get("wps_overall") is None else p["wps_overall"] for p in points], dtype=float)
    bottom.plot(positions, wps, color="0.4", marker="s", linestyle="--", label="WPS overall")
    top.set_ylabel(metric_label(metric, higher))
    bottom.set_ylabel(metric_label("WPS overall", higher).replace("[unitless]", f"[{metric}]"))
    for axes in (top, bottom):
        axes.set_xticks(positions)
        axes.grid(color="0.85")
        axes.legend(loc="best")
    top.set_xticklabels([])
    bottom.set_xticklabels([str(p["id"]) for p in points], rotation=20, fontsize=8)
    bottom.set_xlabel("run (oldest first)")
    top.set_title(title)
    return save_png(figure, path)


def write_leaderboard_chart(rows: list[dict[str, Any]], path: Path | str, *, title: str) -> Path:
    """Write ``leaderboard.png``: one horizontal bar per model (``rows`` from ``leaderboard_rows``, best first)
    of its overall WPS, with the primary metric's mean and interval in its label. Returns the path. Raises
    OSError."""
    figure, (axes,) = new_figure()
    names = [f"{row['rank']}. {row['model']}" for row in rows]
    wps = [row["wps_overall"] if row["wps_overall"] is not None else 0.0 for row in rows]
    positions = np.arange(len(rows))[::-1]
    bars = axes.barh(positions, wps, color=[GREYS[i % len(GREYS)] for i in range(len(rows))], edgecolor="black")
    for position, bar_value, row in zip(positions, wps, rows):
        interval = f" [{row['ci_low']:.4f}, {row['ci_high']:.4f}]" if row.get("ci_low") is not None else ""
        mean = f"{row['primary_mean']:.4f}" if row.get("primary_mean") is not None else "–"
        axes.text(bar_value, position, f"  {row['primary_metric']} {mean}{interval}", va="center", fontsize=9)
    axes.set_yticks(positions)
    axes.set_yticklabels(names)
    higher = rows[0]["higher_is_better"] if rows else None
    metric = rows[0]["primary_metric"] if rows else "primary metric"
    axes.set_xlabel(metric_label("WPS overall", higher).replace("[unitless]", f"[{metric}]"))
    if rows:
        axes.legend([bars[0]], ["bar: WPS overall; text: primary metric mean [95% CI]"], loc="lower right")
    axes.set_xlim(min([0.0, *wps]) * 1.6, max([0.0, *wps, 1e-9]) * 1.6)  # room for the text labels
    axes.set_title(title)
    axes.grid(axis="x", color="0.85")
    return save_png(figure, path)
