"""Which model a run uses: the model registry (every task's declared models) and the one rule
that turns a run's model selector into a Model.

A run names its model by exactly one selector (:func:`check_one_selector`):

- ``model``: a Python object, made a Model by ``models.import_path.model_from_callable``;
- ``model_name``: an import path ``package.module:callable`` when it contains ':', else a
  registry name (``rpx models``), or ``baseline`` for the task's default weight-free baseline;
  an ``hf`` entry goes through the task's HF fast path, an ``import`` entry through its import path;
- ``hf_checkpoint``: the task's HF fast path (``TaskSpec.load_hf_model``).

:func:`check_model_selection` checks the selector against the run's task without building
anything or loading weights (``RunConfig`` calls it, so ``rpx bench``, flow ``rpx-bench`` and
``bench.run_bench`` stop before any download): a registry name must exist and be of the task; an
import path must import, name a callable or a Model, and its signature must fit (see
``models.import_path.check_callable``); an HF checkpoint needs the task's fast path, a
well-formed id, and model kwargs that loader accepts (``models.hf_loading.check_loader_kwargs``).
:func:`resolve_model` applies the same checks, then builds the model.

The registry is read from the task specs (``TaskSpec.models``); :func:`register_model` adds
entries of models defined outside the package. This module sits above tasks and models.
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass
from typing import Any, Literal

from rpx_tasks.contracts.model import Model
from rpx_tasks.contracts.spec import ModelEntry, TaskSpec
from rpx_tasks.errors import ConfigError
from rpx_tasks.metrics.depth_alignment import ALIGNMENT_MODES
from rpx_tasks.models.hf_execution import ExecutionOptions
from rpx_tasks.models.hf_loading import check_checkpoint_id, check_loader_kwargs
from rpx_tasks.models.import_path import check_callable, is_import_path, load_import_path, model_from_callable
from rpx_tasks.tasks import get_task, iter_tasks

KINDS = ("hf", "import")
# ``--model baseline`` names the task's default weight-free baseline (its first import entry).
BASELINE_ALIAS = "baseline"

_EXTRA: dict[str, ModelEntry] = {}


def _check_entry(entry: ModelEntry) -> None:
    if not entry.name or ":" in entry.name or entry.name == BASELINE_ALIAS:
        raise ConfigError(
            f"Invalid model name {entry.name!r}.",
            hint="registry names are plain words like depth_pro; ':' marks an import path",
        )
    if entry.kind not in KINDS:
        raise ConfigError(f"Model {entry.name!r} has unknown kind {entry.kind!r}.", hint=f"use one of {list(KINDS)}")
    if entry.kind == "import" and ":" not in entry.target:
        raise ConfigError(
            f"Model {entry.name!r} has import target {entry.target!r} without ':'.",
            hint="an import target is package.module:callable",
        )
    if entry.alignment not in ALIGNMENT_MODES:
        raise ConfigError(
            f"Model {entry.name!r} has unknown alignment {entry.alignment!r}.",
            hint=f"use one of {list(ALIGNMENT_MODES)}",
        )
    if entry.alignment != "none" and get_task(entry.task).align_prediction is None:
        raise ConfigError(
            f"Model {entry.name!r} defaults to alignment {entry.alignment!r}, but {entry.task} does not align.",
            hint="only depth tasks (monocular_depth) take an alignment; leave it at 'none'",
        )


def _registry() -> dict[str, ModelEntry]:
    entries: dict[str, ModelEntry] = {}
    for spec in iter_tasks():
        for entry in spec.models:
            _check_entry(entry)
            if entry.name in entries:
                raise ConfigError(
                    f"Model {entry.name!r} is declared twice.", hint="model names are unique across tasks"
                )
            entries[entry.name] = entry
    return {**entries, **_EXTRA}


def register_model(entry: ModelEntry) -> ModelEntry:
    """Add a model defined outside the task specs and return it.

    Raises ConfigError when the name is taken, empty, ``baseline`` or contains ':' (that marks
    an import path), when the kind is not 'hf' or 'import', or when an import entry's target is
    not ``package.module:callable``.
    """
    _check_entry(entry)
    existing = _registry().get(entry.name)
    if existing is not None:
        raise ConfigError(
            f"Model {entry.name!r} is already registered.",
            hint="pick another name",
            details={"existing": existing.target},
        )
    _EXTRA[entry.name] = entry
    return entry


def list_models(task: str | None = None) -> list[ModelEntry]:
    """The registered entries (all, or those of ``task``): task by task, in declaration order."""
    return [entry for entry in _registry().values() if task is None or entry.task == task]


def get_entry(name: str, task: str | None = None) -> ModelEntry:
    """The entry registered as ``name``.

    Raises ConfigError "Unknown model 'x'." with a did-you-mean: the closest name (of ``task``'s
    models first, when given), else the models of ``task`` (or every registered model).
    """
    registry = _registry()
    if name in registry:
        return registry[name]
    names = list(registry)
    shown = [n for n in names if registry[n].task == task] if task else names
    close = difflib.get_close_matches(name, shown, n=1) or difflib.get_close_matches(name, names, n=1)
    if close:
        suggestion = f"did you mean {close[0]!r}? {task + ' models' if task else 'registered models'}: "
    else:
        suggestion = f"did you mean one of the {task + ' models' if task else 'registered models'}: "
    raise ConfigError(
        f"Unknown model {name!r}.",
        hint=f"{suggestion}{', '.join(shown)} (`rpx models` describes every task's); "
        "or pass an import path package.module:callable",
        details={"registered": names},
    )


def default_baseline(task: str) -> ModelEntry:
    """The task's default weight-free baseline: its first ``import`` entry. Raises ConfigError if none."""
    for entry in list_models(task):
        if entry.kind == "import":
            return entry
    raise ConfigError(f"Task {task!r} registers no weight-free baseline.", hint="pass --model NAME or an import path")


