"""``rpx merge``: the shard runs of one split (``--shard i/K``) merged into the report of the unsharded run.

The merged report equals the unsharded run's (timings excepted), bit for bit:

- the per-sample rows are put back into the split's order clip by clip (each shard's ``shard_state.json``
  names its clips and their place among the split's clips; clips are whole, so TS pairs never cross a
  shard), and ``per_sample_metrics.parquet`` is those rows;
- the aggregated statistics, the cells, WPS and STR are recomputed by folding the rows in that order, as a
  run folds them (``runner_stages.RowRecorder``), and Φ / J_min from the same rows;
- TS and SGC add the shards' sums, which the accumulators keep exactly (``aggregation.ExactSum``), so the
  sum made in parts equals the sum made in one go; the alignment statistics pool the shards' fits.

Compute figures pool the shards' timed samples (latency percentiles, throughput) and take the largest
peak memory. The merged run gets a run record like any run (``run.json`` with the unsharded run's
fingerprint and ``merged_from``), so ``rpx runs`` and ``rpx compare`` treat it as one.

The inputs are checked before anything is written (``MergeError``: not a complete shard run, another
task / model / configuration / data, shards of another count, a shard given twice, a shard missing unless
``allow_partial``); the report is written into a staging folder and moved into place, result.json and the
run record last, so a failed merge leaves a previous report in the output folder as it was.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rpx_tasks.alignment_record import AlignmentStats
from rpx_tasks.config import results_path_for
from rpx_tasks.errors import MergeError
from rpx_tasks.readiness import coherence_accumulator, phase_robustness, temporal_accumulator
from rpx_tasks.reports import (
    CELLS_FILE,
    PER_SAMPLE_FILE,
    PHASE_SCORES_FILE,
    RESULT_FILE,
    SHARD_STATE_FILE,
    SUMMARY_FILE,
    format_summary,
    write_cells,
    write_result_json,
    write_text_atomic,
)
from rpx_tasks.run_identity import new_run_id, utc_now
from rpx_tasks.run_lock import RunLock
from rpx_tasks.run_record import (
    RUN_FILE,
    STAGED_RUN_FILE,
    RunRecord,
    latest_run,
    publish_record,
    read_json_object,
)
from rpx_tasks.runner import aggregated_stats, readiness_scores
from rpx_tasks.runner_stages import RowRecorder
from rpx_tasks.sharding import SHARD_STATE_VERSION, parse_shard
from rpx_tasks.tasks import get_task

__all__ = ["MergedRun", "ShardRun", "merge_runs", "read_shard_run"]

# What every shard of one split must share (result.json / shard_state.json), and how the error names it.
_SHARED = (("task", "task"), ("model", "model"), ("split", "split"), ("base_fingerprint", "configuration or data"))


@dataclass(frozen=True)
class ShardRun:
    """A complete shard run read from its folder: its run record, result.json and shard_state.json."""

    folder: Path
    record: dict[str, Any]
    result: dict[str, Any]
    state: dict[str, Any]

    @property
    def shard(self) -> str:
        return self.state["shard"]

    @property
    def index(self) -> int:
        return parse_shard(self.shard).index

    @property
    def count(self) -> int:
        return parse_shard(self.shard).count

    def value(self, key: str) -> Any:
        return self.state[key] if key == "base_fingerprint" else self.result.get(key)


@dataclass(frozen=True)
class MergedRun:
    """The merged report: its folder, result.json payload and the paths of its files."""

    folder: Path
    payload: dict[str, Any]
    result_json: Path
    summary_md: Path
    per_sample: Path
    cells: Path
    phase_scores: Path


def _merge_error(message: str, hint: str, reason: str, **details: Any) -> MergeError:
    return MergeError(message, hint=hint, details={"reason": reason, **details})


def read_shard_run(folder: Path) -> ShardRun:
    """Read the shard run in ``folder`` (a run folder, or a results folder such as the default
    ``.../<split>/shard-<i>of<K>/``, whose ``latest`` run is read). Raises MergeError when it is not a run
    folder, the run is not complete (killed, failed, still running) or is not a shard run."""
    folder = Path(folder)
    if not (folder / RUN_FILE).exists() and latest_run(folder) is not None:
        folder = latest_run(folder)
    record = read_json_object(folder / RUN_FILE)
    if record is None:
        raise _merge_error(
            f"{folder} holds no run (no readable {RUN_FILE}).",
            "pass the run folders of the shard runs (`rpx runs` lists them)",
            "not_a_run",
            folder=str(folder),
        )
    result = read_json_object(folder / RESULT_FILE)
    staged = read_json_object(folder / STAGED_RUN_FILE)
    complete = record.get("status") == "complete" and result and (result.get("run") or {}).get("id") == record["id"]
    if not complete or staged is not None:
        raise _merge_error(
            f"Run {record.get('id')} in {folder} is not complete (status {record.get('status')!r}, "
            f"{record.get('samples_done', 0)} of {record.get('samples_total', '?')} samples done).",
            "finish it first: the same `rpx bench ... --shard` command resumes it",
            "incomplete",
            folder=str(folder),
            run_id=record.get("id"),
        )
    state = read_json_object(folder / SHARD_STATE_FILE)
    if not record.get("shard") or state is None or state.get("version") != SHARD_STATE_VERSION:
        raise _merge_error(
            f"Run {record.get('id')} in {folder} is not a shard run (no shard in {RUN_FILE}, or no "
            f"{SHARD_STATE_FILE} of version {SHARD_STATE_VERSION}).",
            "merge the runs of `rpx bench ... --shard i/K`, one per shard",
            "not_a_shard",
            folder=str(folder),
            run_id=record.get("id"),
        )
    return ShardRun(folder, record, result, state)


def _check_together(runs: list[ShardRun], allow_partial: bool) -> list[str]:
    """Check that ``runs`` (sorted by shard) are shards of one run; returns the missing shards (``"i/K"``).

    Raises MergeError for runs of another task, model, configuration or data, another shard count, a
    shard given twice or clips held twice, and for missing shards unless ``allow_partial``."""
    first = runs[0]
    for run in runs[1:]:
        for key, what in (*_SHARED, ("count", "shard count")):
            mine, theirs = (getattr(r, key) if key == "count" else r.value(key) for r in (first, run))
            if mine != theirs:
                raise _merge_error(
                    f"Runs {first.record['id']} ({first.folder}) and {run.record['id']} ({run.folder}) differ in "
                    f"{what}: {mine!r} vs {theirs!r}.",
                    "merge only the shards of one command (same task, model, options and data; --shard i/K with one K)",
                    "mismatch",
                    field=key,
                    runs=[str(first.folder), str(run.folder)],
                )
    seen: dict[int, ShardRun] = {}
    clips: dict[int, ShardRun] = {}
    for run in runs:
        if run.index in seen:
            raise _merge_error(
                f"Shard {run.shard} is given twice: {seen[run.index].folder} and {run.folder}.",
                "pass each shard's run once",
                "overlap",
                shard=run.shard,
                runs=[str(seen[run.index].folder), str(run.folder)],
            )
        seen[run.index] = run
        for clip in run.state["clip_list"]:
            if clip["index"] in clips:
                raise _merge_error(
                    f"Clip {clip['scene']}/{clip['phase']} is in two shard runs: {clips[clip['index']].folder} and "
                    f"{run.folder}.",
                    "the shard runs were made from different splits: rerun the shards of one split",
                    "overlap",
                    clip=clip,
                )
            clips[clip["index"]] = run
    missing = [f"{index}/{first.count}" for index in range(1, first.count + 1) if index not in seen]
    if missing and not allow_partial:
        raise _merge_error(
            f"Shard(s) {', '.join(missing)} of {first.count} missing: got {', '.join(run.shard for run in runs)}.",
            f"run `rpx bench ... --shard {missing[0]}` and merge again, or pass --allow-partial for a report of "
            "the shards given (not equal to the unsharded run)",
            "missing",
            missing=missing,
        )
    if not missing and len(clips) != first.state["clips_total"]:
        raise _merge_error(
            f"The shards hold {len(clips)} of the split's {first.state['clips_total']} clips.",
            "the shard runs were made from different splits: rerun the shards of one split",
            "missing",
        )
    return missing


def _ordered_rows(runs: list[ShardRun], run_id: str) -> pa.Table:
    """Return the shards' per-sample rows in the split's order, clip by clip (file metadata: ``run_id``).

    Raises MergeError when a shard's per-sample file does not hold its clips' samples (a clip task: one row
    per clip)."""
    one_row_per_clip = get_task(runs[0].result["task"]).clip is not None

    def rows_of(clip: dict[str, Any]) -> int:
        return 1 if one_row_per_clip else int(clip["samples"])

    pieces: list[tuple[int, pa.Table]] = []
    for run in runs:
        table = pq.read_table(run.folder / PER_SAMPLE_FILE)
        expected = sum(rows_of(clip) for clip in run.state["clip_list"])
        if table.num_rows != expected:
            raise _merge_error(
                f"{run.folder / PER_SAMPLE_FILE} holds {table.num_rows} rows, its shard {expected}.",
                "the run folder was changed after the run: rerun that shard",
                "corrupt",
                folder=str(run.folder),
            )
        offset = 0
        for clip in run.state["clip_list"]:
            pieces.append((clip["index"], table.slice(offset, rows_of(clip))))
            offset += rows_of(clip)
    schema = pieces[0][1].schema.with_metadata({"rpx_run_id": run_id})
    return pa.concat_tables([piece.cast(schema) for _, piece in sorted(pieces, key=lambda item: item[0])])


class _NoRows:
    """The row sink of a merge: the rows are already written (``RowRecorder.replay`` folds, never writes)."""

    def write(self, row: dict[str, Any]) -> None:
        """Discard ``row``."""


def _scores(runs: list[ShardRun], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Return aggregated, cells and readiness (Φ and J_min included) of the merged rows and the shards'
    TS / SGC sums, as ``runner.run_benchmark`` and ``bench.write_report`` compute them."""
    spec = get_task(runs[0].result["task"])
    recorder = RowRecorder(spec, _NoRows(), lambda done, total, stage: None, len(rows))
    recorder.replay(rows)
    states = [run.state["state"] for run in runs]
    temporal = temporal_accumulator(spec) if states[0].get("temporal") is not None else None
    coherence = coherence_accumulator(spec) if states[0].get("coherence") is not None else None
    for state in states:
        if temporal is not None:
            temporal.add_totals(state["temporal"])
        if coherence is not None:
            coherence.add_totals(state["coherence"])
    readiness = readiness_scores(recorder, spec, temporal, coherence)
    readiness.update(phase_robustness(rows, spec.phi_metrics))
    return {"aggregated": aggregated_stats(recorder, spec), "cells": recorder.cells.rows(), "readiness": readiness}


