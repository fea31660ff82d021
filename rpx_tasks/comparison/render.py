"""Text forms of a comparison dict: table rows (for the terminal UI) and Markdown."""

from __future__ import annotations

from typing import Any

from rpx_tasks.reports import format_signed, format_value

METRIC_COLUMNS = ("metric", "better", "n", "A", "B", "Δ (B−A)", "95% CI", "verdict")
GROUP_COLUMNS = ("group", "n", "A", "B", "Δ (B−A)", "95% CI", "verdict")
SCALAR_COLUMNS = ("measure", "better", "A", "B", "Δ (B−A)")


def direction_arrow(higher_is_better: bool | None) -> str:
    """Return ↑ (higher is better), ↓ (lower is better) or an empty string."""
    return {True: "↑", False: "↓"}.get(higher_is_better, "")


def format_ci(ci: list[float | None]) -> str:
    """Return ``[lo, hi]`` with signed 4-decimal bounds, or an en dash when there is no interval."""
    low, high = ci
    return "–" if low is None or high is None else f"[{format_signed(low)}, {format_signed(high)}]"


def delta_cells(entry: dict[str, Any]) -> list[str]:
    """Return the cells every compared metric shows: n, mean of A, mean of B, delta, interval, verdict."""
    return [
        str(entry["n"]),
        format_value(entry["a"]),
        format_value(entry["b"]),
        format_signed(entry["delta"]),
        format_ci(entry["ci"]),
        entry["verdict"],
    ]


def metric_rows(entries: list[dict[str, Any]]) -> list[list[str]]:
    """Return one row of ``METRIC_COLUMNS`` cells per metric entry."""
    return [[entry["metric"], direction_arrow(entry["higher_is_better"]), *delta_cells(entry)] for entry in entries]


def primary_group_rows(comparison: dict[str, Any]) -> list[list[str]]:
    """Return ``GROUP_COLUMNS`` rows of the primary metric: overall, per phase, per difficulty, per phase x
    difficulty."""
    name = comparison["primary"]["metric"]

    def row(label: str, entry: dict[str, Any] | None) -> list[str] | None:
        return None if entry is None else [label, *delta_cells(entry)]

    def pick(group: dict[str, Any]) -> dict[str, Any] | None:
        return next((entry for entry in group["metrics"] if entry["metric"] == name), None)

    rows = [row("overall", comparison["primary"] if "n" in comparison["primary"] else None)]
    rows += [row(f"phase {group['phase']}", pick(group)) for group in comparison["by_phase"]]
    rows += [row(f"difficulty {group['difficulty']}", pick(group)) for group in comparison["by_difficulty"]]
    rows += [row(f"{cell['phase']} / {cell['difficulty']}", cell) for cell in comparison["by_phase_difficulty"]]
    return [cells for cells in rows if cells is not None]


def scalar_rows(entries: list[dict[str, Any]]) -> list[list[str]]:
    """Return one row of ``SCALAR_COLUMNS`` cells per readiness or compute delta."""
    return [
        [
            entry["name"],
            direction_arrow(entry["higher_is_better"]),
            format_value(entry["a"]),
            format_value(entry["b"]),
            format_signed(entry["delta"]),
        ]
        for entry in entries
    ]


def run_line(label: str, run: dict[str, Any]) -> str:
    """Return a one-line description of a run summary: label, model, split, id, device class, data revision."""
    return (
        f"{label}: `{run['model']}` on `{run['split']}` — run `{run['id']}` ({run['device_class']}, "
        f"data {run['data_revision']}) in `{run['folder']}`"
    )


def headline(comparison: dict[str, Any]) -> str:
    """Return the one-sentence outcome for the primary metric, e.g. ``absrel regressed: +0.0123 [...]``."""
    primary = comparison["primary"]
    return (
        f"{primary['metric']} {primary['verdict']}: Δ {format_signed(primary['delta'])} "
        f"95% CI {format_ci(primary['ci'])} (B − A)"
    )


def _markdown_table(columns: tuple[str, ...], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]


def comparison_markdown(comparison: dict[str, Any]) -> str:
    """Return the Markdown report of a comparison dict (``compare_runs``): runs, pairing, warnings, the primary
    metric per group, every metric, readiness and compute deltas."""
    pairing, boot = comparison["pairing"], comparison["bootstrap"]
    lines = [
        f"# RPX comparison — {comparison['task']}",
        "",
        f"- {run_line('A', comparison['runs']['a'])}",
        f"- {run_line('B', comparison['runs']['b'])}",
        f"- Paired samples: {pairing['paired']} in {pairing['scenes']} scenes (only in A: {pairing['only_in_a']}, "
        f"only in B: {pairing['only_in_b']})",
        f"- Bootstrap: {boot['resamples']} scene resamples, seed {boot['seed']}, "
        f"{int(boot['confidence'] * 100)}% percentile interval",
        "",
        f"**{headline(comparison)}**",
        "",
    ]
    if comparison["warnings"]:
        lines += ["## Warnings", ""] + [f"- ⚠ {warning['message']}" for warning in comparison["warnings"]] + [""]
    lines += [f"## Primary metric `{comparison['primary']['metric']}` by group", ""]
    lines += _markdown_table(GROUP_COLUMNS, primary_group_rows(comparison)) + [""]
    lines += ["## All metrics", ""] + _markdown_table(METRIC_COLUMNS, metric_rows(comparison["metrics"])) + [""]
    if comparison["readiness"]:
        lines += ["## Readiness (WPS, STR, TS)", ""]
        lines += _markdown_table(SCALAR_COLUMNS, scalar_rows(comparison["readiness"])) + [""]
    if comparison["compute"]:
        lines += ["## Compute", ""] + _markdown_table(SCALAR_COLUMNS, scalar_rows(comparison["compute"])) + [""]
    return "\n".join(lines)