def check_one_selector(model: object | None, model_name: str | None, hf_checkpoint: str | None, owner: str) -> str:
    """The name of the one model selector that is set. Raises ConfigError naming ``owner`` otherwise."""
    selectors = {"model": model, "model_name": model_name, "hf_checkpoint": hf_checkpoint}
    given = [name for name, value in selectors.items() if value is not None and value != ""]
    if len(given) != 1:
        raise ConfigError(
            f"{owner} requires exactly one of `model`, `model_name`, or `hf_checkpoint`"
            + (f"; got {', '.join(given)}." if given else "; got none."),
            hint="pick a registered model (`rpx models` lists them) or an import path package.module:callable "
            "with --model, or a Hugging Face checkpoint id with --hf-checkpoint — not both",
            details={"given_fields": given},
        )
    return given[0]


@dataclass(frozen=True)
class _Selection:
    """What a run's model selector names, checked against the task but not built."""

    kind: Literal["callable", "hf"]
    target: Any  # the object an import path or ``model=`` gives, or a checkpoint id
    name: str | None  # the display name: registry name, import path attribute, checkpoint id


def _entry_for_task(task_spec: TaskSpec, model_name: str) -> ModelEntry:
    """The registry entry ``model_name`` (``baseline``: the task's). Raises ConfigError: unknown, or another task's."""
    entry = default_baseline(task_spec.name) if model_name == BASELINE_ALIAS else get_entry(model_name, task_spec.name)
    if entry.task != task_spec.name:
        raise ConfigError(
            f"Model {entry.name!r} is a {entry.task} model, but this run is {task_spec.name}.",
            hint=f"`rpx models` lists the {task_spec.name} models",
            details={"model_task": entry.task, "run_task": task_spec.name},
        )
    return entry


def _select(task_spec: TaskSpec, model_name: str | None, hf_checkpoint: str | None, model: object | None) -> _Selection:
    """What the one given selector names (import paths imported). Raises ConfigError."""
    selector = check_one_selector(model, model_name, hf_checkpoint, "A run")
    if selector == "model":
        return _Selection("callable", model, None)
    if selector == "hf_checkpoint":
        return _Selection("hf", hf_checkpoint, hf_checkpoint)
    if is_import_path(model_name):
        return _Selection("callable", load_import_path(model_name), model_name.split(":", 1)[1].rsplit(".", 1)[-1])
    entry = _entry_for_task(task_spec, model_name)
    if entry.kind == "hf":
        return _Selection("hf", entry.target, entry.name)
    return _Selection("callable", load_import_path(entry.target), entry.name)