def _alignment(runs: list[ShardRun]) -> dict[str, Any] | None:
    """Return result.json's ``alignment`` of the merged run (the shards' fits pooled), or None for a task
    without one."""
    block = runs[0].result.get("alignment")
    fitted = [run.state["state"].get("alignment") for run in runs]
    if block is None or any(state is None for state in fitted):
        return block
    stats = AlignmentStats(block["mode"], "clips" if "clips_fitted" in block else "frames")
    stats.load_state_dict(
        {
            "unfitted": sum(int(state["unfitted"]) for state in fitted),
            "scales": np.concatenate([np.asarray(state["scales"], dtype=np.float64) for state in fitted]),
            "shifts": np.concatenate([np.asarray(state["shifts"], dtype=np.float64) for state in fitted]),
        }
    )
    return stats.record(block["source"])


def _largest(values: list[Any]) -> float | None:
    present = [float(value) for value in values if value is not None]
    return max(present) if present else None


def _compute(runs: list[ShardRun]) -> tuple[dict[str, Any], list[str]]:
    """Return the merged compute block (model figures of the first shard; latency and throughput over the
    shards' timed samples pooled; the largest peak memory) and its notes."""
    blocks = [run.result.get("compute") or {} for run in runs]
    timings = [run.state["state"].get("timing") or {} for run in runs]
    warmup = [float(value) for timing in timings for value in timing.get("warmup_seconds", [])]
    timed = [float(value) for timing in timings for value in timing.get("steady_seconds", [])]
    notes = []
    if not timed:
        timed = warmup
        notes.append("only one batch per shard: latency includes the warm-up batches")
    latency_ms = np.asarray(timed, dtype=np.float64) * 1000.0
    scopes = {block.get("peak_host_memory_scope") for block in blocks} - {None}
    compute = {
        **blocks[0],
        "latency_ms_p50": float(np.percentile(latency_ms, 50)) if timed else None,
        "latency_ms_p95": float(np.percentile(latency_ms, 95)) if timed else None,
        "throughput_sps": len(timed) / math.fsum(timed) if timed and math.fsum(timed) > 0 else None,
        "peak_host_memory_mb": _largest([block.get("peak_host_memory_mb") for block in blocks]),
        "peak_gpu_memory_mb": _largest([block.get("peak_gpu_memory_mb") for block in blocks]),
        "warmup_samples": len(warmup),
        "timed_samples": len(timed),
    }
    if "frames" in compute:  # a clip task
        compute["frames"] = sum(int(block.get("frames") or 0) for block in blocks)
    if "peak_host_memory_scope" in compute:
        compute["peak_host_memory_scope"] = "run" if scopes <= {"run"} else sorted(scopes - {"run"})[0]
    return compute, notes


