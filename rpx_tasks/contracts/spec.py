"""What an RPX task declares (TaskSpec), what a registered model is (ModelEntry), and the metric info.

These types sit at the bottom of the package so that every layer can name them: metrics declare
their :class:`MetricInfo`, models type their arguments with :class:`TaskSpec`, tasks build one
spec each. A task module never imports a layer above it: the HF fast path (a model) is named
by an import-path string (``package.module:attr``) imported on first use, and the readiness
scores a task supports are plain data (``temporal``, ``geometric_coherence``) that the readiness
package maps to its accumulators.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Protocol

from rpx_tasks.contracts.clips import ClipUnit
from rpx_tasks.contracts.model import Model
from rpx_tasks.contracts.sample_frame import SampleFrame
from rpx_tasks.contracts.vocabulary import VocabularyHook
from rpx_tasks.errors import ConfigError, MetricError
from rpx_tasks.sample import Sample


@dataclass(frozen=True)
class MetricInfo:
    """A metric a task emits, and which way is better."""

    name: str
    higher_is_better: bool
    description: str = ""


@dataclass(frozen=True)
class ModelEntry:
    """One registered model of a task: its name, how to build it and a one-line description.

    ``kind="hf"`` loads the HF checkpoint ``target`` through the task's fast path;
    ``kind="import"`` loads the import path ``target`` (``package.module:callable``).
    ``alignment``: the relative-depth alignment its runs use unless ``--alignment`` says otherwise
    (``none`` for metric models; ``ls_affine`` / ``ls_disparity`` for relative-depth models of a
    task with an ``align_prediction`` hook).
    """

    name: str
    task: str
    kind: str
    target: str
    description: str = ""
    alignment: str = "none"


class TemporalAccumulator(Protocol):
    """Streams predictions clip by clip and scores them over time (temporal stability, SGC).

    ``update`` is called once per sample in run order (samples of a clip arrive in
    ``frame_idx`` order); only the previous frame of the current clip is kept.
    ``state_dict`` / ``load_state_dict`` carry that state across a resumed run (JSON values and
    ndarrays), so a resumed run scores exactly as an uninterrupted one.
    """

    def update(self, sample: Sample, prediction: Any) -> None: ...

    def result(self) -> dict[str, Any]:
        """Return ``{"score": float | None, "pairs": int}``."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


# What a task's Temporal Stability compares frame to frame: depth maps or label maps.
TemporalKind = Literal["depth", "labels"]

# resolve(path_string, sample_id, key) -> absolute Path inside the dataset root.
PathResolver = Callable[[str, str, str], Path]
# check_entry(entry, resolve, rgb_size) -> None: a task's check of one entry's label values when the
# split is opened; rgb_size is the frame's (H, W) from its header. Raises ManifestError.
EntryCheck = Callable[[dict, PathResolver, tuple[int, int]], None]
# invoke(fn, sample) -> what a user's numpy function returns for that sample.
NumpyInvoke = Callable[[Callable[..., Any], Sample], Any]
# normalise(raw, sample) -> the task's prediction; raises AdapterError on a bad output.
NumpyNormalise = Callable[[Any, Sample], Any]
# align(prediction, ground_truth, mode) -> (the prediction the metrics score, {"scale", "shift"}: None when unfitted).
AlignPrediction = Callable[[Any, Any, str], tuple[Any, dict[str, float | None]]]


def call_with_frame(fn: Callable[..., Any], sample: Sample) -> Any:
    """The default numpy invocation: ``fn(sample.rgb)``."""
    return fn(sample.rgb)


def load_attribute(path: str) -> Any:
    """The object an internal import path ``package.module:attr`` names. Raises ConfigError if it is missing."""
    module_name, _, attribute = path.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"Cannot load {path!r}: {exc}.",
            hint="a task spec names a hook that does not exist; reinstall rpx-tasks or fix the spec",
        ) from exc


