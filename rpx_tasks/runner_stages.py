"""The stages of the benchmark loop (``rpx_tasks.runner.run_benchmark``), one class or function each.

read-ahead (``read_ahead``: samples decoded ahead of inference) -> FLOP pass (``count_flops_on_copy``:
once, on a deep copy of the model) -> predict (``Predictor``: batching, warm-up, timing with device
synchronisation) -> validate (``check_batch_predictions`` for the batch, the task's
``validate_prediction`` per sample) -> score (``Scorer``: metrics and readiness accumulators on a
scoring thread, temporal stability on a thread of its own) -> write (``RowRecorder``: one row per
sample to the sink, plus the running aggregates).
"""

from __future__ import annotations

import collections
import copy
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from rpx_tasks.aggregation import CellTable, MetricTable
from rpx_tasks.alignment_record import AlignmentStats
from rpx_tasks.contracts.clips import ClipScoring, clip_position, ends_clip, starts_clip
from rpx_tasks.contracts.model import Model
from rpx_tasks.contracts.spec import TaskSpec, TemporalAccumulator
from rpx_tasks.contracts.stage_timer import MODEL_STAGES, StageClock, cpu_mark, cpu_since
from rpx_tasks.cpu_budget import decode_threads, run_in_background
from rpx_tasks.dataset import SplitDataset
from rpx_tasks.device import synchronize
from rpx_tasks.errors import MetricError, ModelError
from rpx_tasks.models.torch_module import torch_modules_of
from rpx_tasks.readiness import PhaseScores
from rpx_tasks.sample import Sample

logger = logging.getLogger("rpx_tasks.runner")

# progress(done, total, stage)
Progress = Callable[[int, "int | None", str], None]


class RowSink(Protocol):
    """Where per-sample rows go as they are produced (e.g. a streaming Parquet writer)."""

    def write(self, row: dict[str, Any]) -> None: ...