def _notes(runs: list[ShardRun], missing: list[str]) -> list[str]:
    """The merged run's notes: what was merged, then each shard's notes (once when every shard has it)."""
    ids = ", ".join(f"{run.shard} {run.record['id']}" for run in runs)
    notes = [
        f"merged from {len(runs)} shard runs ({ids}): latency and throughput pool the shards' timed samples "
        "(each shard's first batch is its warm-up); peak memory is the largest shard's"
    ]
    if missing:
        notes.append(f"partial merge: shard(s) {', '.join(missing)} missing; not equal to the unsharded run")
    devices = sorted({str(run.record.get("device")) for run in runs})
    if len(devices) > 1:
        notes.append(f"the shards ran on different devices: {', '.join(devices)}")
    seen: list[str] = []
    for run in runs:
        for note in run.result.get("notes") or []:
            if all(note in (other.result.get("notes") or []) for other in runs):
                text = note
            else:
                text = f"shard {run.shard}: {note}"
            if text not in seen:
                seen.append(text)
    return notes + seen


def _payload(runs: list[ShardRun], scores: dict[str, Any], record: RunRecord, missing: list[str]) -> dict[str, Any]:
    """Return the merged result.json, keys in the order of a run's (``bench.result_payload``)."""
    first = runs[0].result
    compute, compute_notes = _compute(runs)
    alignment = _alignment(runs)
    payload: dict[str, Any] = {key: first.get(key) for key in ("task", "model", "split", "repo_id", "revision")}
    payload["manifest"] = first.get("manifest")
    payload["num_samples"] = sum(int(run.result["num_samples"]) for run in runs)
    if "num_frames" in first:  # a clip task
        payload["num_frames"] = sum(int(run.result["num_frames"]) for run in runs)
        payload["frames"] = first.get("frames")
    if missing:
        payload["partial_merge"] = {"shards": [run.shard for run in runs], "missing": missing}
    if "vocabulary" in first:
        payload["vocabulary"] = first["vocabulary"]
    if alignment is not None:
        payload["alignment"] = alignment
    payload.update(
        {
            "primary_metric": scores["readiness"]["primary_metric"],
            "aggregated": scores["aggregated"],
            "readiness": scores["readiness"],
            "compute": compute,
            "environment": first.get("environment"),
            "notes": _notes(runs, missing) + compute_notes,
            "run": record.as_dict(),
        }
    )
    return payload


