"""Name any model by a string: ``package.module:attr`` import paths and what they point to.

``--model`` (and the flow's ``model`` parameter) accepts an import path so that a deployment
can run any model without a registry entry. The object found there becomes a Model by one
rule, applied in this order by :func:`model_from_callable`:

1. **A Model** (an instance with ``setup``, ``predict`` and ``task``): used as it is.
2. **A factory**: a class, or a callable whose parameters all have defaults (no *required*
   positional parameter). It is called, with ``device=`` and the model kwargs passed only
   when its signature accepts them, and must return a Model of the run's task.
3. **A numpy function**: any other callable, e.g. ``predict(rgb) -> depth``. It is wrapped by
   the generic numpy adapter (``numpy_function.wrap_numpy_function``) with the task's signature.

So ``def build(device="cpu")`` is a factory while ``def predict(rgb)`` is a numpy function.
:func:`check_callable` applies the same rule without calling anything (run validation, before
any download): a Model must be of the run's task and take no model kwargs; a factory's
signature must accept the model kwargs; a numpy function must take no model kwargs and its
signature must bind the task's inputs (``TaskSpec.numpy_inputs`` / ``numpy_optional_inputs``).
What a factory returns is known only once it is called, when the model is resolved.
"""

from __future__ import annotations
import __future__

import difflib
import importlib
import inspect
import re
from typing import Any, Callable, TypeGuard

from rpx_tasks.contracts.model import Model
from rpx_tasks.contracts.spec import TaskSpec
from rpx_tasks.errors import ConfigError, ModelError, RPXError
from rpx_tasks.models.numpy_function import wrap_numpy_function

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_IMPORT_PATH = re.compile(rf"^{_IDENTIFIER}(\.{_IDENTIFIER})*:{_IDENTIFIER}(\.{_IDENTIFIER})*$")
_FORMAT_HINT = "use the form package.module:callable, e.g. my_models.depth:predict_depth"
_PYTHONPATH_HINT = (
    "the module must be importable by the Python running rpx: install its package, "
    "or add the folder that contains it to PYTHONPATH (e.g. `PYTHONPATH=. rpx bench ...`)"
)


def is_import_path(text: str) -> bool:
    """True when ``text`` looks like an import path (contains ':'), not a registry name."""
    return ":" in text


def load_import_path(spec: str) -> Any:
    """Import ``package.module:attr`` (or ``package.module:attr.sub``) and return the object.

    The object must be callable (a function, class or factory) or look like a Model (has
    ``predict``). Raises ConfigError, with a hint, when the string is malformed, the module
    cannot be imported (naming the module, or the missing dependency), the attribute is
    missing (listing public names of the module) or the object is neither callable nor a Model.
    """
    if not isinstance(spec, str) or not _IMPORT_PATH.match(spec.strip()):
        raise ConfigError(f"Malformed import path {spec!r}.", hint=_FORMAT_HINT, details={"import_path": spec})
    module_name, attr_path = spec.strip().split(":", 1)
    module = _import_module(module_name, spec)

    obj: Any = module
    parts = attr_path.split(".")
    for depth, part in enumerate(parts):
        if not hasattr(obj, part):
            owner = f"module {module_name!r}" if depth == 0 else repr(f"{module_name}:{'.'.join(parts[:depth])}")
            raise ConfigError(
                f"{owner[0].upper()}{owner[1:]} has no attribute {part!r} (import path {spec!r}).",
                hint=_missing_attribute_hint(obj, part),
                details={"import_path": spec, "module": module_name},
            )
        obj = getattr(obj, part)

    if not callable(obj) and not _looks_like_model(obj):
        raise ConfigError(
            f"{spec!r} is a {type(obj).__name__}, not a callable or a model.",
            hint="point the import path at a numpy function, a factory (class or function) returning "
            "a model, or a model object with setup/predict/task",
            details={"import_path": spec},
        )
    return obj


