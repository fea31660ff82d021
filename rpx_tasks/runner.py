"""The benchmark loop: predict, validate, score and stream one row per sample.

Timing: the first batch is warm-up and excluded from latency; on CUDA the device is
synchronised around every timed region. FLOPs are counted in a separate single-sample call
outside the timed window. Memory stays O(batch): rows go straight to the row sink, temporal
metrics keep one previous frame, aggregates are running sums.
"""

from __future__ import annotations

import collections
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from rpx_tasks.aggregation import CellTable, MetricTable
from rpx_tasks.allocator import keep_frame_buffers_mapped
from rpx_tasks.dataset import SplitDataset
from rpx_tasks.device import peak_memory_mb, reset_peak_memory, synchronize
from rpx_tasks.errors import ModelError
from rpx_tasks.models.protocol import count_parameters_m, torch_module_of
from rpx_tasks.readiness import PhaseScores
from rpx_tasks.sample import Sample
from rpx_tasks.tasks.spec import TaskSpec

logger = logging.getLogger("rpx_tasks.runner")

# progress(done, total, stage)
Progress = Callable[[int, "int | None", str], None]


class RowSink(Protocol):
    """Where per-sample rows go as they are produced (e.g. a streaming Parquet writer)."""

    def write(self, row: dict[str, Any]) -> None: ...


@dataclass
class RunOutcome:
    """What a finished run measured; the reports layer turns it into files."""

    num_samples: int
    aggregated: dict[str, dict[str, Any]]
    cells: list[dict[str, Any]]
    readiness: dict[str, Any]
    compute: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def count_flops_g(model: Any, sample: Sample) -> float | None:
    """GFLOPs of one ``predict([sample])`` call under torch's FlopCounterMode.

    Returns None for models without a torch module or when counting fails (logged).
    """
    if torch_module_of(model) is None:
        return None
    try:
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            model.predict([sample])
        total = counter.get_total_flops()
    except Exception as exc:  # noqa: BLE001 - counting is best effort, the run must go on
        logger.warning("FLOP counting failed (%s); reporting flops_g as null.", exc)
        return None
    return total / 1e9 if total > 0 else None


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values), q)) if values else None


def run_benchmark(
    model: Any,
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
    TS) and compute figures. Raises ModelError when the model returns the wrong number or
    kind of predictions, ManifestError when a sample cannot be decoded.
    """
    if getattr(model, "task", spec.name) != spec.name:
        raise ModelError(
            f"Task mismatch between model ({model.task}) and dataset ({spec.name}).",
            hint=f"use a model built for {spec.name}",
        )
    total = len(dataset)
    notify = progress or (lambda done, total_, stage: None)
    if call_setup:
        notify(0, None, "setup")
        model.setup()
    keep_frame_buffers_mapped()
    metric_table = MetricTable(spec.metric_names)
    cells = CellTable(spec.metric_names)
    phase_scores = PhaseScores()
    temporal = spec.make_temporal() if (temporal_stability and spec.make_temporal) else None
    coherence = spec.make_coherence() if (geometric_coherence and spec.make_coherence) else None
    params_m = count_parameters_m(model)
    flops_g: float | None = None
    warmup_seconds: list[float] = []
    steady_seconds: list[float] = []
    reset_peak_memory(device)

    def score(sample: Sample, raw: Any) -> dict[str, float | None]:
        # Runs on the scoring thread, one sample at a time in run order; the temporal thread
        # likewise receives each clip's frames in sequence.
        prediction = spec.validate_prediction(raw, sample)
        if temporal is not None:
            temporal_updates.append(temporal_thread.submit(temporal.update, sample, prediction))
        if coherence is not None:
            coherence.update(sample, prediction)
        return spec.compute_metrics(prediction, sample.ground_truth)

    done = 0

    def finish(sample: Sample, seconds: float, scored: Future) -> None:
        nonlocal done
        metrics = scored.result()
        # Bound the frames queued for the temporal thread (memory stays O(batch)).
        while temporal_updates and (temporal_updates[0].done() or len(temporal_updates) > 2 * batch_size):
            temporal_updates.popleft().result()
        rows.write(
            {
                "id": sample.id,
                "scene": sample.scene,
                "phase": sample.phase,
                "difficulty": sample.difficulty,
                "frame_idx": sample.frame_idx,
                **metrics,
                "latency_ms": seconds * 1000.0,
            }
        )
        metric_table.add_row(metrics)
        cells.add(sample.scene, sample.phase, metrics)
        phase_scores.add(sample.phase, sample.difficulty, metrics.get(spec.primary_metric))
        done += 1
        notify(done, total, "predict")

    notify(0, total, "predict")
    # Scoring of batch k overlaps inference of batch k+1; at most two batches are in flight.
    in_flight: collections.deque[tuple[Sample, float, Future]] = collections.deque()
    scorer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rpx-score")
    temporal_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rpx-temporal")
    temporal_updates: collections.deque[Future] = collections.deque()
    try:
        for batch_number, batch in enumerate(dataset.iter_batches(batch_size)):
            if batch_number == 0 and count_flops:
                flops_g = count_flops_g(model, batch[0])
            synchronize(device)
            start = time.perf_counter()
            predictions = model.predict(batch)
            synchronize(device)
            per_sample = (time.perf_counter() - start) / len(batch)
            if not isinstance(predictions, (list, tuple)) or len(predictions) != len(batch):
                count = len(predictions) if hasattr(predictions, "__len__") else type(predictions).__name__
                raise ModelError(
                    f"Model returned {count} predictions for a batch of {len(batch)} samples "
                    f"(first sample {batch[0].id!r}).",
                    hint="predict(batch) must return a list with one prediction per sample, in order",
                )
            (warmup_seconds if batch_number == 0 else steady_seconds).extend([per_sample] * len(batch))
            while len(in_flight) >= batch_size:
                finish(*in_flight.popleft())
            in_flight.extend((sample, per_sample, scorer.submit(score, sample, raw)) for sample, raw in zip(batch, predictions))
        while in_flight:
            finish(*in_flight.popleft())
        while temporal_updates:
            temporal_updates.popleft().result()
    finally:
        scorer.shutdown(wait=True, cancel_futures=True)
        temporal_thread.shutdown(wait=True, cancel_futures=True)

    notes = []
    timed = steady_seconds
    if not timed:
        timed = warmup_seconds
        notes.append("only one batch: latency includes the warm-up batch")
    higher = spec.higher_is_better(spec.primary_metric)
    latency_ms = [s * 1000.0 for s in timed]
    compute = {
        "params_m": params_m,
        "flops_g": flops_g,
        "latency_ms_p50": _percentile(latency_ms, 50),
        "latency_ms_p95": _percentile(latency_ms, 95),
        "throughput_sps": (len(timed) / sum(timed)) if timed and sum(timed) > 0 else None,
        "peak_memory_mb": peak_memory_mb(device),
        "batch_size": batch_size,
        "warmup_samples": len(warmup_seconds),
        "timed_samples": len(timed),
        "device": device,
    }
    aggregated = {
        name: {**stats.to_dict(), "higher_is_better": spec.higher_is_better(name) if name in spec.metric_names else None}
        for name, stats in metric_table.stats.items()
    }
    readiness = {
        "primary_metric": spec.primary_metric,
        "wps": phase_scores.wps(higher),
        "str": phase_scores.str_block(higher),
        "ts": temporal.result() if temporal is not None else {"score": None, "pairs": 0},
        "sgc": coherence.result() if coherence is not None else None,
    }
    return RunOutcome(num_samples=done, aggregated=aggregated, cells=cells.rows(), readiness=readiness, compute=compute, notes=notes)