@dataclass(frozen=True)
class TaskSpec:
    """Everything the pipeline needs to know about one RPX task.

    - ``modalities``: Hub modalities to download (keys of ``hub.MODALITY_FILES``);
      ``optional_modalities`` are fetched only when an option needs them (e.g. depth for SGC).
    - ``required_keys``: manifest sample keys besides ``id`` and ``rgb`` that must be present (a clip
      task's: the keys of its clip entries, which have no ``rgb``).
    - ``load_ground_truth(entry, resolve)``: decode the labels of one manifest entry.
    - ``check_entry(entry, resolve, rgb_size)``: check one entry's label values against their
      domain when the split is opened, before any model is loaded (cheap: small label files are
      read, label maps by their headers only); raises ManifestError naming sample, field and value.
      ``rpx_tasks.entry_checks`` has the shared helpers; None checks nothing beyond the common fields.
    - ``validate_prediction(prediction, sample)``: the prediction normalised, or ModelError.
    - ``compute_metrics(prediction, ground_truth)``: a pure function of ``rpx_tasks.metrics``
      returning metric name -> float (None when undefined for the sample).
    - ``metrics``: every metric the task can emit, in report order; ``primary_metric`` ranks models.
    - ``numpy_signature``: the numpy function ``--model pkg.mod:fn`` must have (shown in hints);
      ``numpy_invoke(fn, sample)`` calls it, ``numpy_normalise(raw, sample)`` turns its output
      into a prediction. The adapter itself is generic (``models.numpy_function``).
      ``numpy_inputs`` names the positional inputs ``numpy_invoke`` always passes, in order
      (default ``("rgb",)``); ``numpy_optional_inputs`` those it passes only when the function
      takes them, positionally after ``numpy_inputs`` or by keyword (open vocabulary:
      ``("vocabulary",)``). Run validation binds them to the function's signature
      (``models.import_path.check_callable``), so a function of the wrong arity fails before download.
      ``numpy_legacy_inputs`` is another positional input list ``numpy_invoke`` also calls a
      function with (an older signature; novel_view_synthesis: ``("rgb", "target_pose")``), or None.
    - ``hf_loader``: import path of the ``--hf-checkpoint`` fast path, or None.
    - ``temporal``: what Temporal Stability compares — ``"depth"`` (depth maps), ``"labels"``
      (label maps) — or None when the task has none; ``geometric_coherence``: whether the task
      supports SGC (``--sgc``). ``rpx_tasks.readiness`` maps both to its accumulators.
    - ``models``: the task's registry entries, at least one weight-free baseline first among
      its ``import`` entries (that one is ``--model baseline``).
    - ``sample_entry(frame)``: the manifest entry of one built-in sample frame, or None to skip
      it (see ``rpx_tasks.sample_data``).
    - ``settle_vocabulary(split, override)``: for tasks whose model receives a vocabulary, called
      once when the split is opened; gives every entry the ``vocabulary`` its model receives and
      returns the record result.json keeps (``rpx_tasks.contracts.vocabulary``). None for tasks
      without one, which then reject ``--vocabulary``.
    - ``phi_metrics``: the metric vector Φ and J_min summarise (reference §8.7-8.8), each with a
      ``contracts.metric_specs.MetricSpec``; empty when the task has none (Φ and J_min are then null).
    - ``align_prediction(prediction, ground_truth, mode)``: for depth tasks, the relative-depth
      alignment (``rpx_tasks.metrics.depth_alignment``) the scorer applies before
      ``compute_metrics`` when the run's alignment is not ``none``; returns the aligned prediction
      and its fit ``{"scale", "shift"}`` (both None when the fit is degenerate: the prediction is
      scored as it is). None for tasks without one, which then reject ``--alignment``.
    - ``clip``: for a task whose unit is a whole (scene, phase) clip (video depth), how its clip entries
      become frames and how a clip is scored (``rpx_tasks.contracts.clips.ClipUnit``); None for frame tasks.
      A clip task's ``load_ground_truth``, ``check_entry`` and ``validate_prediction`` see one frame.
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
    numpy_signature: str
    numpy_normalise: NumpyNormalise
    numpy_invoke: NumpyInvoke = call_with_frame
    numpy_inputs: tuple[str, ...] = ("rgb",)
    numpy_optional_inputs: tuple[str, ...] = ()
    numpy_legacy_inputs: tuple[str, ...] | None = None
    hf_loader: str | None = None
    temporal: TemporalKind | None = None
    geometric_coherence: bool = False
    optional_modalities: tuple[str, ...] = ()
    models: tuple[ModelEntry, ...] = ()
    sample_entry: Callable[[SampleFrame], dict | None] | None = None
    check_entry: EntryCheck | None = None
    settle_vocabulary: VocabularyHook | None = None
    phi_metrics: tuple[str, ...] = ()
    align_prediction: AlignPrediction | None = None
    clip: ClipUnit | None = None

    @property
    def metric_names(self) -> list[str]:
        """The metric names in report order."""
        return [m.name for m in self.metrics]

    def higher_is_better(self, metric: str) -> bool:
        """Direction of ``metric``. Raises MetricError for a metric the task does not emit."""
        for info in self.metrics:
            if info.name == metric:
                return info.higher_is_better
        raise MetricError(f"Task {self.name} has no metric {metric!r}.", hint=f"Known: {self.metric_names}")

    def hf_fast_path(self, checkpoint: str) -> Callable[..., Model]:
        """The task's HF fast-path loader, imported but not called (``checkpoint`` is named in the error).

        Raises ConfigError when the task has no fast path.
        """
        if self.hf_loader is None:
            raise ConfigError(
                f"{self.name} has no --hf-checkpoint fast path yet.",
                hint="wrap your model as a numpy function and pass --model package.module:function; "
                f"expected: {self.numpy_signature}",
                details={"task": self.name, "checkpoint": checkpoint},
            )
        return load_attribute(self.hf_loader)

    def load_hf_model(self, checkpoint: str, **kwargs: Any) -> Model:
        """The task's HF fast-path model for ``checkpoint`` (kwargs go to the loader).

        Raises ConfigError when the task has no fast path, and whatever the loader raises.
        """
        return self.hf_fast_path(checkpoint)(checkpoint, **kwargs)
