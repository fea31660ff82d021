"""What the runner reads off a model besides the protocol (``contracts.model.Model``): its torch module."""

from __future__ import annotations

from typing import Any

from rpx_tasks.contracts.model import Model


def torch_module_of(model: Model) -> Any:
    """Return the model's ``torch_module`` attribute, or None."""
    return getattr(model, "torch_module", None)


def count_parameters_m(model: Model) -> float | None:
    """Trainable parameters of the model's torch module in millions (3 dp), or None for non-torch models."""
    module = torch_module_of(model)
    if module is None or not hasattr(module, "parameters"):
        return None
    total = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return round(total / 1e6, 3)