def _output_folder(runs: list[ShardRun], output_dir: Path | None, run_id: str) -> tuple[Path, Path | None]:
    """Return (the merged run's folder, the results folder whose ``latest`` it becomes, or None).

    Without ``output_dir``: a new folder ``rpx_results/<model>/<split>/<run id>/``, as an unsharded run's.
    Raises MergeError when ``output_dir`` is one of the shard runs' folders or a file."""
    if output_dir is None:
        results = results_path_for(runs[0].result["model"], runs[0].result["split"])
        return results / run_id, results
    folder = Path(output_dir)
    if folder.exists() and not folder.is_dir():
        raise _merge_error(f"--output-dir is a file: {folder}", "pass a folder with --output-dir", "output")
    if any(folder.resolve() == run.folder.resolve() for run in runs):
        raise _merge_error(
            f"--output-dir {folder} is one of the shard runs' folders.",
            "write the merged report into its own folder",
            "output",
        )
    return folder, None


def _record(runs: list[ShardRun], folder: Path, run_id: str, results: Path | None, missing: list[str]) -> RunRecord:
    """Return the merged run's record (complete): the unsharded run's fingerprint (a partial merge gets one
    of its own), the first shard's device and data, ``merged_from`` naming the shard runs."""
    first = runs[0]
    fingerprint = first.state["base_fingerprint"]
    if missing:
        fingerprint = hashlib.sha256(f"{fingerprint}|partial|{','.join(r.shard for r in runs)}".encode()).hexdigest()
    now = utc_now()
    total = sum(int(run.result["num_samples"]) for run in runs)
    return RunRecord(
        id=run_id,
        fingerprint=fingerprint,
        folder=folder,
        started=now,
        task=first.result["task"],
        model=first.result["model"],
        split=first.result["split"],
        device=first.record.get("device"),
        data=first.record.get("data") or {},
        status="complete",
        finished=now,
        samples_done=total,
        samples_total=first.state["samples_total"] if not missing else total,
        merged_from=[
            {
                "id": run.record["id"],
                "shard": run.shard,
                "folder": str(run.folder.resolve()),
                "device": run.record.get("device"),
            }
            for run in runs
        ],
        results_dir=results,
    )


