"""The benchmark loop: predict, validate, score and stream one row per sample.

The stages live in ``rpx_tasks.runner_stages``; ``run_benchmark`` wires them: samples are
decoded ahead, each batch is predicted and timed, its samples are scored on a scoring thread
while the next batch is predicted (at most two batches in flight), and rows are written in
sample order.

Timing: the first batch is warm-up and excluded from latency; on CUDA the device is
synchronised around every timed region. FLOPs are counted once, before the timed window, on a
deep copy of the model, so a stateful model sees every sample exactly once. Peak memory (host
and GPU) covers this run only: both high-water marks are reset just before the first batch is
predicted. Memory stays O(batch): rows go straight to the row sink, temporal metrics keep one
previous frame, aggregates are running sums.

Resume: with a ``Checkpoints`` sink the loop commits its rows and state every so often (draining
the pipeline first), and a ``ResumePoint`` restores them, so a killed run continues where its
last commit left off and ends with the same scores as an uninterrupted one.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rpx_tasks.alignment_record import AlignmentStats
from rpx_tasks.contracts.clips import ends_clip
from rpx_tasks.contracts.model import Model
from rpx_tasks.contracts.spec import TaskSpec, TemporalAccumulator
from rpx_tasks.contracts.stage_timer import StageClock
from rpx_tasks.dataset import SplitDataset
from rpx_tasks.device import PeakMemoryWindow
from rpx_tasks.errors import ModelError
from rpx_tasks.models.torch_module import ParameterCounts, parameter_counts, torch_modules_of
from rpx_tasks.readiness import GeometricCoherence, coherence_accumulator, temporal_accumulator
from rpx_tasks.runner_stages import (
    Checkpoints,
    FlopCount,
    Predictor,
    Progress,
    ResumePoint,
    RowRecorder,
    RowSink,
    Scorer,
    count_flops_on_copy,
    read_ahead,
    timed_batches,
)
from rpx_tasks.sample import Sample

__all__ = [
    "Checkpoints",
    "Progress",
    "ResumePoint",
    "RowSink",
    "RunOutcome",
    "aggregated_stats",
    "readiness_scores",
    "run_benchmark",
]


@dataclass
class RunOutcome:
    """What a finished run measured; the reports layer turns it into files. ``alignment``: the statistics
    of the run's depth-alignment fits (None when the run applies no alignment). ``state``: the loop's final
    state, as its last checkpoint commits it (timings, accumulator states, FLOPs, alignment fits): what a
    shard run keeps for ``rpx merge``."""

    num_samples: int
    aggregated: dict[str, dict[str, Any]]
    cells: list[dict[str, Any]]
    readiness: dict[str, Any]
    compute: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    alignment: AlignmentStats | None = None
    state: dict[str, Any] | None = None


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
    checkpoints: Checkpoints | None = None,
    resume: ResumePoint | None = None,
    alignment: str = "none",
    fscore: bool = False,
    num_workers: int | None = None,
) -> RunOutcome:
    """Run ``model`` over ``dataset`` and score it.

    Writes one row per sample to ``rows`` (id, scene, phase, difficulty, frame_idx, every
    metric, latency_ms). Returns the aggregates, per-cell means, readiness scores (WPS, STR,
    TS, SGC) and compute figures (``_compute_figures``). ``count_flops=False`` skips the FLOP
    pass (flops_g null, with the reason).

    ``checkpoints``: whenever ``checkpoints.due(done)`` after a batch, the loop drains (every
    sample predicted so far is scored and written, temporal updates included) and calls
    ``checkpoints.commit(done, state)`` with the state a resumed run needs; and once more at the end.
    ``alignment``: the depth alignment applied before the metrics (``none``, ``ls_affine``,
    ``ls_disparity``; the task's ``align_prediction``), its fits counted in ``RunOutcome.alignment``.
    ``num_workers``: the decoding threads (``cpu_budget.decode_threads``: None sizes them from the cores, 0
    decodes on the loop's thread). For a model that holds torch modules, the pipeline's helper threads run at
    a lower CPU priority than torch's (``cpu_budget``), so they do not stall its parallel regions.
    ``resume``: what an earlier attempt committed; its rows are folded into the aggregates, its
    state restored, and the model predicts only the samples after them, so the outcome equals an
    uninterrupted run's (latency figures cover the samples timed over all attempts).

    A clip task (``spec.clip``, e.g. video_depth) predicts frame by frame in batches that end at clip
    ends (whole clips for a model with ``whole_clip = True``), calls the model's ``reset()`` before each
    clip, writes one row per clip and commits checkpoints only at clip ends; ``fscore`` is its
    ``--fscore`` option. ``RunOutcome.num_samples`` counts rows (clips); ``compute["frames"]`` the frames.

    Raises ModelError when the model is for another task or returns the wrong number or kind of
    predictions, ManifestError when a sample cannot be decoded, MetricError from the metrics.
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
    predictor = Predictor(model, device, clip_task=spec.clip is not None)
    recorder = RowRecorder(spec, rows, notify, len(dataset))
    unit = "clips" if spec.clip is not None else "frames"
    aligner = AlignmentStats(alignment, unit) if alignment != "none" else None
    start, saved_flops = _restore(resume, recorder, predictor, temporal, coherence, aligner)
    whole_clips = bool(getattr(model, "whole_clip", False))
    background = bool(torch_modules_of(model))  # helpers yield the cores to torch's threads
    with contextlib.closing(
        read_ahead(
            dataset, batch_size, start=start, whole_clips=whole_clips, num_workers=num_workers, background=background
        )
    ) as batches:
        first = next(batches, None)
        flops = saved_flops or _flop_pass(model, first, count_flops)
        memory = PeakMemoryWindow.start(device)  # after the FLOP pass: its model copy is not this run's

        clock = predictor.clock

        def commit() -> None:
            with clock.stage("write"):
                checkpoints.commit(recorder.done, _loop_state(predictor, temporal, coherence, flops, aligner))

        notify(recorder.done, len(dataset), "predict")
        loop_start = time.perf_counter()
        with Scorer(
            spec,
            temporal,
            coherence,
            max_queued_frames=max(2 * batch_size, MIN_FRAMES_IN_FLIGHT),
            alignment=aligner,
            fscore=fscore,
            clock=clock,
            background=background,
        ) as scorer:
            _predict_and_score(
                timed_batches(itertools.chain([first] if first else [], batches), clock),
                batch_size,
                predictor,
                scorer,
                recorder,
                checkpoints.due if checkpoints is not None else None,
                commit,
                in_flight_limit=(
                    max(batch_size, MIN_FRAMES_IN_FLIGHT)
                    if spec.clip is None
                    else _clip_in_flight_limit(dataset, batch_size, whole_clips)
                ),
                clip_task=spec.clip is not None,
            )
        if checkpoints is not None:
            commit()
        loop_wall = time.perf_counter() - loop_start
    compute, notes = _compute_figures(predictor, parameter_counts(model), flops, memory, batch_size)
    compute.update(_stage_figures(clock, loop_wall, model))
    if spec.clip is not None:
        compute["frames"] = recorder.done
        compute["whole_clip_model"] = whole_clips
    if start:
        unit_word = "frames" if spec.clip is not None else "samples"
        notes.append(
            f"resumed after {start} of {len(dataset)} {unit_word}: latency covers the {compute['timed_samples']} "
            f"{unit_word} timed over all attempts; peak memory covers the last attempt only"
        )
    return RunOutcome(
        num_samples=recorder.rows,
        aggregated=aggregated_stats(recorder, spec),
        cells=recorder.cells.rows(),
        readiness=readiness_scores(recorder, spec, temporal, coherence),
        compute=compute,
        notes=notes,
        alignment=aligner,
        state=_loop_state(predictor, temporal, coherence, flops, aligner),
    )


def readiness_scores(
    recorder: RowRecorder,
    spec: TaskSpec,
    temporal: TemporalAccumulator | None,
    coherence: GeometricCoherence | None,
) -> dict[str, Any]:
    """Return result.json's ``readiness`` (before Φ and J_min): the primary metric, WPS and STR of the rows
    ``recorder`` folded, TS and SGC of the accumulators (None: not computed). Raises nothing."""
    higher = spec.higher_is_better(spec.primary_metric)
    return {
        "primary_metric": spec.primary_metric,
        "wps": recorder.phase_scores.wps(higher),
        "str": recorder.phase_scores.str_block(higher),
        "ts": temporal.result() if temporal is not None else {"score": None, "pairs": 0},
        "sgc": coherence.result() if coherence is not None else None,
    }


def _loop_state(
    predictor: Predictor,
    temporal: TemporalAccumulator | None,
    coherence: GeometricCoherence | None,
    flops: FlopCount,
    aligner: AlignmentStats | None,
) -> dict[str, Any]:
    """Return what a resumed run needs besides the rows: timings, the accumulators' states, the FLOP count,
    the alignment fits so far."""
    return {
        "timing": predictor.state_dict(),
        "temporal": temporal.state_dict() if temporal is not None else None,
        "coherence": coherence.state_dict() if coherence is not None else None,
        "flops": {"flops_g": flops.flops_g, "skipped_reason": flops.skipped_reason},
        "alignment": aligner.state_dict() if aligner is not None else None,
    }


def _restore(
    resume: ResumePoint | None,
    recorder: RowRecorder,
    predictor: Predictor,
    temporal: TemporalAccumulator | None,
    coherence: GeometricCoherence | None,
    aligner: AlignmentStats | None,
) -> tuple[int, FlopCount | None]:
    """Fold an earlier attempt's rows and state in; returns (the first sample still to predict, its FLOP
    count or None). Raises KeyError for a state of another layout, MetricError as ``RowRecorder.replay``."""
    if resume is None:
        return 0, None
    recorder.replay(resume.rows)
    state = resume.state
    predictor.load_state_dict(state["timing"])
    if temporal is not None and state.get("temporal") is not None:
        temporal.load_state_dict(state["temporal"])
    if coherence is not None and state.get("coherence") is not None:
        coherence.load_state_dict(state["coherence"])
    if aligner is not None and state.get("alignment") is not None:
        aligner.load_state_dict(state["alignment"])
    return resume.samples_done, FlopCount(**state["flops"])


def _flop_pass(model: Model, first_batch: list[Sample] | None, count_flops: bool) -> FlopCount:
    """Return the FLOPs of the first sample (counted on a copy of the model), or None and why
    they were not counted. Raises nothing."""
    if not count_flops:
        return FlopCount(None, "skipped on request (--no-flops / count_flops=False)")
    if not first_batch:
        return FlopCount(None, "the split has no samples")
    return count_flops_on_copy(model, first_batch[0])


# At small batch sizes a few frames wait to be scored (and for temporal stability) while the next ones are
# predicted: the scoring threads then always have work queued instead of waiting for the loop's hand-over
# (trivial model, 640x480, 2 cores: ~4% more frames/s than one frame at a time); memory stays O(batch).
MIN_FRAMES_IN_FLIGHT = 4


def _no_progress(done: int, total: int | None, stage: str) -> None:
    """The progress callback of a run without one: does nothing."""


def _predict_and_score(
    batches: Iterable[list[Sample]],
    batch_size: int,
    predictor: Predictor,
    scorer: Scorer,
    recorder: RowRecorder,
    checkpoint_due: Callable[[int], bool] | None = None,
    commit: Callable[[], None] | None = None,
    *,
    in_flight_limit: int | None = None,
    clip_task: bool = False,
) -> None:
    """Predict every batch (read ahead) while the previous one is scored, and write each sample's
    row once scored, in order (at most ``in_flight_limit``, default ``batch_size``, samples wait while
    the next batch is predicted); returns None after the last temporal update. When
    ``checkpoint_due(samples predicted)`` says so after a batch that ends at a clip end (every batch,
    for a frame task), every sample in flight is written and every temporal update awaited before ``commit()``.
    Raises what any stage raises."""
    in_flight: collections.deque[tuple[Sample, float, Future]] = collections.deque()
    limit = in_flight_limit or batch_size
    for batch in batches:
        predictions, per_sample = predictor.predict(batch)
        while len(in_flight) >= limit:
            _write_scored(*in_flight.popleft(), scorer, recorder)
        in_flight.extend((sample, per_sample, scorer.submit(sample, raw)) for sample, raw in zip(batch, predictions))
        at_clip_end = not clip_task or ends_clip(batch[-1])
        if (
            checkpoint_due is not None
            and commit is not None
            and at_clip_end
            and checkpoint_due(recorder.done + len(in_flight))
        ):
            while in_flight:
                _write_scored(*in_flight.popleft(), scorer, recorder)
            scorer.wait_temporal()
            commit()
    while in_flight:
        _write_scored(*in_flight.popleft(), scorer, recorder)
    scorer.wait_temporal()


def _clip_in_flight_limit(dataset: SplitDataset, batch_size: int, whole_clips: bool) -> int:
    """How many frames of a clip task may wait to be scored: one batch, or one whole clip."""
    if not whole_clips:
        return batch_size
    return dataset.longest_clip()


def _write_scored(sample: Sample, seconds: float, scored: Future, scorer: Scorer, recorder: RowRecorder) -> None:
    """Wait for the metrics of ``sample``, bound the temporal queue and write the row; returns None.
    Raises what scoring raised (ModelError for an invalid prediction, MetricError)."""
    with scorer.clock.waiting("scoring"):
        metrics = scored.result()
    scorer.bound_temporal_queue()
    with scorer.clock.stage("write"):
        recorder.write(sample, seconds, metrics)


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values), q)) if values else None


