"""The model protocol every benchmarked model follows."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from rpx_tasks.sample import Sample


@runtime_checkable
class Model(Protocol):
    """A model the runner can benchmark.

    ``setup()`` is called once before the first batch; ``predict(batch)`` returns one
    prediction per sample, in order. ``torch_module`` (optional attribute) is the
    ``torch.nn.Module`` doing the work, used for the parameter count and FLOPs; numpy
    models leave it None.
    """

    name: str
    task: str

    def setup(self) -> None: ...

    def predict(self, batch: list[Sample]) -> list[Any]: ...


def torch_module_of(model: Any):
    """Return the model's ``torch_module`` attribute, or None."""
    return getattr(model, "torch_module", None)


def count_parameters_m(model: Any) -> float | None:
    """Trainable parameters of the model's torch module in millions (3 dp), or None for non-torch models."""
    module = torch_module_of(model)
    if module is None or not hasattr(module, "parameters"):
        return None
    total = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return round(total / 1e6, 3)