_STAGING_PREFIX = ".rpx-merge-"


def _write(
    folder: Path, rows: pa.Table, scores: dict[str, Any], payload: dict[str, Any], record: RunRecord
) -> MergedRun:
    """Write the report into a staging folder inside ``folder`` (removing the staging folders a killed merge
    left there), then move each file into place (result.json and the run record last); returns the
    MergedRun. Raises OSError (the staging folder is removed; files already moved stay, result.json and the
    record of a previous report are untouched until the end)."""
    from rpx_tasks.phase_chart import write_phase_scores

    # The caller holds the folder's run lock: a staging folder already there is a killed merge's.
    for stale in folder.glob(f"{_STAGING_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=folder))
    try:
        pq.write_table(rows, staging / PER_SAMPLE_FILE)
        write_cells(staging / CELLS_FILE, scores["cells"], get_task(payload["task"]).metric_names)
        write_phase_scores(staging, payload, staging / PHASE_SCORES_FILE)
        write_text_atomic(staging / SUMMARY_FILE, format_summary(payload))
        write_result_json(staging / RESULT_FILE, payload)
        for name in (PER_SAMPLE_FILE, CELLS_FILE, PHASE_SCORES_FILE, SUMMARY_FILE):
            os.replace(staging / name, folder / name)
        (folder / SHARD_STATE_FILE).unlink(missing_ok=True)  # a previous shard run's: not of this report
        os.replace(staging / RESULT_FILE, folder / RESULT_FILE)
        publish_record(record)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return MergedRun(
        folder=folder,
        payload=payload,
        result_json=folder / RESULT_FILE,
        summary_md=folder / SUMMARY_FILE,
        per_sample=folder / PER_SAMPLE_FILE,
        cells=folder / CELLS_FILE,
        phase_scores=folder / PHASE_SCORES_FILE,
    )


def merge_runs(
    folders: Sequence[Path | str],
    output_dir: Path | str | None = None,
    *,
    allow_partial: bool = False,
    orchestration: dict[str, Any] | None = None,
) -> MergedRun:
    """Merge the shard runs in ``folders`` into one report in ``output_dir`` (default: a new run folder
    ``rpx_results/<model>/<split>/<run id>/``, which becomes that folder's ``latest``); returns the MergedRun.

    ``allow_partial``: merge even when shards are missing (the report says which; it is not the unsharded
    run's). ``orchestration``: the Prefect flow run, if any, for the run record. Raises MergeError (see the
    module doc) before anything is written; RunLockedError when another run writes into the output folder;
    OSError when a file cannot be written.
    """
    if not folders:
        raise _merge_error("No runs to merge.", "pass the run folders of the shards: rpx merge RUN... ", "missing")
    runs = sorted((read_shard_run(Path(folder)) for folder in folders), key=lambda run: run.index)
    missing = _check_together(runs, allow_partial)
    run_id = new_run_id()
    folder, results = _output_folder(runs, Path(output_dir) if output_dir is not None else None, run_id)
    rows = _ordered_rows(runs, run_id)
    row_dicts = rows.to_pylist()
    scores = _scores(runs, row_dicts)
    record = _record(runs, folder, run_id, results, missing)
    record.orchestration = orchestration
    payload = _payload(runs, scores, record, missing)
    folder.mkdir(parents=True, exist_ok=True)
    lock = RunLock.acquire(folder, run_id=run_id)
    try:
        return _write(folder, rows, scores, payload, record)
    finally:
        lock.release()
