"""Which model a run uses: the model registry (every task's declared models) and the one rule
that turns a run's model selector into a Model.

A run names its model by exactly one selector (:func:`check_one_selector`):

- ``model``: a Python object, made a Model by ``models.import_path.model_from_callable``;
- ``model_name``: an import path ``package.module:callable`` when it contains ':', else a
  registry name (``rpx models``), or ``baseline`` for the task's default weight-free baseline;
  an ``hf`` entry goes through the task's HF fast path, an ``import`` entry through its import path;
- ``hf_checkpoint``: the task's HF fast path (``TaskSpec.load_hf_model``).

The registry is read from the task specs (``TaskSpec.models``); :func:`register_model` adds
entries of models defined outside the package. This module sits above tasks and models.
"""

from __future__ import annotations

import difflib
from typing import Any

from rpx_tasks.contracts.model import Model
from rpx_tasks.contracts.spec import ModelEntry, TaskSpec
from rpx_tasks.errors import ConfigError
from rpx_tasks.models.import_path import is_import_path, load_import_path, model_from_callable
from rpx_tasks.tasks import iter_tasks

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


def get_entry(name: str) -> ModelEntry:
    """The entry registered as ``name``. Raises ConfigError "Unknown model 'x'." with a did-you-mean."""
    registry = _registry()
    if name in registry:
        return registry[name]
    names = list(registry)
    close = difflib.get_close_matches(name, names, n=1)
    suggestion = f"did you mean {close[0]!r}? " if close else ""
    raise ConfigError(
        f"Unknown model {name!r}.",
        hint=f"{suggestion}registered models: {', '.join(names)} (`rpx models` describes them); "
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
) -> Model:
    """Build the Model selected by exactly one of ``model``, ``model_name`` or ``hf_checkpoint``.

    ``model_kwargs`` go to the factory or HF loader; ``cache_dir`` and ``revision`` to the HF
    loader. Returns a Model of ``task_spec``'s task, not yet set up (the runner calls ``setup()``).
    The display name is the registry name, the import path's attribute name, or the checkpoint id.

    Raises ConfigError when not exactly one selector is given, the registry name is unknown or
    is for another task, the import path is bad, or the task has no HF fast path; ModelError
    (from the loaders) when the model cannot be built or is for another task.
    """
    selector = check_one_selector(model, model_name, hf_checkpoint, "A run")
    kwargs = dict(model_kwargs or {})
    if selector == "model":
        return model_from_callable(model, task_spec=task_spec, name=None, device=device, model_kwargs=kwargs)
    if selector == "hf_checkpoint":
        return task_spec.load_hf_model(
            hf_checkpoint, device=device, name=hf_checkpoint, cache_dir=cache_dir, revision=revision, **kwargs
        )
    if is_import_path(model_name):
        name = model_name.split(":", 1)[1].rsplit(".", 1)[-1]
        return model_from_callable(
            load_import_path(model_name), task_spec=task_spec, name=name, device=device, model_kwargs=kwargs
        )
    entry = default_baseline(task_spec.name) if model_name == BASELINE_ALIAS else get_entry(model_name)
    if entry.task != task_spec.name:
        raise ConfigError(
            f"Model {entry.name!r} is a {entry.task} model, but this run is {task_spec.name}.",
            hint=f"`rpx models` lists the {task_spec.name} models",
            details={"model_task": entry.task, "run_task": task_spec.name},
        )
    if entry.kind == "hf":
        return task_spec.load_hf_model(
            entry.target, device=device, name=entry.name, cache_dir=cache_dir, revision=revision, **kwargs
        )
    return model_from_callable(
        load_import_path(entry.target), task_spec=task_spec, name=entry.name, device=device, model_kwargs=kwargs
    )