def _compute_figures(
    predictor: Predictor,
    params: ParameterCounts | None,
    flops: FlopCount,
    memory: PeakMemoryWindow,
    batch_size: int,
) -> tuple[dict[str, Any], list[str]]:
    """Return the compute block (parameters, FLOPs, latency percentiles, throughput, peak host
    and GPU memory) and the run's notes; latency falls back to the warm-up batch when it was the
    only one. Raises nothing."""
    notes = []
    timed = predictor.steady_seconds
    if not timed:
        timed = predictor.warmup_seconds
        notes.append("only one batch: latency includes the warm-up batch")
    latency_ms = [s * 1000.0 for s in timed]
    peaks = memory.read()
    if peaks["peak_host_memory_scope"] != "run":
        notes.append(
            "peak host memory is the process-lifetime maximum (ru_maxrss): its high-water mark cannot be reset here"
        )
    compute = {
        "params_m": params.total_m if params else None,
        "params_trainable_m": params.trainable_m if params else None,
        "params_frozen_m": params.frozen_m if params else None,
        "flops_g": flops.flops_g,
        "flops_skipped_reason": flops.skipped_reason,
        "latency_ms_p50": _percentile(latency_ms, 50),
        "latency_ms_p95": _percentile(latency_ms, 95),
        "throughput_sps": (len(timed) / sum(timed)) if timed and sum(timed) > 0 else None,
        **peaks,
        "batch_size": batch_size,
        "warmup_samples": len(predictor.warmup_seconds),
        "timed_samples": len(timed),
        "device": memory.device,
    }
    return compute, notes


def _stage_figures(clock: StageClock, loop_wall: float, model: Model) -> dict[str, Any]:
    """The compute block's stage figures (``contracts.stage_timer``): ``stages``, the loop's wall seconds,
    ``model_substages`` (whether the model timed its own preprocess and postprocess) and, for a model that
    records how it ran (the HF fast paths' ``execution.record()``), ``execution``. Raises nothing."""
    figures: dict[str, Any] = {
        "stages": clock.report(loop_wall),
        "stages_loop_wall_s": round(loop_wall, 6),
        "model_substages": callable(getattr(model, "use_stage_clock", None)),
    }
    record = getattr(getattr(model, "execution", None), "record", None)
    if callable(record):
        figures["execution"] = record()
    return figures


def aggregated_stats(recorder: RowRecorder, spec: TaskSpec) -> dict[str, dict[str, Any]]:
    """Return each metric's statistics with its direction (None for a metric the task does not declare)."""
    return {
        name: {
            **stats.to_dict(),
            "higher_is_better": spec.higher_is_better(name) if name in spec.metric_names else None,
        }
        for name, stats in recorder.metric_table.stats.items()
    }
