"""The benchmark loop: predict, validate, score and stream one row per sample.

The stages live in ``rpx_tasks.runner_stages``; ``run_benchmark`` wires them: samples are
decoded ahead, each batch is predicted and timed, its samples are scored on a scoring thread
while the next batch is predicted (at most two batches in flight), and rows are written in
sample order.

Timing: the first batch is warm-up and excluded from latency; on CUDA the device is
synchronised around every timed region. FLOPs are counted in a separate single-sample call
outside the timed window. Memory stays O(batch): rows go straight to the row sink, temporal
metrics keep one previous frame, aggregates are running sums.
"""

from __future__ import annotations

import collections
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rpx_tasks.contracts.model import Model
from rpx_tasks.contracts.spec import TaskSpec
from rpx_tasks.dataset import SplitDataset
from rpx_tasks.device import peak_memory_mb, reset_peak_memory
from rpx_tasks.errors import ModelError
from rpx_tasks.models.torch_module import count_parameters_m
from rpx_tasks.readiness import coherence_accumulator, temporal_accumulator
from rpx_tasks.runner_stages import (
    Predictor,
    Progress,
    RowRecorder,
    RowSink,
    Scorer,
    count_flops_g,
    read_ahead,
)
from rpx_tasks.sample import Sample

__all__ = ["Progress", "RowSink", "RunOutcome", "count_flops_g", "run_benchmark"]


@dataclass
class RunOutcome:
    """What a finished run measured; the reports layer turns it into files."""

    num_samples: int
    aggregated: dict[str, dict[str, Any]]
    cells: list[dict[str, Any]]
    readiness: dict[str, Any]
    compute: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def run_benchmark(
    model: Model,
    dataset: SplitDataset,
    spec: TaskSpec,
    *,
    device: str,
    batch_size: int,
    rows: RowSink,
    progress: Progress | None = None,
    count_flops: bool = True,
    temporal_stability: bool = True,
    geometric_coherence: bool = False,
    call_setup: bool = True,
) -> RunOutcome:
    """Run ``model`` over ``dataset`` and score it.

    Writes one row per sample to ``rows`` (id, scene, phase, difficulty, frame_idx, every
    metric, latency_ms). Returns the aggregates, per-cell means, readiness scores (WPS, STR,
    TS, SGC) and compute figures. Raises ModelError when the model is for another task or
    returns the wrong number or kind of predictions, ManifestError when a sample cannot be
    decoded, MetricError from the metrics.
    """
    if getattr(model, "task", spec.name) != spec.name:
        raise ModelError(
            f"Task mismatch between model ({model.task}) and dataset ({spec.name}).",
            hint=f"use a model built for {spec.name}",
        )
    notify = progress or _no_progress
    if call_setup:
        notify(0, None, "setup")
        model.setup()
    temporal = temporal_accumulator(spec) if temporal_stability else None
    coherence = coherence_accumulator(spec) if geometric_coherence else None
    params_m = count_parameters_m(model)
    predictor = Predictor(model, device, count_flops=count_flops)
    recorder = RowRecorder(spec, rows, notify, len(dataset))
    reset_peak_memory(device)
    notify(0, len(dataset), "predict")
    with Scorer(spec, temporal, coherence, max_queued_frames=2 * batch_size) as scorer:
        _predict_and_score(dataset, batch_size, predictor, scorer, recorder)
    compute, notes = _compute_figures(predictor, params_m, device, batch_size)
    higher = spec.higher_is_better(spec.primary_metric)
    readiness = {
        "primary_metric": spec.primary_metric,
        "wps": recorder.phase_scores.wps(higher),
        "str": recorder.phase_scores.str_block(higher),
        "ts": temporal.result() if temporal is not None else {"score": None, "pairs": 0},
        "sgc": coherence.result() if coherence is not None else None,
    }
    return RunOutcome(
        num_samples=recorder.done,
        aggregated=_aggregated(recorder, spec),
        cells=recorder.cells.rows(),
        readiness=readiness,
        compute=compute,
        notes=notes,
    )


def _no_progress(done: int, total: int | None, stage: str) -> None:
    """The progress callback of a run without one: does nothing."""


def _predict_and_score(
    dataset: SplitDataset, batch_size: int, predictor: Predictor, scorer: Scorer, recorder: RowRecorder
) -> None:
    """Predict every batch read ahead from ``dataset`` while the previous one is scored, and
    write each sample's row once scored, in order (at most two batches in flight); returns
    None after the last temporal update. Raises what any stage raises."""
    in_flight: collections.deque[tuple[Sample, float, Future]] = collections.deque()
    for batch in read_ahead(dataset, batch_size):
        predictions, per_sample = predictor.predict(batch)
        while len(in_flight) >= batch_size:
            _write_scored(*in_flight.popleft(), scorer, recorder)
        in_flight.extend((sample, per_sample, scorer.submit(sample, raw)) for sample, raw in zip(batch, predictions))
    while in_flight:
        _write_scored(*in_flight.popleft(), scorer, recorder)
    scorer.wait_temporal()


def _write_scored(sample: Sample, seconds: float, scored: Future, scorer: Scorer, recorder: RowRecorder) -> None:
    """Wait for the metrics of ``sample``, bound the temporal queue and write the row; returns None.
    Raises what scoring raised (ModelError for an invalid prediction, MetricError)."""
    metrics = scored.result()
    scorer.bound_temporal_queue()
    recorder.write(sample, seconds, metrics)


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values), q)) if values else None


def _compute_figures(
    predictor: Predictor, params_m: float | None, device: str, batch_size: int
) -> tuple[dict[str, Any], list[str]]:
    """Return the compute block (size, FLOPs, latency percentiles, throughput, peak memory) and
    the run's notes; latency falls back to the warm-up batch when it was the only one."""
    notes = []
    timed = predictor.steady_seconds
    if not timed:
        timed = predictor.warmup_seconds
        notes.append("only one batch: latency includes the warm-up batch")
    latency_ms = [s * 1000.0 for s in timed]
    compute = {
        "params_m": params_m,
        "flops_g": predictor.flops_g,
        "latency_ms_p50": _percentile(latency_ms, 50),
        "latency_ms_p95": _percentile(latency_ms, 95),
        "throughput_sps": (len(timed) / sum(timed)) if timed and sum(timed) > 0 else None,
        "peak_memory_mb": peak_memory_mb(device),
        "batch_size": batch_size,
        "warmup_samples": len(predictor.warmup_seconds),
        "timed_samples": len(timed),
        "device": device,
    }
    return compute, notes


def _aggregated(recorder: RowRecorder, spec: TaskSpec) -> dict[str, dict[str, Any]]:
    """Return each metric's statistics with its direction (None for a metric the task does not declare)."""
    return {
        name: {
            **stats.to_dict(),
            "higher_is_better": spec.higher_is_better(name) if name in spec.metric_names else None,
        }
        for name, stats in recorder.metric_table.stats.items()
    }
