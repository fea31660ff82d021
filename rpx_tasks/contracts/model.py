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
    models leave it None. The runner also counts every module held in the model's other
    attributes (``models.torch_module.torch_modules_of``), and runs the FLOP pass on a deep
    copy of the model, so ``predict`` sees each sample of the run exactly once.
    """

    name: str
    task: str

    def setup(self) -> None: ...

    def predict(self, batch: list[Sample]) -> list[Any]: ...
