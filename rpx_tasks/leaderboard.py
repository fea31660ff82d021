"""The leaderboard of a matrix of runs: ``leaderboard.parquet``, ``leaderboard.md`` and ``leaderboard.png``.

Models are ranked by their overall Weighted Phase Score (result.json ``readiness.wps.s_overall``) in the
primary metric's direction (best first; a model without a WPS comes last). The primary metric's 95%
interval is a scene-cluster bootstrap (``rpx_tasks.comparison.bootstrap``, 2,000 resamples, seed 0) of
the run's per-sample rows, read from its run folder: the payload's ``folder`` key (the matrix flow
adds it; ``output_dir`` or ``run.folder`` are read too). Without a readable folder the interval is null.
Φ and J_min come from result.json's ``readiness.phi.phi`` and ``readiness.jedi.j_min`` (null where absent).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rpx_tasks.charts import write_leaderboard_chart
from rpx_tasks.comparison.bootstrap import scene_bootstrap
from rpx_tasks.comparison.loading import read_per_sample
from rpx_tasks.errors import ConfigError
from rpx_tasks.reports import format_value, write_bytes_atomic, write_text_atomic

LEADERBOARD_PARQUET = "leaderboard.parquet"
LEADERBOARD_MARKDOWN = "leaderboard.md"
LEADERBOARD_CHART = "leaderboard.png"

LEADERBOARD_SCHEMA = pa.schema(
    [
        ("rank", pa.int64()),
        ("model", pa.string()),
        ("task", pa.string()),
        ("split", pa.string()),
        ("primary_metric", pa.string()),
        ("higher_is_better", pa.bool_()),
        ("primary_mean", pa.float64()),
        ("ci_low", pa.float64()),
        ("ci_high", pa.float64()),
        ("wps_overall", pa.float64()),
        ("ts", pa.float64()),
        ("phi", pa.float64()),
        ("j_min", pa.float64()),
        ("latency_ms_p50", pa.float64()),
        ("throughput_sps", pa.float64()),
        ("run_id", pa.string()),
        ("folder", pa.string()),
    ]
)


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def payload_folder(payload: dict[str, Any]) -> Path | None:
    """Return the run folder a result payload names (``folder``, ``output_dir`` or ``run.folder``), or None."""
    folder = payload.get("folder") or payload.get("output_dir") or (payload.get("run") or {}).get("folder")
    return Path(folder) if folder else None


def primary_interval(folder: Path | None, metric: str, *, resamples: int = 2000, seed: int = 0) -> tuple:
    """Return (mean, low, high) of ``metric`` over the per-sample rows in ``folder`` with its scene-cluster bootstrap
    95% interval, or (None, None, None) when there is no folder, no readable rows or no valid value."""
    if folder is None:
        return None, None, None
    try:
        columns = read_per_sample(folder, [metric])
    except ConfigError:
        return None, None, None
    if metric not in columns or not np.isfinite(columns[metric]).any():
        return None, None, None
    result = scene_bootstrap(columns[metric], columns["scene"], resamples=resamples, seed=seed)
    return _float(result.estimate[0]), _float(result.low[0]), _float(result.high[0])


def _row(payload: dict[str, Any]) -> dict[str, Any]:
    metric = payload.get("primary_metric")
    stats = (payload.get("aggregated") or {}).get(metric) or {}
    readiness, compute = payload.get("readiness") or {}, payload.get("compute") or {}
    folder = payload_folder(payload)
    mean, low, high = primary_interval(folder, metric)
    return {
        "model": payload.get("model"),
        "task": payload.get("task"),
        "split": payload.get("split"),
        "primary_metric": metric,
        "higher_is_better": stats.get("higher_is_better"),
        "primary_mean": mean if mean is not None else _float(stats.get("mean")),
        "ci_low": low,
        "ci_high": high,
        "wps_overall": _float((readiness.get("wps") or {}).get("s_overall")),
        "ts": _float((readiness.get("ts") or {}).get("score")),
        "phi": _float((readiness.get("phi") or {}).get("phi")),
        "j_min": _float((readiness.get("jedi") or {}).get("j_min")),
        "latency_ms_p50": _float(compute.get("latency_ms_p50")),
        "throughput_sps": _float(compute.get("throughput_sps")),
        "run_id": (payload.get("run") or {}).get("id"),
        "folder": str(folder) if folder else None,
    }


def leaderboard_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return one row per result payload (the columns of ``LEADERBOARD_SCHEMA``), ranked best first by overall WPS in
    the primary metric's direction (ties and missing WPS keep the given order, missing last); ``rank`` from 1."""
    rows = [_row(payload) for payload in results]

    def key(item: tuple[int, dict[str, Any]]) -> tuple[int, float, int]:
        index, row = item
        wps = row["wps_overall"]
        if wps is None:
            return (1, 0.0, index)
        return (0, -wps if row["higher_is_better"] is not False else wps, index)

    ranked = [row for _, row in sorted(enumerate(rows), key=key)]
    return [{"rank": rank, **row} for rank, row in enumerate(ranked, start=1)]


def leaderboard_markdown(rows: list[dict[str, Any]], *, title: str) -> str:
    """Return the Markdown table of leaderboard ``rows`` under ``title``."""
    metric = rows[0]["primary_metric"] if rows else "primary metric"
    direction = {True: "higher is better", False: "lower is better"}.get(rows[0]["higher_is_better"] if rows else None)
    lines = [
        f"# {title}",
        "",
        f"Ranked by overall WPS of `{metric}`" + (f" ({direction})" if direction else "") + "; 95% CI: scene-cluster "
        "bootstrap of the run's per-sample rows.",
        "",
        f"| rank | model | {metric} | 95% CI | WPS overall | TS | Φ | J_min | latency p50 (ms) "
        "| throughput (samples/s) |",
        "|---:|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        interval = (
            f"[{format_value(row['ci_low'])}, {format_value(row['ci_high'])}]" if row["ci_low"] is not None else "–"
        )
        cells = [
            str(row["rank"]),
            f"`{row['model']}`",
            format_value(row["primary_mean"]),
            interval,
            format_value(row["wps_overall"]),
            format_value(row["ts"]),
            format_value(row["phi"]),
            format_value(row["j_min"]),
            format_value(row["latency_ms_p50"], 2),
            format_value(row["throughput_sps"], 1),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_leaderboard(results: list[dict[str, Any]], folder: Path, *, title: str) -> dict[str, Path]:
    """Write ``leaderboard.parquet``, ``leaderboard.md`` and ``leaderboard.png`` of the result payloads ``results``
    into ``folder`` (created if needed; each file atomically). Returns ``{"parquet", "markdown", "chart"}`` paths.
    Raises OSError when a file cannot be written."""
    folder = Path(folder)
    rows = leaderboard_rows(results)
    table = pa.Table.from_pylist(
        [{name: row[name] for name in LEADERBOARD_SCHEMA.names} for row in rows], LEADERBOARD_SCHEMA
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return {
        "parquet": write_bytes_atomic(folder / LEADERBOARD_PARQUET, buffer.getvalue()),
        "markdown": write_text_atomic(folder / LEADERBOARD_MARKDOWN, leaderboard_markdown(rows, title=title)),
        "chart": write_leaderboard_chart(rows, folder / LEADERBOARD_CHART, title=title),
    }
