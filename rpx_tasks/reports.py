"""Run reports: per-sample Parquet (assembled from the run's journal), cells Parquet, result.json and summary.md.

Every file is first written under a temporary name in the output folder and renamed into
place only when the whole run succeeded, so an interrupted or failed run never leaves a
half-written report and never damages the previous one.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from rpx_tasks.contracts.stage_timer import stages_line
from rpx_tasks.readiness.robustness_lines import robustness_rows

PER_SAMPLE_FILE = "per_sample_metrics.parquet"
CELLS_FILE = "cells.parquet"
RESULT_FILE = "result.json"
SUMMARY_FILE = "summary.md"
PHASE_SCORES_FILE = "phase_scores.png"
SHARD_STATE_FILE = "shard_state.json"  # a shard run's (``--shard``): what ``rpx merge`` needs besides the report


def _temp_path(final: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    return Path(name)


def _fsync_replace(temp: Path, final: Path) -> None:
    with open(temp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(temp, final)


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temp file + rename; returns ``path``. Raises OSError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_path(path)
    try:
        temp.write_bytes(data)
        _fsync_replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` (UTF-8) via a temp file + rename; returns ``path``. Raises OSError."""
    return write_bytes_atomic(path, text.encode("utf-8"))


# The files a run folder holds besides its checkpoint: the report, the run record and ``latest``.
RUN_FOLDER_FILES = (
    PER_SAMPLE_FILE,
    CELLS_FILE,
    RESULT_FILE,
    SUMMARY_FILE,
    PHASE_SCORES_FILE,
    SHARD_STATE_FILE,
    "run.json",
    ".run.json.running",
    "latest",
)


def remove_partial_files(folder: Path) -> list[Path]:
    """Delete the temporary files a killed writer left in ``folder`` (``.<report file>.*.tmp``); returns them.
    Call it only while holding the folder's lock. Raises nothing."""
    removed = []
    for entry in Path(folder).glob(".*.tmp"):
        if any(entry.name.startswith(f".{name}.") for name in RUN_FOLDER_FILES):
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def publish(staged: Path, final: Path) -> Path:
    """Move a fully written staged file into its final place (fsync + atomic rename)."""
    _fsync_replace(Path(staged), Path(final))
    return Path(final)


def per_sample_schema(metric_names: Iterable[str], *, clips: bool = False) -> pa.Schema:
    """Columns of ``per_sample_metrics.parquet``: metadata, every metric (float64), latency_ms; with
    ``clips`` (a clip task: one row per clip) also ``num_frames`` after ``frame_idx``."""
    fields = [
        pa.field("id", pa.string()),
        pa.field("scene", pa.string()),
        pa.field("phase", pa.string()),
        pa.field("difficulty", pa.string()),
        pa.field("frame_idx", pa.int64()),
    ]
    if clips:
        fields.append(pa.field("num_frames", pa.int64()))
    fields += [pa.field(name, pa.float64()) for name in metric_names]
    fields.append(pa.field("latency_ms", pa.float64()))
    return pa.schema(fields)


