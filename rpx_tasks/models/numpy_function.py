"""Wrap a plain numpy function as a Model: the import-path fast path of every task.

The adapter is generic: the task's spec says how to call the function (``numpy_invoke``) and
how to turn its output into a prediction (``numpy_normalise``).
"""

from __future__ import annotations

from typing import Any, Callable

from rpx_tasks.contracts.clips import ClipInvoke
from rpx_tasks.contracts.spec import NumpyInvoke, NumpyNormalise, TaskSpec
from rpx_tasks.sample import Sample


class NumpyFunctionModel:
    """A Model that calls ``fn`` once per sample and normalises its output.

    ``invoke`` decides which inputs the function receives; ``normalise`` fixes dtype and shape
    and resizes to the frame, raising AdapterError naming what is wrong.
    """

    torch_module = None

    def __init__(self, fn: Callable[..., Any], *, task: str, name: str, invoke: NumpyInvoke, normalise: NumpyNormalise):
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


class NumpyClipFunctionModel(NumpyFunctionModel):
    """A Model of a clip task that calls ``fn`` once per whole clip (``whole_clip = True``: the benchmark
    loop hands it each clip as one batch) and normalises its output frame by frame; ``invoke(fn, frames)``
    returns one raw output per frame (``contracts.clips.ClipUnit.numpy_invoke``)."""

    whole_clip = True

    def __init__(self, fn: Callable[..., Any], *, task: str, name: str, invoke: ClipInvoke, normalise: NumpyNormalise):
        super().__init__(fn, task=task, name=name, invoke=invoke, normalise=normalise)  # type: ignore[arg-type]

    def predict(self, batch: list[Sample]) -> list[Any]:
        """Return one normalised prediction per frame of the clip in ``batch``, in order."""
        return [self._normalise(raw, sample) for raw, sample in zip(self._invoke(self.fn, batch), batch)]


def wrap_numpy_function(
    spec: TaskSpec, fn: Callable[..., Any], name: str
) -> NumpyFunctionModel | NumpyClipFunctionModel:
    """A Model of ``spec``'s task calling ``fn`` with the task's numpy signature (``spec.numpy_signature``):
    once per sample, or once per whole clip for a clip task (``spec.clip``)."""
    if spec.clip is not None:
        return NumpyClipFunctionModel(
            fn, task=spec.name, name=name, invoke=spec.clip.numpy_invoke, normalise=spec.numpy_normalise
        )
    return NumpyFunctionModel(fn, task=spec.name, name=name, invoke=spec.numpy_invoke, normalise=spec.numpy_normalise)