def _import_module(module_name: str, spec: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing == module_name or module_name.startswith(missing + "."):
            raise ConfigError(
                f"Cannot import module {module_name!r} (from import path {spec!r}).",
                hint=_PYTHONPATH_HINT,
                details={"import_path": spec, "module": module_name, "missing": missing},
            ) from exc
        raise ConfigError(
            f"Importing module {module_name!r} failed: it needs {missing!r}, which is not installed.",
            hint=f"install the package that provides {missing!r} into the environment running rpx",
            details={"import_path": spec, "module": module_name, "missing": missing},
        ) from exc
    except Exception as exc:  # any error while executing the user's module
        raise ConfigError(
            f"Importing module {module_name!r} raised {type(exc).__name__}: {exc}",
            hint=f"fix the module; `python -c 'import {module_name}'` shows the full traceback",
            details={"import_path": spec, "module": module_name},
        ) from exc


def _public_names(obj: Any) -> list[str]:
    """Names worth showing: ``__all__``, else public non-module names, preferring those defined in ``obj``."""
    exported = getattr(obj, "__all__", None)
    if isinstance(exported, (list, tuple)) and exported:
        return sorted(str(name) for name in exported)
    names = [
        name
        for name in dir(obj)
        if not name.startswith("_")
        and not inspect.ismodule(getattr(obj, name, None))
        and not isinstance(getattr(obj, name, None), __future__._Feature)
    ]
    if inspect.ismodule(obj):
        own = [name for name in names if getattr(getattr(obj, name), "__module__", None) == obj.__name__]
        names = own or names
    return sorted(names)


def _missing_attribute_hint(obj: Any, missing: str) -> str:
    names = _public_names(obj)
    close = difflib.get_close_matches(missing, names, n=1)
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    hint = f"did you mean {close[0]!r}? " if close else ""
    return hint + (f"public names there: {shown}" if names else "it defines no public names")


def _looks_like_model(obj: object) -> TypeGuard[Model]:
    if isinstance(obj, type):
        return False
    return callable(getattr(obj, "setup", None)) and callable(getattr(obj, "predict", None)) and hasattr(obj, "task")


def _task_value(task: Any) -> str:
    return str(getattr(task, "value", task))


def _is_factory(obj: Any) -> bool:
    if isinstance(obj, type):
        return True
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        # No introspectable signature (some builtins): it cannot be a known zero-argument factory.
        return False
    return not any(
        p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        for p in params
    )


def _check_factory_kwargs(factory: Callable[..., Any], label: str, model_kwargs: dict[str, Any]) -> bool:
    """Whether ``factory`` takes ``device=`` (also through ``**kwargs``; False for an unreadable signature).

    Raises ConfigError for model kwargs its signature does not accept.
    """
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    keyword_ok = {
        name
        for name, p in params.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    unknown = sorted(k for k in model_kwargs if not accepts_any and k not in keyword_ok)
    if unknown:
        raise ConfigError(
            f"Model factory {label} does not accept the model kwargs {unknown}.",
            hint=f"it accepts: {sorted(keyword_ok - {'device'}) or 'no keyword arguments'}",
            details={"factory": label, "unknown_kwargs": unknown},
        )
    return accepts_any or "device" in keyword_ok


def _factory_kwargs(
    factory: Callable[..., Any], label: str, device: str, model_kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The keyword arguments ``factory`` is called with: the model kwargs, plus ``device=`` when it takes one."""
    kwargs = dict(model_kwargs)
    if _check_factory_kwargs(factory, label, model_kwargs):
        kwargs.setdefault("device", device)
    return kwargs


def _check_task(model: Model, task_spec: TaskSpec, label: str) -> None:
    if _task_value(model.task) != task_spec.name:
        raise ModelError(
            f"{label} is a {_task_value(model.task)} model, but this run is {task_spec.name}.",
            hint=f"pick a model whose task is {task_spec.name} (`rpx models` lists them)",
            details={"model_task": _task_value(model.task), "run_task": task_spec.name},
        )


def _rename(model: Model, name: str | None) -> None:
    if name and getattr(model, "name", None) != name:
        try:
            model.name = name
        except AttributeError:  # a read-only name property: keep the model's own name
            pass


def _check_ready_model(obj: Model, task_spec: TaskSpec, label: str, model_kwargs: dict[str, Any]) -> None:
    """Raise ConfigError when model kwargs are given for a built model, ModelError when it is for another task."""
    if model_kwargs:
        raise ConfigError(
            f"Model kwargs {sorted(model_kwargs)} were given, but {label} is an already built model.",
            hint="drop the model kwargs, or point --model at a factory that accepts them",
        )
    _check_task(obj, task_spec, label)


def _ready_model(obj: Model, task_spec: TaskSpec, name: str | None, label: str, model_kwargs: dict[str, Any]) -> Model:
    """An already built model ``obj``, checked for the run's task and renamed to ``name``.

    Raises ConfigError when model kwargs are given, ModelError when it is for another task.
    """
    _check_ready_model(obj, task_spec, label, model_kwargs)
    _rename(obj, name)
    return obj


def _model_from_factory(
    factory: Callable[..., Any],
    task_spec: TaskSpec,
    name: str | None,
    label: str,
    device: str,
    model_kwargs: dict[str, Any],
) -> Model:
    """The model ``factory`` builds with the device= and model kwargs it accepts, checked and renamed.

    Raises ConfigError for model kwargs it does not accept; ModelError when it raises (an
    RPXError passes unchanged), returns no model, or returns a model for another task.
    """
    kwargs = _factory_kwargs(factory, label, device, model_kwargs)
    try:
        model = factory(**kwargs)
    except RPXError:
        raise
    except Exception as exc:
        raise ModelError(
            f"Model factory {label} raised {type(exc).__name__}: {exc}",
            hint="call the factory yourself in Python to see the full traceback",
            details={"factory": label},
        ) from exc
    if not _looks_like_model(model):
        raise ModelError(
            f"Model factory {label} returned a {type(model).__name__}, not a model.",
            hint="a factory (a class, or a callable with no required positional parameter) must "
            "return an object with setup(), predict(batch) and task; a numpy function must take "
            "the frame as a required positional parameter",
            details={"factory": label},
        )
    _check_task(model, task_spec, f"The model built by {label}")
    _rename(model, name)
    return model


def _task_call_forms(task_spec: TaskSpec) -> list[tuple[tuple[str, ...], dict[str, str]]]:
    """The (args, kwargs) forms ``task_spec.numpy_invoke`` may call a numpy function with (input names as values)."""
    required = tuple(task_spec.numpy_inputs)
    optional = tuple(task_spec.numpy_optional_inputs)
    forms: list[tuple[tuple[str, ...], dict[str, str]]] = [(required, {})]
    if optional:
        forms += [((*required, *optional), {}), (required, {name: name for name in optional})]
    if task_spec.numpy_legacy_inputs is not None:
        forms.append((tuple(task_spec.numpy_legacy_inputs), {}))
    return forms


def _check_numpy_function(
    fn: Callable[..., Any], task_spec: TaskSpec, label: str, model_kwargs: dict[str, Any]
) -> None:
    """Raise ConfigError when model kwargs are given for a numpy function, or its signature binds
    none of the forms the task calls it with (an unreadable signature passes: its first call tells)."""
    if model_kwargs:
        raise ConfigError(
            f"Model kwargs {sorted(model_kwargs)} were given, but {label} is a numpy function.",
            hint="bind them in your own code (functools.partial) or use a factory that accepts them",
        )
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    forms = _task_call_forms(task_spec)
    for args, kwargs in forms:
        try:
            signature.bind(*args, **kwargs)
            return
        except TypeError:
            continue
    calls = [f"fn({', '.join([*args, *(f'{k}=...' for k in kwargs)])})" for args, kwargs in forms]
    bare = signature.replace(
        parameters=[p.replace(annotation=p.empty) for p in signature.parameters.values()],
        return_annotation=inspect.Signature.empty,
    )
    raise ConfigError(
        f"Numpy function {label}{bare} cannot be called as {task_spec.name} calls it: {' or '.join(calls)}.",
        hint=f"give it the task's signature: {task_spec.numpy_signature}; a factory instead takes no "
        "required positional parameter and returns a model",
        details={"function": label, "signature": str(signature), "task": task_spec.name},
    )


def _model_from_numpy_function(
    fn: Callable[..., Any], task_spec: TaskSpec, name: str | None, label: str, model_kwargs: dict[str, Any]
) -> Model:
    """``fn`` wrapped by the numpy adapter, named ``name`` or after the function.

    Raises ConfigError when model kwargs are given or its signature does not take the task's inputs.
    """
    _check_numpy_function(fn, task_spec, label, model_kwargs)
    fn_name = name or getattr(fn, "__name__", None) or f"numpy_{task_spec.name}_model"
    return wrap_numpy_function(task_spec, fn, fn_name)


def model_from_callable(
    obj: Any,
    *,
    task_spec: TaskSpec,
    name: str | None = None,
    device: str = "cpu",
    model_kwargs: dict[str, Any] | None = None,
) -> Model:
    """Turn what an import path (or the ``model=`` argument) points to into a Model.

    The rule (module docstring): a Model is used as it is; a class or a callable with no
    required positional parameter is a factory, called with ``device=`` and ``model_kwargs``
    where its signature accepts them; any other callable is a numpy function wrapped by
    ``wrap_numpy_function(task_spec, obj, name)``. ``name``, when given, becomes the model's
    display name (for a numpy function it defaults to the function's ``__name__``).

    Returns a Model of ``task_spec``'s task. Raises ModelError when the model (or what the
    factory returns) is not a Model or is for another task, or when the factory raises;
    ConfigError when model kwargs are given that a factory does not accept, or when model
    kwargs are given for a numpy function or a ready model.
    """
    model_kwargs = dict(model_kwargs or {})
    label = _label(obj, name)
    if _looks_like_model(obj):
        return _ready_model(obj, task_spec, name, label, model_kwargs)
    _check_callable_object(obj, label)
    if _is_factory(obj):
        return _model_from_factory(obj, task_spec, name, label, device, model_kwargs)
    return _model_from_numpy_function(obj, task_spec, name, label, model_kwargs)


def _label(obj: Any, name: str | None) -> str:
    return name or getattr(obj, "__qualname__", None) or getattr(obj, "name", None) or type(obj).__name__


def _check_callable_object(obj: Any, label: str) -> None:
    if not callable(obj):
        raise ModelError(
            f"{label} is a {type(obj).__name__}, not a model, a factory or a numpy function.",
            hint="pass a model object (setup/predict/task), a factory returning one, or a numpy function",
        )


def check_callable(
    obj: Any, *, task_spec: TaskSpec, name: str | None = None, model_kwargs: dict[str, Any] | None = None
) -> None:
    """Check what an import path (or ``model=``) points to against the run, calling nothing.

    The rule of :func:`model_from_callable`, up to what only a call shows: a Model must be of
    ``task_spec``'s task and take no model kwargs; a factory's signature must accept every model
    kwarg (``device=`` is the run's); a numpy function must take no model kwargs and its
    signature must bind the task's inputs (``TaskSpec.numpy_inputs``, ``numpy_optional_inputs``).

    Raises ConfigError for model kwargs that are not accepted or a numpy function of the wrong
    signature; ModelError for a Model of another task or an object that is not callable.
    """
    model_kwargs = dict(model_kwargs or {})
    label = _label(obj, name)
    if _looks_like_model(obj):
        _check_ready_model(obj, task_spec, label, model_kwargs)
        return
    _check_callable_object(obj, label)
    if _is_factory(obj):
        _check_factory_kwargs(obj, label, model_kwargs)
    else:
        _check_numpy_function(obj, task_spec, label, model_kwargs)


__all__ = ["check_callable", "is_import_path", "load_import_path", "model_from_callable"]
