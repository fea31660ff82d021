"""What the runner reads off a model besides the protocol (``contracts.model.Model``): the torch
modules it holds and their parameters.

A model need not declare ``torch_module``: every ``torch.nn.Module`` among its attributes (one
level deep, including inside lists, tuples, sets and dicts, however nested) counts, and so does
the model itself when it is a module. Parameters shared between those modules count once.
"""

from __future__ import annotations

import collections
import sys
from dataclasses import dataclass
from typing import Any

from rpx_tasks.contracts.model import Model

_CONTAINERS = (list, tuple, set, frozenset, dict)


@dataclass(frozen=True)
class ParameterCounts:
    """Parameters of a model's torch modules, in millions (3 dp): all of them, and split by ``requires_grad``."""

    total_m: float
    trainable_m: float
    frozen_m: float


def torch_modules_of(model: Model) -> list[Any]:
    """Return every ``torch.nn.Module`` the model holds, each once, in the order found: the model
    itself if it is one, its ``torch_module``, then its attributes and what their (nested)
    containers hold. Modules are not searched inside (their ``parameters()`` cover their
    submodules). Returns [] for a model without any, and when torch was never imported. Raises nothing.
    """
    torch = sys.modules.get("torch")
    if torch is None:  # no torch imported: nothing can be a module, and importing it would cost seconds
        return []
    found: dict[int, Any] = {}
    seen_containers: set[int] = set()
    pending = collections.deque([model, getattr(model, "torch_module", None), *getattr(model, "__dict__", {}).values()])
    while pending:
        value = pending.popleft()
        if isinstance(value, torch.nn.Module):
            found.setdefault(id(value), value)
        elif isinstance(value, _CONTAINERS) and id(value) not in seen_containers:
            seen_containers.add(id(value))
            pending.extend(value.values() if isinstance(value, dict) else value)
    return list(found.values())


def parameter_counts(model: Model) -> ParameterCounts | None:
    """Return the parameters of every torch module the model holds (``torch_modules_of``), shared
    parameters counted once, or None for a model without torch modules. Raises nothing."""
    modules = torch_modules_of(model)
    if not modules:
        return None
    unique = {id(parameter): parameter for module in modules for parameter in module.parameters()}
    total = sum(parameter.numel() for parameter in unique.values())
    trainable = sum(parameter.numel() for parameter in unique.values() if parameter.requires_grad)
    return ParameterCounts(
        total_m=round(total / 1e6, 3),
        trainable_m=round(trainable / 1e6, 3),
        frozen_m=round((total - trainable) / 1e6, 3),
    )


def count_parameters_m(model: Model) -> float | None:
    """All parameters (trainable and frozen) of the model's torch modules in millions (3 dp), or
    None for a model without torch modules. Raises nothing."""
    counts = parameter_counts(model)
    return None if counts is None else counts.total_m
