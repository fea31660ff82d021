"""Run configuration, validated at construction: every mistake surfaces before any download."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rpx_tasks.alignment_record import check_alignment_option
from rpx_tasks.constants import (
    CHECKPOINT_EVERY_SAMPLES,
    CHECKPOINT_EVERY_SECONDS,
    DEFAULT_SPLIT,
    SPLITS,
    default_repo_id,
    default_revision,
)
from rpx_tasks.contracts.clips import FrameSelection
from rpx_tasks.contracts.model import Model
from rpx_tasks.contracts.vocabulary import VocabularyOverride, parse_vocabulary_option
from rpx_tasks.cpu_budget import check_environment
from rpx_tasks.device import check_device_string
from rpx_tasks.errors import ConfigError
from rpx_tasks.model_selection import BASELINE_ALIAS, check_model_selection, check_one_selector, default_baseline
from rpx_tasks.models.hf_execution import ExecutionOptions, check_precision
from rpx_tasks.sample_data.builtin import check_covered, is_builtin
from rpx_tasks.sharding import parse_shard
from rpx_tasks.tasks import get_task


def _check_positive_int(name: str, value: Any, *, optional: bool) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"{name} must be an integer >= 1, got {value!r}.", hint=f"pass --{name.replace('_', '-')} 1 or more"
        )


def _checked_vocabulary(vocabulary: str | list[str] | None, task: str) -> VocabularyOverride | None:
    """The parsed ``vocabulary`` override (phrases or ``frame-labels``), read from its file now.

    Raises ConfigError for a task without a vocabulary, an empty value, a missing file or one
    that is not a list of strings.
    """
    if vocabulary is None:
        return None
    if get_task(task).settle_vocabulary is None:
        raise ConfigError(
            f"{task} takes no vocabulary, but vocabulary={vocabulary!r} was given.",
            hint="drop --vocabulary: only open-vocabulary tasks (e.g. open_vocab_detection) use one",
            details={"task": task},
        )
    return parse_vocabulary_option(vocabulary)


def _check_manifest(manifest: str | None, task: str) -> None:
    """Raise ConfigError for a manifest file that does not exist, or built-in sample data the task lacks."""
    if manifest is None:
        return
    if is_builtin(manifest):
        check_covered(task)
        return
    if not Path(manifest).is_file():
        raise ConfigError(
            f"Manifest file not found: {manifest}",
            hint="pass an existing manifest JSON with --manifest, or drop --manifest to download the split",
        )


@dataclass
class RunConfig:
    """One (task, model, split) run.

    Exactly one model selector: ``model`` (library use: a Model object, a factory that returns
    one, or a numpy function of the task's signature, as ``resolve_model`` accepts),
    ``model_name`` (a registry name, ``baseline`` for the task's weight-free baseline, or an
    import path ``package.module:callable``) or ``hf_checkpoint`` (a Hugging Face checkpoint
    id). ``manifest`` runs a local manifest as is (``split`` then only names the output), or
    ``"builtin:sample"`` the built-in procedural sample data of ``split``; otherwise the split
    is downloaded from ``repo_id`` at ``revision``. ``vocabulary`` (open-vocabulary tasks)
    overrides the vocabulary every sample's model receives: a list of phrases, or a string
    ``"a,b"``, ``"@FILE"`` or ``"frame-labels"`` (``rpx_tasks.contracts.vocabulary``), parsed at
    construction (a file is read then). ``alignment`` (depth tasks): the relative-depth alignment
    (``none``, ``ls_affine``, ``ls_disparity``; reference §1.4) applied before the depth metrics; None
    applies the registry model's default (``rpx_tasks.alignment_record.resolve_alignment``).
    ``frame_budget``, ``sampling`` and ``fscore`` (clip tasks: video_depth): at most ``frame_budget``
    frames per clip, the first ones (``all``) or every k-th (``stride``); ``fscore`` adds fscore_5cm.
    Raises ConfigError at construction for any invalid value.

    The model is checked at construction too, with nothing downloaded and no weights loaded
    (``model_selection.check_model_selection``: registry name, import path and its signature,
    HF fast path, model kwargs); a built model of another task raises ModelError.

    ``precision`` (``fp32``, ``bf16``, ``fp16``: autocast) and ``compile`` (``torch.compile``) choose how an
    HF fast path runs (``models.hf_execution``; other models refuse them); fp16 with ``device="cpu"`` is a
    ConfigError (a CUDA device that falls back to the CPU fails when the model is set up). ``num_workers``:
    the decoding workers (``rpx_tasks.cpu_budget``; None sizes them from the cores available).

    ``resume`` (default): resume the newest incomplete run of the same fingerprint
    (``rpx_tasks.run_record``); False (``--no-resume``) starts afresh. The run commits its rows and
    state every ``checkpoint_every`` samples or ``checkpoint_seconds`` seconds, whichever comes first.

    ``shard`` (``"i/K"``, ``--shard``): run only shard i of K of the split, whole clips balanced by frame
    count (``rpx_tasks.sharding``); part of the fingerprint, and its runs get their own results folder.
    """

    task: str
    split: str = DEFAULT_SPLIT
    model: Model | Callable[..., Any] | None = None
    model_name: str | None = None
    hf_checkpoint: str | None = None
    repo_id: str | None = None
    revision: str | None = None
    cache_dir: str | None = None
    manifest: str | None = None
    max_samples: int | None = None
    shard: str | None = None
    batch_size: int = 1
    device: str = "cuda"
    require_cuda: bool = False
    output_dir: str | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    count_flops: bool = True
    temporal_stability: bool = True
    geometric_coherence: bool = False
    vocabulary: str | list[str] | None = None
    alignment: str | None = None
    frame_budget: int | None = None
    sampling: str = "all"
    fscore: bool = False
    resume: bool = True
    checkpoint_every: int = CHECKPOINT_EVERY_SAMPLES
    checkpoint_seconds: float = CHECKPOINT_EVERY_SECONDS
    precision: str = "fp32"
    compile: bool = False
    num_workers: int | None = None

    def __post_init__(self) -> None:
        get_task(self.task)
        check_one_selector(self.model, self.model_name, self.hf_checkpoint, owner=type(self).__name__)
        if self.model_name == BASELINE_ALIAS:
            # Reports, output folders and artifact keys name the real model.
            self.model_name = default_baseline(self.task).name
        if self.split not in SPLITS:
            close = difflib.get_close_matches(str(self.split), SPLITS, n=1)
            raise ConfigError(
                f"Unknown difficulty split {self.split!r}.",
                hint=f"Use one of: {list(SPLITS)}" + (f" (did you mean {close[0]!r}?)" if close else ""),
            )
        _check_positive_int("batch_size", self.batch_size, optional=False)
        _check_positive_int("max_samples", self.max_samples, optional=True)
        if self.shard is not None:
            self.shard = str(parse_shard(self.shard))
        _check_positive_int("checkpoint_every", self.checkpoint_every, optional=False)
        if (
            isinstance(self.checkpoint_seconds, bool)
            or not isinstance(self.checkpoint_seconds, (int, float))
            or not (self.checkpoint_seconds > 0)
        ):
            raise ConfigError(
                f"checkpoint_seconds must be a number > 0, got {self.checkpoint_seconds!r}.",
                hint="e.g. 60 (commit the run's rows at least once a minute)",
            )
        check_device_string(self.device)
        check_precision(self.precision, self.device if self.device == "cpu" else None)
        check_environment()  # RPX_TORCH_THREADS, RPX_HELPER_PRIORITY
        if not isinstance(self.compile, bool):
            raise ConfigError(f"compile must be true or false, got {self.compile!r}.", hint="pass --compile or not")
        if self.num_workers is not None and (
            isinstance(self.num_workers, bool) or not isinstance(self.num_workers, int) or self.num_workers < 0
        ):
            raise ConfigError(
                f"num_workers must be an integer >= 0, got {self.num_workers!r}.",
                hint="e.g. --num-workers 2 (0: decode on the loop's thread); leave it out to size it from the cores",
            )
        _check_manifest(self.manifest, self.task)
        if self.repo_id is not None and not self.repo_id.strip():
            raise ConfigError("repo_id is empty.", hint="pass --repo ORG/NAME or a local mirror directory")
        if not isinstance(self.model_kwargs, dict):
            raise ConfigError("model_kwargs must be a dict.", hint='e.g. {"dtype": "float16"}')
        # The model itself, before anything is downloaded or loaded (no weights, no network).
        check_model_selection(
            get_task(self.task),
            model=self.model,
            model_name=self.model_name,
            hf_checkpoint=self.hf_checkpoint,
            model_kwargs=self.model_kwargs,
            execution=self.execution,
        )
        self.vocabulary = _checked_vocabulary(self.vocabulary, self.task)
        self.alignment = check_alignment_option(self.alignment, self.task)
        self.frame_selection  # noqa: B018 - checks frame_budget, sampling and fscore

    @property
    def frame_selection(self) -> FrameSelection | None:
        """The frames of each clip the run scores (clip tasks), None for a frame task. Raises ConfigError
        for clip options given to a frame task, a budget below 1 or ``stride`` without a budget."""
        if get_task(self.task).clip is None:
            given = [
                option
                for option, value in (
                    ("--frame-budget", self.frame_budget),
                    ("--sampling", None if self.sampling == "all" else self.sampling),
                    ("--fscore", self.fscore or None),
                )
                if value is not None
            ]
            if given:
                raise ConfigError(
                    f"{self.task} scores single frames: {', '.join(given)} only apply to clip tasks (video_depth).",
                    hint=f"drop {', '.join(given)}",
                )
            return None
        if not isinstance(self.fscore, bool):
            raise ConfigError(
                f"fscore must be true or false, got {self.fscore!r}.", hint="pass --fscore or leave it out"
            )
        return FrameSelection(self.frame_budget, self.sampling)

    @property
    def execution(self) -> ExecutionOptions:
        """The HF fast path's execution choices of this run (precision, compile)."""
        return ExecutionOptions(precision=self.precision, compile=self.compile)

    @property
    def effective_repo_id(self) -> str:
        """Return the dataset repo: the config's, else ``RPX_HF_REPO``, else the pinned default."""
        return self.repo_id or default_repo_id()

    @property
    def effective_revision(self) -> str:
        """Return the dataset revision: the config's, else ``RPX_HF_REVISION``, else the pinned commit."""
        return self.revision or default_revision()

    @property
    def display_name(self) -> str:
        """Return the model's name in reports and output paths."""
        if self.model_name:
            return self.model_name
        if self.hf_checkpoint:
            return self.hf_checkpoint
        return getattr(self.model, "name", None) or "model"

    @property
    def results_path(self) -> Path:
        """Return the results folder of this model and split, ``./rpx_results/<model with / -> __>/<split>/``:
        one folder per run below it, and ``latest`` naming the newest complete one. A shard run's is the
        ``shard-<i>of<K>/`` folder below that: shards never become the split's ``latest``."""
        return results_path_for(self.display_name, self.split, self.shard)

    @property
    def output_path(self) -> Path:
        """Return ``output_dir`` (the run folder itself), or ``results_path``, below which each run gets
        its own folder ``<run id>/`` (``rpx_tasks.run_record.begin_run``)."""
        if self.output_dir:
            return Path(self.output_dir)
        return self.results_path


def results_path_for(model: str, split: str, shard: str | None = None) -> Path:
    """Return the default results folder of a model (its name in reports) and split,
    ``./rpx_results/<model with / -> __>/<split>/``, or a shard's ``.../<split>/shard-<i>of<K>/``.
    Raises ConfigError for a malformed ``shard``."""
    safe = model.replace("/", "__").replace(os.sep, "__")
    folder = Path("rpx_results") / safe / split
    return folder / parse_shard(shard).slug if shard is not None else folder