class Checkpoints(Protocol):
    """Where a run makes its rows and state durable (``rpx_tasks.run_journal.RunJournal``)."""

    def due(self, done: int) -> bool: ...

    def commit(self, done: int, state: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class ResumePoint:
    """What an earlier attempt of the run made durable: the first ``samples_done`` samples' rows, in
    order, and the loop's state after them (``run_benchmark``'s checkpoint state)."""

    samples_done: int
    rows: Iterable[dict[str, Any]]
    state: dict[str, Any]


def read_ahead(
    dataset: SplitDataset,
    batch_size: int,
    start: int = 0,
    *,
    whole_clips: bool = False,
    num_workers: int | None = None,
    background: bool = False,
) -> Iterator[list[Sample]]:
    """Return the dataset's batches of ``batch_size`` decoded samples from sample ``start`` on, in order,
    decoded ahead of the caller (``SplitDataset.iter_batches``: for a clip task batches end at clip ends,
    and are whole clips with ``whole_clips``) by ``cpu_budget.decode_threads(num_workers)`` threads (0: on the
    caller's thread), at a lower CPU priority with ``background``. Iterating raises ManifestError from
    decoding."""
    return dataset.iter_batches(
        batch_size, start=start, whole_clips=whole_clips, workers=decode_threads(num_workers), background=background
    )


def timed_batches(batches: Iterable[list[Sample]], clock: StageClock) -> Iterator[list[Sample]]:
    """Yield ``batches`` unchanged, counting the wait for each as the loop waiting for ``read`` and each
    sample's decoding (``Sample.read_seconds``) as ``read``'s busy time. Raises what iterating raises."""
    iterator = iter(batches)
    while True:
        with clock.waiting("read"):
            batch = next(iterator, None)
        if batch is None:
            return
        for sample in batch:
            if sample.read_seconds is not None:
                clock.add("read", *sample.read_seconds)
        yield batch


@dataclass(frozen=True)
class FlopCount:
    """The FLOP pass's answer: GFLOPs of one sample, or None and why not."""

    flops_g: float | None
    skipped_reason: str | None = None


def count_flops_on_copy(model: Model, sample: Sample) -> FlopCount:
    """Return the GFLOPs of one ``predict([sample])`` call on a deep copy of ``model`` under torch's
    FlopCounterMode.

    The call goes to the copy, so the model itself, and any state it carries from frame to frame
    (a tracker, a video model), never sees the extra frame. Returns flops_g None with the reason
    when the model holds no torch module, cannot be deep-copied, counting fails, or nothing was
    counted (each failure is logged as a warning). Raises nothing.
    """
    if not torch_modules_of(model):
        return FlopCount(None, "the model holds no torch.nn.Module")
    try:
        twin = copy.deepcopy(model)
    except Exception as exc:  # any object a model holds may refuse to be copied
        return _flops_skipped(f"the model cannot be deep-copied ({type(exc).__name__}: {exc})")
    try:
        from torch.utils.flop_counter import FlopCounterMode

        reset = getattr(twin, "reset", None)
        if callable(reset):  # a stateful (video) model starts its state there
            reset()
        with FlopCounterMode(display=False) as counter:
            twin.predict([sample])
        total = counter.get_total_flops()
    except Exception as exc:  # counting is best effort, the run must go on
        return _flops_skipped(f"FLOP counting failed ({type(exc).__name__}: {exc})")
    if total <= 0:
        return FlopCount(None, "no floating-point operation was counted (the model computes outside torch)")
    return FlopCount(total / 1e9)


def _flops_skipped(reason: str) -> FlopCount:
    logger.warning("%s; reporting flops_g as null.", reason)
    return FlopCount(None, reason)


def check_batch_predictions(predictions: Any, batch: list[Sample]) -> None:
    """Validate stage of a batch: returns None when ``predictions`` is a list or tuple with one
    prediction per sample. Raises ModelError naming the batch's first sample otherwise."""
    hint = "predict(batch) must return a list with one prediction per sample, in order"
    if not isinstance(predictions, (list, tuple)):
        raise ModelError(
            f"Model returned a {type(predictions).__name__}, not a list of predictions, for a batch of "
            f"{len(batch)} samples (first sample {batch[0].id!r}).",
            hint=hint,
            details={"sample": batch[0].id},
        )
    if len(predictions) != len(batch):
        raise ModelError(
            f"Model returned {len(predictions)} predictions for a batch of {len(batch)} samples "
            f"(first sample {batch[0].id!r}).",
            hint=hint,
            details={"sample": batch[0].id},
        )


class Predictor:
    """Predict stage: runs the model batch by batch and times it.

    The first batch is the warm-up (its per-sample seconds go to ``warmup_seconds``, the later
    ones' to ``steady_seconds``); the device is synchronised around every timed call. Each call's wall
    and CPU time go to ``clock``: the preprocess and postprocess the model reports itself (a model with
    ``use_stage_clock``, given the clock here), the rest as ``forward``. For a clip task (``clip_task``)
    the model's ``reset()``, when it has one, is called before each clip's first batch.
    """

    def __init__(self, model: Model, device: str, clock: StageClock | None = None, *, clip_task: bool = False) -> None:
        self._model = model
        self._device = device
        self.clock = clock or StageClock(lambda: synchronize(device))
        if callable(getattr(model, "use_stage_clock", None)):
            model.use_stage_clock(self.clock)
        self._reset = getattr(model, "reset", None) if clip_task else None
        self._batches = 0
        self.warmup_seconds: list[float] = []
        self.steady_seconds: list[float] = []

    def state_dict(self) -> dict[str, Any]:
        """Return the per-sample seconds measured so far (warm-up and steady, as float64 arrays)."""
        return {
            "warmup_seconds": np.asarray(self.warmup_seconds, dtype=np.float64),
            "steady_seconds": np.asarray(self.steady_seconds, dtype=np.float64),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from an earlier attempt's ``state_dict()``: its seconds are kept, and this attempt's
        first batch is its own warm-up. Raises KeyError for a missing entry."""
        self.warmup_seconds = [float(value) for value in state["warmup_seconds"]]
        self.steady_seconds = [float(value) for value in state["steady_seconds"]]

    def predict(self, batch: list[Sample]) -> tuple[list[Any], float]:
        """Return the model's predictions for ``batch`` and the seconds per sample of the call.

        When the batch starts a clip (clip tasks), the model's ``reset()`` (if it has one) is called first,
        outside the timed call. Raises ModelError when the model does not return one prediction per
        sample, and whatever the model's ``reset`` or ``predict`` raises.
        """
        if callable(self._reset) and starts_clip(batch[0]):
            self._reset()
        synchronize(self._device)
        reported = self.clock.totals(MODEL_STAGES)
        start, start_cpu = time.perf_counter(), cpu_mark()
        predictions = self._model.predict(batch)
        synchronize(self._device)
        seconds, cpu = time.perf_counter() - start, cpu_since(start_cpu)
        after = self.clock.totals(MODEL_STAGES)
        own_wall, own_cpu = after[0] - reported[0], after[1] - reported[1]
        self.clock.add("forward", seconds - own_wall, max(0.0, cpu - own_cpu), held=seconds - own_wall)
        per_sample = seconds / len(batch)
        check_batch_predictions(predictions, batch)
        (self.warmup_seconds if self._batches == 0 else self.steady_seconds).extend([per_sample] * len(batch))
        self._batches += 1
        return predictions, per_sample


class Scorer:
    """Score stage: validates each prediction and computes its metrics on one scoring thread.

    Samples are scored one at a time in submission order. The geometric-coherence accumulator
    is updated on the scoring thread; temporal-stability updates go to a second thread, which
    likewise receives each clip's frames in sequence. Use as a context manager: leaving it
    shuts both threads down (pending work is cancelled after an error).

    ``background``: both threads run at a lower CPU priority than the model's (``cpu_budget``).

    ``alignment`` (depth runs whose alignment is not ``none``): each prediction is aligned to its
    ground truth by the task's ``align_prediction`` before ``compute_metrics`` and the fit is counted
    in ``alignment``; temporal stability and SGC receive the raw prediction.
    """

    def __init__(
        self,
        spec: TaskSpec,
        temporal: TemporalAccumulator | None,
        coherence: TemporalAccumulator | None,
        *,
        max_queued_frames: int,
        alignment: AlignmentStats | None = None,
        fscore: bool = False,
        clock: StageClock | None = None,
        background: bool = False,
    ) -> None:
        self._spec = spec
        self.clock = clock or StageClock()
        self._background = background
        self._alignment = alignment
        self._fscore = fscore
        self._clip: ClipScoring | None = None
        self._temporal = temporal
        self._coherence = coherence
        self._max_queued_frames = max_queued_frames
        self._scorer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rpx-score")
        self._temporal_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rpx-temporal")
        self._temporal_updates: collections.deque[Future] = collections.deque()

    def __enter__(self) -> "Scorer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._scorer.shutdown(wait=True, cancel_futures=True)
        self._temporal_thread.shutdown(wait=True, cancel_futures=True)

    def submit(self, sample: Sample, raw: Any) -> Future:
        """Return a Future of the sample's metrics (metric name -> float or None); for a frame of a clip
        task, of its clip's metrics at the clip's last frame and None before. Its result raises
        ModelError for an invalid prediction and MetricError from the metrics."""
        return self._scorer.submit(run_in_background(self._score) if self._background else self._score, sample, raw)

    def _score(self, sample: Sample, raw: Any) -> dict[str, float | None] | None:
        with self.clock.stage("validate"):
            prediction = self._spec.validate_prediction(raw, sample)
        if self._spec.clip is not None:
            with self.clock.stage("score"):
                return self._score_clip_frame(sample, prediction)
        if self._temporal is not None:
            update = run_in_background(self._update_temporal) if self._background else self._update_temporal
            self._temporal_updates.append(self._temporal_thread.submit(update, sample, prediction))
        with self.clock.stage("score"):
            if self._coherence is not None:
                self._coherence.update(sample, prediction)
            if self._alignment is not None and self._spec.align_prediction is not None:
                prediction, fit = self._spec.align_prediction(prediction, sample.ground_truth, self._alignment.mode)
                self._alignment.add(fit)
            return self._spec.compute_metrics(prediction, sample.ground_truth)

    def _update_temporal(self, sample: Sample, prediction: Any) -> None:
        with self.clock.stage("score"):
            self._temporal.update(sample, prediction)

    def _score_clip_frame(self, sample: Sample, prediction: Any) -> dict[str, float | None] | None:
        """Fold one frame of a clip task into its clip's scoring; the clip's metrics at its last frame, else None."""
        assert self._spec.clip is not None
        if self._clip is None or starts_clip(sample):
            mode = self._alignment.mode if self._alignment is not None else "none"
            self._clip = self._spec.clip.scoring(mode, self._fscore)
        self._clip.add(prediction, sample.ground_truth)
        if not ends_clip(sample):
            return None
        metrics, fit = self._clip.finish()
        self._clip = None
        if self._alignment is not None and fit is not None:
            self._alignment.add(fit)
        return metrics

    def bound_temporal_queue(self) -> None:
        """Collect the finished temporal updates, and wait for the oldest while more than
        ``max_queued_frames`` are queued (memory stays O(batch)); returns None. Raises what a
        collected update raised (e.g. MetricError)."""
        updates = self._temporal_updates
        with self.clock.waiting("scoring"):
            while updates and (updates[0].done() or len(updates) > self._max_queued_frames):
                updates.popleft().result()

    def wait_temporal(self) -> None:
        """Wait for every queued temporal update; returns None. Raises what an update raised."""
        with self.clock.waiting("scoring"):
            while self._temporal_updates:
                self._temporal_updates.popleft().result()


class RowRecorder:
    """Write stage: one row per scored sample to the sink (per clip for a clip task), plus the running aggregates.

    ``metric_table`` (per-metric statistics), ``cells`` (per scene and phase means) and
    ``phase_scores`` (WPS/STR of the primary metric) grow row by row; ``done`` counts the samples
    (frames, for a clip task) written, ``rows`` the rows; each sample is reported to ``notify`` as
    ``(done, total, "predict")``. A clip task's row is its clip (``id`` the clip's, ``frame_idx`` null,
    ``num_frames``, ``latency_ms`` the mean over its frames), written at the clip's last frame.
    """

    def __init__(self, spec: TaskSpec, rows: RowSink, notify: Progress, total: int) -> None:
        self._primary_metric = spec.primary_metric
        self._rows = rows
        self._notify = notify
        self._total = total
        self.metric_table = MetricTable(spec.metric_names)
        self.cells = CellTable(spec.metric_names)
        self.phase_scores = PhaseScores()
        self._metric_names = spec.metric_names
        self._clip_task = spec.clip is not None
        self._clip_seconds: list[float] = []
        self.done = 0
        self.rows = 0

    def replay(self, rows: Iterable[dict[str, Any]]) -> None:
        """Fold rows an earlier attempt wrote (in order) into the aggregates, as ``write`` did then,
        without writing them again; returns None. Raises MetricError as ``write``."""
        for row in rows:
            metrics = {name: row.get(name) for name in self._metric_names}
            self._fold(row["scene"], row["phase"], row["difficulty"], metrics)
            self.done += int(row.get("num_frames") or 1)

    def write(self, sample: Sample, seconds: float, metrics: dict[str, float | None] | None) -> None:
        """Write the row of ``sample`` (identity, every metric, latency_ms) and fold its metrics
        into the aggregates; returns None. For a clip task ``metrics`` is None before the clip's last
        frame (nothing is written then) and the clip's metrics at it. A declared metric the task did
        not return counts as missing, as in a resumed run's rows. Raises what the sink raises, and
        MetricError for a metric the task does not declare or a sample whose phase or difficulty is unknown."""
        if self._clip_task:
            self._clip_seconds.append(seconds)
            if metrics is None:
                self.done += 1
                self._notify(self.done, self._total, "predict")
                return
        assert metrics is not None
        undeclared = sorted(set(metrics) - set(self._metric_names))
        if undeclared:
            raise MetricError(
                f"The task's metrics returned {undeclared}, not declared by its TaskSpec (sample {sample.id!r}).",
                hint="list every metric compute_metrics returns in the TaskSpec's metrics",
                details={"sample": sample.id, "undeclared": undeclared},
            )
        # As float64 Python floats, as a resumed run reads them back from the journal (a float32 sum would differ).
        metrics = {name: None if metrics.get(name) is None else float(metrics[name]) for name in self._metric_names}
        self._rows.write({**self._identity(sample, seconds), **metrics, "latency_ms": self._latency_ms(seconds)})
        self._fold(sample.scene, sample.phase, sample.difficulty, metrics)
        self.done += 1
        self._notify(self.done, self._total, "predict")

    def _identity(self, sample: Sample, seconds: float) -> dict[str, Any]:
        identity = {"scene": sample.scene, "phase": sample.phase, "difficulty": sample.difficulty}
        where = clip_position(sample)
        if not self._clip_task or where is None:
            return {"id": sample.id, **identity, "frame_idx": sample.frame_idx}
        return {"id": where.clip_id, **identity, "frame_idx": None, "num_frames": len(self._clip_seconds)}

    def _latency_ms(self, seconds: float) -> float:
        if not self._clip_task:
            return seconds * 1000.0
        mean = sum(self._clip_seconds) / len(self._clip_seconds)
        self._clip_seconds = []
        return mean * 1000.0

    def _fold(self, scene: str | None, phase: str | None, difficulty: str | None, metrics: dict[str, Any]) -> None:
        self.metric_table.add_row(metrics)
        self.cells.add(scene, phase, metrics)
        self.phase_scores.add(phase, difficulty, metrics.get(self._primary_metric))
        self.rows += 1
