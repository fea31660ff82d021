"""Turn the run's model selector (``model`` / ``model_name`` / ``hf_checkpoint``) into a Model.

- ``model``: a Python object, made a Model by ``import_path.model_from_callable``.
- ``model_name``: an import path ``package.module:callable`` when it contains ':', else a
  registry name (``rpx models``), or ``baseline`` for the task's default weight-free baseline; an "hf" entry goes through the task's HF fast path, an
  "import" entry through its import path.
- ``hf_checkpoint``: the task's HF fast path (``TaskSpec.load_hf_model``).

The display name is the registry name, the import path's attribute name, or the checkpoint id
(a ``model`` object keeps its own). The model is returned without ``setup()``: the runner
calls it once.
"""

from __future__ import annotations

from typing import Any

from rpx_tasks.errors import ConfigError
from rpx_tasks.models.import_path import is_import_path, load_import_path, model_from_callable
from rpx_tasks.models.registry import BASELINE_ALIAS, default_baseline, get_entry


def resolve_model(
    task_spec: Any,
    *,
    model_name: str | None = None,
    hf_checkpoint: str | None = None,
    model: object | None = None,
    device: str = "cpu",
    model_kwargs: dict[str, Any] | None = None,
    cache_dir: str | None = None,
    revision: str | None = None,
) -> Any:
    """Build the Model selected by exactly one of ``model``, ``model_name`` or ``hf_checkpoint``.

    ``model_kwargs`` go to the factory or HF loader; ``cache_dir`` and ``revision`` to the HF
    loader. Returns a Model of ``task_spec``'s task (not yet set up).

    Raises ConfigError when not exactly one selector is given, the registry name is unknown or
    is for another task, the import path is bad, or the task has no HF fast path; ModelError
    (from the loaders) when the model cannot be built or is for another task.
    """
    given = {
        "model": model is not None,
        "model_name": bool(model_name),
        "hf_checkpoint": bool(hf_checkpoint),
    }
    if sum(given.values()) != 1:
        raise ConfigError(
            "Exactly one of `model`, `model_name` or `hf_checkpoint` is required.",
            hint="pick a registered model (`rpx models` lists them), an import path package.module:callable, "
            "or an HF checkpoint id",
            details={"given_fields": [field for field, set_ in given.items() if set_]},
        )
    model_kwargs = dict(model_kwargs or {})

    if model is not None:
        return model_from_callable(model, task_spec=task_spec, name=None, device=device, model_kwargs=model_kwargs)

    if hf_checkpoint:
        return _load_hf(task_spec, hf_checkpoint, hf_checkpoint, device, model_kwargs, cache_dir, revision)

    if is_import_path(model_name):
        return _load_import(task_spec, model_name, _attribute_name(model_name), device, model_kwargs)

    entry = default_baseline(task_spec.name) if model_name == BASELINE_ALIAS else get_entry(model_name)
    if entry.task != task_spec.name:
        raise ConfigError(
            f"Model {entry.name!r} is a {entry.task} model, but this run is {task_spec.name}.",
            hint=f"`rpx models` lists the {task_spec.name} models",
            details={"model_task": entry.task, "run_task": task_spec.name},
        )
    if entry.kind == "hf":
        return _load_hf(task_spec, entry.target, entry.name, device, model_kwargs, cache_dir, revision)
    return _load_import(task_spec, entry.target, entry.name, device, model_kwargs)


def _attribute_name(import_path: str) -> str:
    return import_path.split(":", 1)[1].rsplit(".", 1)[-1]


def _load_import(task_spec: Any, import_path: str, name: str, device: str, model_kwargs: dict[str, Any]) -> Any:
    obj = load_import_path(import_path)
    return model_from_callable(obj, task_spec=task_spec, name=name, device=device, model_kwargs=model_kwargs)


def _load_hf(
    task_spec: Any,
    checkpoint: str,
    name: str,
    device: str,
    model_kwargs: dict[str, Any],
    cache_dir: str | None,
    revision: str | None,
) -> Any:
    if task_spec.load_hf_model is None:
        raise ConfigError(
            f"{task_spec.name} has no --hf-checkpoint fast path yet.",
            hint=f"wrap your model as a numpy function and pass --model package.module:function; "
            f"{_numpy_signature_hint(task_spec)}",
            details={"task": task_spec.name, "checkpoint": checkpoint},
        )
    return task_spec.load_hf_model(
        checkpoint, device=device, name=name, cache_dir=cache_dir, revision=revision, **model_kwargs
    )


def _numpy_signature_hint(task_spec: Any) -> str:
    """The numpy signature the task expects: ``task_spec.numpy_signature`` if the spec has one,
    else the first line of its ``wrap_numpy_function`` docstring."""
    signature = getattr(task_spec, "numpy_signature", None)
    if signature:
        return f"expected: {signature}"
    doc = (getattr(task_spec.wrap_numpy_function, "__doc__", None) or "").strip()
    if doc:
        return f"expected: {doc.splitlines()[0].strip()}"
    return f"see the {task_spec.display_name} task's numpy function signature (`rpx info`)"


__all__ = ["resolve_model"]
