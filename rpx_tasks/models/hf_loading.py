"""What every ``--hf-checkpoint`` fast path shares: checkpoint loading, offline mode, errors, devices.

``load_checkpoint`` loads config, model and image processor of a transformers checkpoint (Hub id
or local folder), never with remote code, checks the config's ``model_type`` against the task's
auto class, and turns every failure into a ConfigError / ModelError whose hint fits the likely
cause. ``HF_HUB_OFFLINE=1`` is read at call time (huggingface_hub reads it only at import), and
then the checkpoint must already be in the HF cache: nothing waits on the network.

Which model kwargs a fast path accepts (``--model-kwarg``, the flow's ``model_kwargs``), one rule
checked by :func:`check_loader_kwargs` when the run is validated, before any download, and by
:func:`check_request` when the loader runs:

- the loader's own keyword parameters (``dtype``, ``threshold``, ``processor_kwargs``, ...),
  except those the run sets itself (:data:`RUN_KEYWORDS`: ``device``, ``name``, ``cache_dir``,
  ``revision``; ``checkpoint`` and ``task``);
- for a loader that forwards ``**kwargs`` to the model's ``from_pretrained``, the options of
  :data:`FROM_PRETRAINED_KWARGS` (those that change how the weights load, not what the model is).

Anything else is refused: with a ``config`` given, ``from_pretrained`` hands unknown keywords to
the model's constructor, which fails only after the download, or ignores them silently.
``trust_remote_code`` is never accepted. The checks import neither torch nor transformers.
"""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterable

from rpx_tasks.errors import ConfigError, ModelError

_DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}

# Loader parameters the run fills itself (--device, the display name, --cache-dir, the revision, and
# --precision / --compile as ``execution``).
RUN_KEYWORDS = frozenset({"checkpoint", "task", "device", "name", "cache_dir", "revision", "execution"})
# The from_pretrained options a loader's **kwargs pass on: how the weights load, not what the model is.
FROM_PRETRAINED_KWARGS = frozenset(
    {
        "attn_implementation",
        "dtype",
        "force_download",
        "ignore_mismatched_sizes",
        "local_files_only",
        "low_cpu_mem_usage",
        "token",
        "use_safetensors",
        "variant",
    }
)


