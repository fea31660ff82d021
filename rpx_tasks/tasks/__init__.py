"""The task registry: every module in this package that defines ``SPEC`` is an RPX task.

Adding a task is adding one module here (plus its tests); the runner, reports, Prefect steps,
flows and CLI read the registry and need no change.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil

from rpx_tasks.contracts.spec import MetricInfo, TaskSpec
from rpx_tasks.errors import ConfigError

_REGISTRY: dict[str, TaskSpec] = {}
_DISCOVERED = False


def register_task(spec: TaskSpec) -> TaskSpec:
    """Add ``spec`` to the registry and return it. Raises ConfigError on a duplicate name."""
    if spec.name in _REGISTRY and _REGISTRY[spec.name] is not spec:
        raise ConfigError(f"Task {spec.name!r} is already registered.", hint="choose another task name")
    _REGISTRY[spec.name] = spec
    return spec


def unregister_task(name: str) -> TaskSpec:
    """Remove task ``name`` from the registry and return its spec (undoes ``register_task``, e.g. in tests).

    Raises ConfigError (with a "did you mean") for an unknown name.
    """
    spec = get_task(name)
    del _REGISTRY[name]
    return spec


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        spec = getattr(module, "SPEC", None)
        if isinstance(spec, TaskSpec):
            register_task(spec)
    # Only after every module imported: a failed import must surface again, not hide tasks.
    _DISCOVERED = True


def task_names() -> list[str]:
    """Registered task names, sorted."""
    _discover()
    return sorted(_REGISTRY)


def iter_tasks() -> list[TaskSpec]:
    """Registered task specs, sorted by name."""
    return [_REGISTRY[name] for name in task_names()]


def get_task(name: str) -> TaskSpec:
    """The spec of task ``name``. Raises ConfigError (with a "did you mean") for an unknown name."""
    _discover()
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=1)
        raise ConfigError(
            f"Unknown task {name!r}.",
            hint=(f"did you mean {close[0]!r}? " if close else "")
            + f"registered tasks: {', '.join(sorted(_REGISTRY))}",
        ) from None


__all__ = ["MetricInfo", "TaskSpec", "get_task", "iter_tasks", "register_task", "task_names", "unregister_task"]