def _checked_selection(
    task_spec: TaskSpec,
    model_name: str | None,
    hf_checkpoint: str | None,
    model: object | None,
    model_kwargs: dict[str, Any],
    execution: ExecutionOptions | None = None,
) -> _Selection:
    selection = _select(task_spec, model_name, hf_checkpoint, model)
    if selection.kind == "hf":
        loader = task_spec.hf_fast_path(selection.target)
        check_checkpoint_id(selection.target)
        owner = f"the {task_spec.name} HF fast path (checkpoint {selection.target!r})"
        check_loader_kwargs(loader, model_kwargs, owner=owner)
        if execution is not None and not execution.is_default and not _takes_execution(loader):
            raise ConfigError(
                f"--precision / --compile are not supported by {owner}.",
                hint="leave --precision at fp32 and drop --compile for this task",
                details={"precision": execution.precision, "compile": execution.compile},
            )
    else:
        check_callable(selection.target, task_spec=task_spec, name=selection.name, model_kwargs=model_kwargs)
        if execution is not None and not execution.is_default:
            raise ConfigError(
                "--precision and --compile apply to the HF fast paths (--hf-checkpoint or an hf registry model); "
                f"{selection.name or 'this model'} runs as its own code.",
                hint="use --hf-checkpoint, or apply autocast / torch.compile inside your model",
                details={"precision": execution.precision, "compile": execution.compile},
            )
    return selection


def _takes_execution(loader: Any) -> bool:
    """True when an HF fast-path loader accepts the run's ``execution`` options."""
    try:
        return "execution" in inspect.signature(loader).parameters
    except (TypeError, ValueError):
        return False


def check_model_selection(
    task_spec: TaskSpec,
    *,
    model_name: str | None = None,
    hf_checkpoint: str | None = None,
    model: object | None = None,
    model_kwargs: dict[str, Any] | None = None,
    execution: ExecutionOptions | None = None,
) -> None:
    """Check the run's model without building it, loading weights or touching the network.

    Exactly one of ``model``, ``model_name`` (registry name, ``baseline`` or import path) and
    ``hf_checkpoint`` must be given. A registry name must exist (did-you-mean otherwise) and be
    of ``task_spec``'s task; an import path must import and name a callable or a Model whose
    signature fits (``models.import_path.check_callable``); an HF checkpoint (or ``hf`` entry)
    needs the task's fast path, a well-formed id or existing folder, and ``model_kwargs`` its
    loader accepts (``models.hf_loading.check_loader_kwargs``). Imports the user's module, never
    torch or transformers.

    ``execution`` (precision, compile) other than the default needs an HF fast path that takes it.

    Raises ConfigError for each of those mistakes; ModelError for a built Model of another task
    or an import path naming something that is neither callable nor a Model.
    """
    _checked_selection(task_spec, model_name, hf_checkpoint, model, dict(model_kwargs or {}), execution)


def resolve_model(
    task_spec: TaskSpec,
    *,
    model_name: str | None = None,
    hf_checkpoint: str | None = None,
    model: object | None = None,
    device: str = "cpu",
    model_kwargs: dict[str, Any] | None = None,
    cache_dir: str | None = None,
    revision: str | None = None,
    execution: ExecutionOptions | None = None,
) -> Model:
    """Build the Model selected by exactly one of ``model``, ``model_name`` or ``hf_checkpoint``.

    ``model_kwargs`` go to the factory or HF loader; ``cache_dir``, ``revision`` and ``execution`` (precision,
    compile: ``models.hf_execution``) to the HF loader. Returns a Model of ``task_spec``'s task, not yet set
    up (the runner calls ``setup()``). The display name is the registry name, the import path's attribute
    name, or the checkpoint id.

    Raises ConfigError for what :func:`check_model_selection` rejects; ModelError (from the
    loaders) when the model cannot be built or is for another task.
    """
    kwargs = dict(model_kwargs or {})
    selection = _checked_selection(task_spec, model_name, hf_checkpoint, model, kwargs, execution)
    if selection.kind == "hf":
        if execution is not None and _takes_execution(task_spec.hf_fast_path(selection.target)):
            kwargs["execution"] = execution
        return task_spec.load_hf_model(
            selection.target, device=device, name=selection.name, cache_dir=cache_dir, revision=revision, **kwargs
        )
    return model_from_callable(
        selection.target, task_spec=task_spec, name=selection.name, device=device, model_kwargs=kwargs
    )
