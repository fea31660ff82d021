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
