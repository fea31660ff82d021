"""What an RPX task declares so that the loader, runner, reports and CLI can run it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

from rpx_tasks.sample import Sample


@dataclass(frozen=True)
class MetricInfo:
    """A metric a task emits, and which way is better."""

    name: str
    higher_is_better: bool
    description: str = ""


class TemporalAccumulator(Protocol):
    """Streams predictions clip by clip and scores how stable they are over time.

    ``update`` is called once per sample in run order (samples of a clip arrive in
    ``frame_idx`` order); only the previous frame of the current clip is kept.
    """

    def update(self, sample: Sample, prediction: Any) -> None: ...

    def result(self) -> dict[str, Any]:
        """Return ``{"score": float | None, "pairs": int}``."""
        ...


# resolve(path_string, sample_id, key) -> absolute Path inside the dataset root.
PathResolver = Callable[[str, str, str], Path]


@dataclass(frozen=True)
class TaskSpec:
    """Everything the pipeline needs to know about one RPX task.

    - ``modalities``: Hub modalities to download (keys of ``hub.MODALITY_FILES``).
    - ``required_keys``: manifest sample keys besides ``id`` and ``rgb`` that must be present.
    - ``load_ground_truth(entry, resolve)``: decode the labels of one manifest entry.
    - ``validate_prediction(prediction, sample)``: return the prediction normalised, or raise
      ModelError naming the sample.
    - ``compute_metrics(prediction, ground_truth)``: a dict of metric name -> float (or None
      when the metric is undefined for the sample).
    - ``metrics``: every metric the task can emit, in report order.
    - ``make_temporal``: builds a fresh TemporalAccumulator, or None when the task has no TS.
    - ``make_coherence``: builds a fresh geometric-coherence (SGC) accumulator with the same
      ``update(sample, prediction)`` / ``result()`` protocol, run only when the config asks.
    - ``wrap_numpy_function(fn, name)``: a Model calling a plain numpy function.
    - ``load_hf_model(checkpoint, device, **kwargs)``: the ``--hf-checkpoint`` fast path, or None.
    - ``numpy_signature``: the numpy function ``--model pkg.mod:fn`` must have, for hints.
    - ``models``: the task's registry entries (``rpx_tasks.models.registry.ModelEntry``),
      including at least one weight-free baseline that runs on the built-in sample data.
    - ``sample_entry(frame)``: the manifest entry of one built-in sample frame for this task
      (writing any label files it needs through ``frame``), or None to skip the frame; see
      ``rpx_tasks.sample_data.SampleFrame``.
    """

    name: str
    display_name: str
    modalities: tuple[str, ...]
    required_keys: tuple[str, ...]
    load_ground_truth: Callable[[dict, PathResolver], Any]
    validate_prediction: Callable[[Any, Sample], Any]
    compute_metrics: Callable[[Any, Any], dict[str, float | None]]
    metrics: tuple[MetricInfo, ...]
    primary_metric: str
    wrap_numpy_function: Callable[..., Any]
    make_temporal: Callable[[], TemporalAccumulator] | None = None
    load_hf_model: Callable[..., Any] | None = None
    optional_modalities: tuple[str, ...] = ()
    make_coherence: Callable[[], Any] | None = None
    numpy_signature: str = ""
    models: tuple[Any, ...] = ()
    sample_entry: Callable[[Any], dict | None] | None = None

    @property
    def metric_names(self) -> list[str]:
        return [m.name for m in self.metrics]

    def higher_is_better(self, metric: str) -> bool:
        """Direction of ``metric``; raises KeyError-free MetricError for an unknown name."""
        for info in self.metrics:
            if info.name == metric:
                return info.higher_is_better
        from rpx_tasks.errors import MetricError

        raise MetricError(f"Task {self.name} has no metric {metric!r}.", hint=f"Known: {self.metric_names}")
