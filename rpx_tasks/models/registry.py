"""The model registry behind ``--model NAME`` and ``rpx models``.

An entry names a model for one task and says how to build it: ``kind="hf"`` loads the HF
checkpoint ``target`` through the task's ``--hf-checkpoint`` fast path; ``kind="import"``
loads the import path ``target`` (``package.module:callable``, see ``import_path``). Entries
for new tasks are added with :func:`register_model`; nothing else changes.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from rpx_tasks.errors import ConfigError

KINDS = ("hf", "import")


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: its name, task, how to build it (kind, target) and a one-line description."""

    name: str
    task: str
    kind: str
    target: str
    description: str = ""


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(entry: ModelEntry) -> ModelEntry:
    """Add ``entry`` to the registry and return it.

    Raises ConfigError when the name is taken, is empty or contains ':' (that marks an import
    path), when the kind is not 'hf' or 'import', or when an import entry's target is not
    ``package.module:callable``.
    """
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
    if entry.name in _REGISTRY:
        raise ConfigError(
            f"Model {entry.name!r} is already registered.",
            hint="pick another name",
            details={"existing": _REGISTRY[entry.name].target},
        )
    _REGISTRY[entry.name] = entry
    return entry


def list_models(task: str | None = None) -> list[ModelEntry]:
    """The registered entries (all, or those of ``task``), in registration order."""
    _load_task_models()
    return [entry for entry in _REGISTRY.values() if task is None or entry.task == task]


def get_entry(name: str) -> ModelEntry:
    """The entry registered as ``name``.

    Raises ConfigError "Unknown model 'x'." with a did-you-mean suggestion and the list of
    registered names.
    """
    _load_task_models()
    if name in _REGISTRY:
        return _REGISTRY[name]
    names = list(_REGISTRY)
    close = difflib.get_close_matches(name, names, n=1)
    suggestion = f"did you mean {close[0]!r}? " if close else ""
    raise ConfigError(
        f"Unknown model {name!r}.",
        hint=f"{suggestion}registered models: {', '.join(names)} (`rpx models` describes them); "
        "or pass an import path package.module:callable",
        details={"registered": names},
    )


# ``--model baseline`` names the task's default weight-free baseline (its first import entry).
BASELINE_ALIAS = "baseline"


def default_baseline(task: str) -> ModelEntry:
    """The task's default weight-free baseline: its first registered ``import`` entry.

    Raises ConfigError when the task registers none.
    """
    for entry in list_models(task):
        if entry.kind == "import":
            return entry
    raise ConfigError(f"Task {task!r} registers no weight-free baseline.", hint="pass --model NAME or an import path")


_TASK_MODELS_LOADED = False


def _load_task_models() -> None:
    """Register every task's own entries (``TaskSpec.models``) once, on first use."""
    global _TASK_MODELS_LOADED
    if _TASK_MODELS_LOADED:
        return
    from rpx_tasks.tasks import iter_tasks

    for spec in iter_tasks():
        for entry in spec.models:
            if _REGISTRY.get(entry.name) != entry:
                register_model(entry)
    _TASK_MODELS_LOADED = True


__all__ = ["BASELINE_ALIAS", "KINDS", "ModelEntry", "default_baseline", "get_entry", "list_models", "register_model"]