def write_cells(path: Path, cells: list[dict[str, Any]], metric_names: Iterable[str]) -> Path:
    """Write ``cells.parquet`` (scene, phase, num_samples, metric means) atomically."""
    names = list(metric_names)
    extra = sorted({key for cell in cells for key in cell} - {"scene", "phase", "num_samples", *names})
    schema = pa.schema(
        [pa.field("scene", pa.string()), pa.field("phase", pa.string()), pa.field("num_samples", pa.int64())]
        + [pa.field(name, pa.float64()) for name in names + extra]
    )
    table = pa.table({field.name: [cell.get(field.name) for cell in cells] for field in schema}, schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_path(path)
    try:
        pq.write_table(table, temp)
        _fsync_replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return _json_safe(value.item())
    return value


def write_result_json(path: Path, payload: dict[str, Any]) -> Path:
    """Write ``result.json`` (indent 2, non-finite floats as null) atomically."""
    return write_text_atomic(path, json.dumps(_json_safe(payload), indent=2, sort_keys=False) + "\n")


def format_value(value: Any, digits: int = 4) -> str:
    """A report cell: floats with ``digits`` decimals, None as an en dash."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_signed(value: float | None) -> str:
    """A delta with an explicit sign and 4 decimals, None as an en dash."""
    return "–" if value is None else f"{value:+.4f}"


def efficiency_rows(compute: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, formatted value) of every compute figure a run measured, in report order.

    A torch model whose FLOPs were not counted gets a FLOPs row saying why; a host peak that
    covers the whole process, not just this run, says so in its label. Raises nothing.
    """
    host_scope = "" if compute.get("peak_host_memory_scope", "run") == "run" else ", process lifetime"
    unit = "frame" if "frames" in compute else "sample"  # a clip task times its frames
    figures = [
        ("params (M)", compute.get("params_m"), 2),
        ("params trainable (M)", compute.get("params_trainable_m"), 2),
        ("params frozen (M)", compute.get("params_frozen_m"), 2),
        ("FLOPs (G)", compute.get("flops_g"), 2),
        (f"latency p50 (ms/{unit})", compute.get("latency_ms_p50"), 1),
        (f"latency p95 (ms/{unit})", compute.get("latency_ms_p95"), 1),
        (f"throughput ({unit}s/s)", compute.get("throughput_sps"), 1),
        (f"peak host memory (MB{host_scope})", compute.get("peak_host_memory_mb"), 1),
        ("peak GPU memory (MB)", compute.get("peak_gpu_memory_mb"), 1),
    ]
    rows = [(label, format_value(float(value), digits)) for label, value, digits in figures if value is not None]
    if compute.get("params_m") is not None and compute.get("flops_g") is None:
        reason = compute.get("flops_skipped_reason") or "not counted"
        after_params = sum(1 for label, _ in rows if label.startswith("params"))
        rows.insert(after_params, ("FLOPs (G)", f"– ({reason})"))
    return rows


def _vocabulary_lines(record: dict[str, Any] | None) -> list[str]:
    """The summary's vocabulary line (open-vocabulary tasks): its source, size and comparability."""
    if not record:
        return []
    if "size" in record:
        size = f"{record['size']} terms"
    else:
        size = f"{record.get('size_min')}–{record.get('size_max')} terms per sample"
    fallback = record.get("fallback")
    rest = f"; others: {fallback['source']} ({fallback['size']} terms)" if fallback else ""
    warning = "" if record.get("comparable", True) else " — **not comparable** with other runs"
    return [f"- Vocabulary: {record['source']} ({size}{rest}){warning}"]


def alignment_summary_line(record: dict[str, Any] | None) -> str | None:
    """The summary.md line of an ``alignment`` record (``AlignmentStats.record``), or None without one."""
    if not record:
        return None
    line = f"- Alignment: {record['mode']} ({record['source']})"
    if record["mode"] == "none":
        return line
    scale, shift = record["scale"], record["shift"]
    unit = "clips" if "clips_fitted" in record else "frames"
    line += f", {record[unit + '_fitted']} {unit} fitted, {record[unit + '_unfitted']} unfitted"
    if scale["mean"] is not None:
        line += (
            f"; scale mean {scale['mean']:.4g} [p5 {scale['p5']:.4g}, p95 {scale['p95']:.4g}],"
            f" shift mean {shift['mean']:.4g} [p5 {shift['p5']:.4g}, p95 {shift['p95']:.4g}]"
        )
    return line


def format_summary(payload: dict[str, Any]) -> str:
    """The Markdown summary of a result payload (as written to result.json); it embeds the run folder's
    ``phase_scores.png``."""
    lines = [f"# RPX benchmark — {payload['task']}", ""]
    lines += [
        f"- Model: `{payload['model']}`",
        f"- Split: `{payload['split']}`",
        f"- Data: `{payload.get('manifest') or payload.get('repo_id')}`"
        + (f" @ `{payload['revision']}`" if payload.get("revision") else ""),
        f"- Samples: {payload['num_samples']}",
        f"- Device: `{payload.get('environment', {}).get('device', '?')}`",
        *_vocabulary_lines(payload.get("vocabulary")),
        *filter(None, [alignment_summary_line(payload.get("alignment"))]),
        "",
        "## Aggregated metrics",
        "",
        "| metric | value | better | n | NaN | inf |",
        "|---|---:|:---:|---:|---:|---:|",
    ]
    for name, stats in payload["aggregated"].items():
        arrow = {True: "↑ higher", False: "↓ lower"}.get(stats.get("higher_is_better"), "")
        lines.append(
            f"| {name} | {format_value(stats['mean'])} | {arrow} | "
            f"{stats['count']} | {stats['nan_count']} | {stats['inf_count']} |"
        )
    readiness = payload.get("readiness") or {}
    wps = readiness.get("wps")
    if wps:
        primary = readiness.get("primary_metric")
        direction = "higher is better" if wps.get("direction") == "higher_is_better" else "lower is better"
        lines += [
            "",
            "## Weighted Phase Score",
            "",
            f"Primary metric `{primary}` ({direction}), ESD-weighted over difficulties.",
            "",
            "| phase | score |",
            "|---|---:|",
            f"| clutter | {format_value(wps.get('s_clutter'))} |",
            f"| interaction | {format_value(wps.get('s_interaction'))} |",
            f"| clean | {format_value(wps.get('s_clean'))} |",
            f"| **overall** | **{format_value(wps.get('s_overall'))}** |",
            f"| Δ interaction (S_I − S_C) | {format_signed(wps.get('delta_int'))} "
            f"{_effect(wps.get('interaction_effect'))} |",
            f"| Δ recovery (S_L − S_I) | {format_signed(wps.get('delta_rec'))} {_effect(wps.get('recovery_effect'))} |",
        ]
        str_block = readiness.get("str") or {}
        lines += [
            "",
            f"- STR C→I (interaction drop): {format_signed(str_block.get('str_c_to_i'))}",
            f"- STR I→L (recovery): {format_signed(str_block.get('str_i_to_l'))}",
        ]
        ts = readiness.get("ts") or {}
        if ts.get("pairs"):
            lines.append(f"- Temporal stability (TS): {format_value(ts.get('score'))} over {ts['pairs']} frame pairs")
    robustness = robustness_rows(readiness)
    if robustness:
        lines += ["", "## Phase robustness (Φ, J_min)", "", "| measure | value |", "|---|---|"]
        lines += [f"| {label} | {value} |" for label, value in robustness]
    lines += ["", "## Phase scores", "", f"![phase scores]({PHASE_SCORES_FILE})"]
    compute = payload.get("compute") or {}
    rows = efficiency_rows(compute)
    if rows:
        lines += ["", "## Efficiency", "", "| measure | value |", "|---|---:|"]
        lines += [f"| {label} | {value} |" for label, value in rows]
    labelled = (
        ("Execution", execution_line(compute)),
        ("Stages (share of the loop each held up)", stages_line(compute)),
    )
    extra = [f"- {label}: {line}" for label, line in labelled if line]
    if extra:
        lines += ["", *extra]
    return "\n".join(lines) + "\n"


def execution_line(compute: dict[str, Any]) -> str | None:
    """How an HF fast path ran (``compute.execution``): precision, compile, channels-last and data path, in
    one line; None for a model without that record."""
    execution = compute.get("execution")
    if not execution:
        return None
    return (
        f"precision {execution.get('precision')}, compile {'on' if execution.get('compile') else 'off'}, "
        f"channels-last {'on' if execution.get('channels_last') else 'off'}, data path {execution.get('data_path')}"
    )


def _effect(word: str | None) -> str:
    return f"({word})" if word else ""