def hub_offline() -> bool:
    """True when HF offline mode is on now (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``, read at call time)."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return constants.is_offline_mode() or env.strip().upper() in {"1", "ON", "YES", "TRUE"}


def torch_dtype(dtype: Any):
    """The torch dtype named by ``dtype`` (float32/float16/bfloat16 and aliases), or None for None.

    Raises ConfigError for any other name.
    """
    import torch

    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    return getattr(torch, _dtype_name(dtype))


def _dtype_name(dtype: Any) -> str:
    """The torch name of ``dtype`` (float32/float16/bfloat16 or an alias). Raises ConfigError for any other."""
    key = str(dtype).strip().lower().removeprefix("torch.")
    if key not in _DTYPES:
        raise ConfigError(
            f"Unknown dtype {dtype!r} for an HF model.",
            hint="use one of float32, float16 or bfloat16 (or leave it unset for the checkpoint's own)",
        )
    return _DTYPES[key]


def load_error(
    checkpoint: str, what: str, exc: Exception, *, expected: str = "a transformers model"
) -> ModelError | ConfigError:
    """The error for a failed ``from_pretrained`` of ``what`` (config, weights, processor), with a
    hint fitting the likely cause: a malformed id (ConfigError), a missing torchvision, offline
    mode without a cached copy, a wrong or private id, or a checkpoint that is not ``expected``."""
    text = str(exc)
    first_line = text.splitlines()[0] if text else type(exc).__name__
    if "Repo id must" in text:
        return ConfigError(
            f"{checkpoint!r} is neither an HF Hub checkpoint id nor an existing local folder.",
            hint=f"use a Hub id like org/name, or a folder holding config.json and the weights ({first_line})",
            details={"checkpoint": checkpoint},
        )
    missing = re.search(r"requires the (\w+) library", text)
    if "torchvision" in text:
        hint = f"this checkpoint's image processor needs torchvision: pip install torchvision ({first_line})"
    elif missing:
        hint = f"this checkpoint needs {missing.group(1)}: pip install {missing.group(1)}"
    elif hub_offline():
        hint = (
            "with HF_HUB_OFFLINE=1 the checkpoint must already be in the HF cache "
            "(--cache-dir or HF_HUB_CACHE); download it once online, or unset HF_HUB_OFFLINE"
        )
    elif isinstance(exc, OSError):
        hint = (
            "check the checkpoint id (it is case-sensitive) and your network; gated or private "
            "repos need `hf auth login`; a local folder must hold config.json and the weights"
        )
    else:
        hint = f"check that the checkpoint is {expected}"
    return ModelError(
        f"Could not load the {what} of HF checkpoint {checkpoint!r}: {first_line}",
        hint=hint,
        details={"checkpoint": checkpoint, "error": type(exc).__name__},
    )


def check_request(
    checkpoint: Any, example: str, kwargs: dict[str, Any], processor_kwargs: dict[str, Any] | None, *, kind: str
) -> None:
    """Reject an empty checkpoint id, any ``trust_remote_code`` (popped from ``kwargs``) and
    ``from_pretrained`` kwargs outside :data:`FROM_PRETRAINED_KWARGS` (``kwargs`` are the loader's ``**kwargs``).

    Raises ConfigError; ``example`` is a checkpoint id shown in the hint, ``kind`` names the fast
    path in the message (e.g. "keypoint-matching").
    """
    if not isinstance(checkpoint, str) or not checkpoint.strip():
        raise ConfigError("An HF checkpoint id is required.", hint=f"e.g. --hf-checkpoint {example}")
    if kwargs.pop("trust_remote_code", False) or (processor_kwargs or {}).get("trust_remote_code"):
        raise _remote_code_refused(f"the HF {kind} fast path")
    _check_unknown_kwargs(
        sorted(set(kwargs) - FROM_PRETRAINED_KWARGS), FROM_PRETRAINED_KWARGS, f"The HF {kind} fast path"
    )


def _remote_code_refused(what: str) -> ConfigError:
    return ConfigError(
        f"trust_remote_code is not allowed for {what}.",
        hint="it only runs transformers' own model classes; wrap custom code in a factory "
        "and pass --model package.module:factory",
    )


def _check_unknown_kwargs(unknown: list[str], accepted: Iterable[str], owner: str) -> None:
    if unknown:
        raise ConfigError(
            f"{owner} does not accept the model kwargs {unknown}.",
            hint=f"it accepts: {', '.join(sorted(accepted))}; --device, --cache-dir and the revision "
            "are set by the run, not as model kwargs",
            details={"unknown_kwargs": unknown},
        )


def check_loader_kwargs(loader: Callable[..., Any], model_kwargs: dict[str, Any], *, owner: str) -> None:
    """Check ``model_kwargs`` against the HF fast path ``loader`` without calling it (module docstring rule).

    ``owner`` names the fast path in messages (e.g. "the monocular_depth HF fast path"). Raises
    ConfigError for ``trust_remote_code``, a keyword the run sets itself or the loader does not
    accept, or an unknown ``dtype`` name.
    """
    if model_kwargs.get("trust_remote_code"):
        raise _remote_code_refused(owner)
    params = inspect.signature(loader).parameters.values()
    accepted = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - RUN_KEYWORDS
    if any(p.kind is p.VAR_KEYWORD for p in params):
        accepted |= FROM_PRETRAINED_KWARGS
    _check_unknown_kwargs(sorted(set(model_kwargs) - accepted), accepted, owner[:1].upper() + owner[1:])
    if isinstance(model_kwargs.get("dtype"), str):
        _dtype_name(model_kwargs["dtype"])


def check_checkpoint_id(checkpoint: str) -> None:
    """Raise ConfigError when ``checkpoint`` is neither an existing local folder nor a well-formed Hub id."""
    if Path(checkpoint).is_dir():
        return
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(checkpoint)
    except HFValidationError as exc:
        raise ConfigError(
            f"{checkpoint!r} is neither an HF Hub checkpoint id nor an existing local folder.",
            hint=f"use a Hub id like org/name, or a folder holding config.json and the weights ({exc})",
            details={"checkpoint": checkpoint},
        ) from exc


def hub_kwargs(cache_dir: str | None, revision: str | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The ``from_pretrained`` keyword arguments that locate a checkpoint: cache dir, revision,
    no remote code, ``local_files_only`` when offline; ``local_files_only`` and ``token`` given by
    the caller are moved out of ``kwargs`` into the result."""
    hub: dict[str, Any] = {"cache_dir": cache_dir, "revision": revision, "trust_remote_code": False}
    if hub_offline():
        hub["local_files_only"] = True
    hub.update({key: kwargs.pop(key) for key in ("local_files_only", "token") if key in kwargs})
    return hub


def model_load_kwargs(kwargs: dict[str, Any], *, device: str, dtype: Any, eager_on_cpu: bool = True) -> dict[str, Any]:
    """The model's ``from_pretrained`` keyword arguments: a copy of ``kwargs`` plus the parsed
    ``dtype`` and, off CUDA with ``eager_on_cpu``, ``attn_implementation="eager"`` unless ``kwargs`` name one
    (the CPU SDPA kernel has no FLOP formula; see ``models.hf_depth``). A fast path that runs through
    ``models.hf_execution`` passes ``eager_on_cpu=False``: it runs the checkpoint's default (SDPA, faster) and
    counts FLOPs on an eager copy. Raises ConfigError for an unknown dtype."""
    dtype_value = torch_dtype(dtype)
    model_kwargs = dict(kwargs)
    if eager_on_cpu and not str(device).startswith("cuda"):
        model_kwargs.setdefault("attn_implementation", "eager")
    if dtype_value is not None:
        model_kwargs["dtype"] = dtype_value
    return model_kwargs


def load_checkpoint(
    checkpoint: str,
    auto_model: Any,
    model_types: Iterable[str],
    *,
    expected: str,
    hub: dict[str, Any],
    model_kwargs: dict[str, Any],
    processor_kwargs: dict[str, Any] | None = None,
    unsupported: dict[str, str] | None = None,
    auto_processor: Any = None,
) -> tuple[Any, Any, Any]:
    """Load (config, model, processor) of ``checkpoint`` with ``auto_model`` (an Auto class) and
    ``auto_processor`` (default ``AutoImageProcessor``).

    ``model_types`` are the config ``model_type`` values the fast path runs; ``unsupported`` maps
    model types it refuses to the reason; ``expected`` names the kind of model in messages (e.g.
    "a depth-estimation model"). Raises ConfigError for a malformed id; ModelError when a part
    cannot be loaded or the checkpoint's model type is not one of ``model_types``.
    """
    from transformers import AutoConfig, AutoImageProcessor

    try:
        config = AutoConfig.from_pretrained(checkpoint, **hub)
    except Exception as exc:  # transformers raises OSError / ValueError / HFValidationError
        raise load_error(checkpoint, "config", exc, expected=expected) from exc
    known = sorted(model_types)
    model_type = getattr(config, "model_type", None)
    if model_type in (unsupported or {}):
        raise ModelError(
            f"HF checkpoint {checkpoint!r} is a {model_type!r} model, which this fast path does not run: "
            f"{unsupported[model_type]}.",
            hint="wrap the model in a factory and pass --model package.module:factory",
            details={"checkpoint": checkpoint, "model_type": model_type},
        )
    if model_type not in known:
        raise ModelError(
            f"HF checkpoint {checkpoint!r} is a {model_type!r} model, not {expected}.",
            hint=f"this fast path loads {auto_model.__name__}; model types it knows: " + ", ".join(known),
            details={"checkpoint": checkpoint, "model_type": model_type},
        )
    try:
        module = auto_model.from_pretrained(checkpoint, config=config, **hub, **model_kwargs)
    except Exception as exc:
        raise load_error(checkpoint, "model weights", exc, expected=expected) from exc
    auto_processor = auto_processor or AutoImageProcessor
    what = "image processor" if auto_processor is AutoImageProcessor else "processor"
    try:
        processor = auto_processor.from_pretrained(checkpoint, **hub, **(processor_kwargs or {}))
    except Exception as exc:
        raise load_error(checkpoint, what, exc, expected=expected) from exc
    return config, module, processor


def move_module(module: Any, device: str, name: str) -> None:
    """Put ``module`` in eval mode on ``device``. Raises ModelError when it cannot be moved."""
    try:
        module.eval().to(device)
    except Exception as exc:
        raise ModelError(
            f"Could not move {name} to device {device!r}: {exc}",
            hint="check --device (`cuda`, `cuda:N` or `cpu`) and free GPU memory",
        ) from exc


def inputs_to_device(inputs: Any, module: Any, device: str) -> dict[str, Any]:
    """Processor outputs moved to ``device``: floating tensors take the module's dtype; on CUDA
    host tensors are pinned so the copy overlaps work already queued. Returns a new dict."""
    import torch

    target = torch.device(device)
    dtype = next(module.parameters()).dtype
    moved = {}
    for key, value in inputs.items():
        if torch.is_tensor(value):
            if value.is_floating_point():
                value = value.to(dtype)
            if target.type == "cuda" and value.device.type == "cpu":
                value = value.pin_memory().to(target, non_blocking=True)
            else:
                value = value.to(target)
        moved[key] = value
    return moved


__all__ = [
    "FROM_PRETRAINED_KWARGS",
    "RUN_KEYWORDS",
    "check_checkpoint_id",
    "check_loader_kwargs",
    "check_request",
    "hub_kwargs",
    "hub_offline",
    "inputs_to_device",
    "load_checkpoint",
    "load_error",
    "model_load_kwargs",
    "move_module",
    "torch_dtype",
]


def checkpoint_identity(checkpoint: str, revision: str | None = None, cache_dir: str | None = None) -> dict[str, Any]:
    """Return what pins the weights of ``checkpoint`` for a run's fingerprint, read from disk (no network).

    A Hub id: the requested revision (default ``main``) and the commit it resolves to in the HF cache
    (``refs/<revision>``; the revision itself when it is a commit hash; None when not cached). A local
    folder: its path and a sha256 over the names and sizes of its files and the text of its config.json.
    Raises nothing.
    """
    folder = Path(checkpoint).expanduser()
    if folder.is_dir():
        import hashlib

        digest = hashlib.sha256()
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(f"{path.relative_to(folder)}:{path.stat().st_size}\n".encode())
        config = folder / "config.json"
        if config.is_file():
            digest.update(config.read_bytes())
        return {"path": str(folder.resolve()), "files_sha256": digest.hexdigest()}
    requested = revision or "main"
    if re.fullmatch(r"[0-9a-f]{40}", requested):
        return {"revision": requested, "commit": requested}
    from huggingface_hub.constants import HF_HUB_CACHE

    ref = Path(cache_dir or HF_HUB_CACHE) / f"models--{checkpoint.replace('/', '--')}" / "refs" / requested
    try:
        commit = ref.read_text(encoding="utf-8").strip() or None
    except OSError:
        commit = None
    return {"revision": requested, "commit": commit}
