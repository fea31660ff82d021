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
    if not entry.name or ":" in entry.name:
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
    return [entry for entry in _REGISTRY.values() if task is None or entry.task == task]


def get_entry(name: str) -> ModelEntry:
    """The entry registered as ``name``.

    Raises ConfigError "Unknown model 'x'." with a did-you-mean suggestion and the list of
    registered names.
    """
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


def _register_builtin() -> None:
    for size in ("Small", "Base", "Large"):
        register_model(
            ModelEntry(
                name=f"depth_anything_v2_metric_indoor_{size.lower()}",
                task="monocular_depth",
                kind="hf",
                target=f"depth-anything/Depth-Anything-V2-Metric-Indoor-{size}-hf",
                description=f"Depth Anything V2 {size}, metric head fine-tuned on indoor scenes (max 20 m)",
            )
        )
    register_model(
        ModelEntry(
            name="depth_pro",
            task="monocular_depth",
            kind="hf",
            target="apple/DepthPro-hf",
            description="Apple Depth Pro, metric depth with focal-length estimation (its processor needs torchvision)",
        )
    )
    register_model(
        ModelEntry(
            name="zoedepth_nyu_kitti",
            task="monocular_depth",
            kind="hf",
            target="Intel/zoedepth-nyu-kitti",
            description="ZoeDepth with NYU (indoor) and KITTI (outdoor) metric bins",
        )
    )
    register_model(
        ModelEntry(
            name="ground_plane_prior",
            task="monocular_depth",
            kind="import",
            target="rpx_tasks.models.baselines:ground_plane_depth",
            description="weight-free baseline: depth of a flat floor seen by a level camera",
        )
    )
    register_model(
        ModelEntry(
            name="constant_depth",
            task="monocular_depth",
            kind="import",
            target="rpx_tasks.models.baselines:constant_depth",
            description="weight-free baseline: the same depth for every pixel",
        )
    )


_register_builtin()

__all__ = ["KINDS", "ModelEntry", "get_entry", "list_models", "register_model"]
