"""Wrap a plain numpy function as a Model: the import-path fast path of every task."""

from __future__ import annotations

from typing import Any, Callable

from rpx_tasks.sample import Sample

# call(fn, sample) -> raw output of the user function for that sample.
Invoke = Callable[[Callable[..., Any], Sample], Any]
# normalise(raw, sample) -> the task's prediction; raises AdapterError on a bad output.
Normalise = Callable[[Any, Sample], Any]


class NumpyFunctionModel:
    """A Model that calls ``fn`` once per sample and normalises its output.

    The task module supplies ``invoke`` (which inputs the function receives) and
    ``normalise`` (dtype, reshape, resize to the frame; AdapterError naming what is wrong).
    """

    torch_module = None

    def __init__(self, fn: Callable[..., Any], *, task: str, name: str, invoke: Invoke, normalise: Normalise):
        self.fn = fn
        self.task = task
        self.name = name
        self._invoke = invoke
        self._normalise = normalise

    def setup(self) -> None:
        """Nothing to set up: the function is ready to call."""

    def predict(self, batch: list[Sample]) -> list[Any]:
        """Return one normalised prediction per sample, in order."""
        return [self._normalise(self._invoke(self.fn, sample), sample) for sample in batch]

    def __repr__(self) -> str:
        return f"NumpyFunctionModel(task={self.task!r}, name={self.name!r})"
