"""How every ``--hf-checkpoint`` fast path runs a batch: one forward per group of equal frame
sizes, post-processing in float32, and failures as AdapterErrors that say what was being run.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Sequence, TypeVar

from rpx_tasks.errors import AdapterError, ModelRuntimeError

Item = TypeVar("Item")
Result = TypeVar("Result")


def predict_by_size(
    items: Sequence[Item],
    size_of: Callable[[Item], Hashable],
    predict_group: Callable[[list[Item], Any], Sequence[Result]],
) -> list[Result]:
    """``predict_group(group, size)`` once per group of ``items`` of equal ``size_of(item)``, in
    first-seen order of the sizes; returns the results back in the order of ``items``. Raises
    whatever ``predict_group`` raises."""
    groups: dict[Hashable, list[int]] = {}
    for index, item in enumerate(items):
        groups.setdefault(size_of(item), []).append(index)
    results: list[Any] = [None] * len(items)
    for size, indices in groups.items():
        for index, result in zip(indices, predict_group([items[i] for i in indices], size)):
            results[index] = result
    return results


def float32_outputs(outputs: Any) -> Any:
    """Cast the floating tensors of a model output to float32, in place (post-processing
    interpolates and applies softmax in float32 whatever the weights' dtype); returns ``outputs``."""
    import torch

    for key, value in list(outputs.items()):
        if torch.is_tensor(value) and value.is_floating_point():
            outputs[key] = value.float()
    return outputs


def processor_error(name: str, described: str, exc: Exception) -> AdapterError:
    """The error for an image processor of model ``name`` failing on ``described`` inputs."""
    return AdapterError(
        f"The image processor of {name} failed on {described}: {exc}",
        hint="frames must be (H, W, 3) uint8 RGB",
    )


def forward_error(name: str, described: str, exc: Exception, *, unit: str = "frame") -> ModelRuntimeError:
    """The error for model ``name`` failing on ``described`` inputs (a ModelRuntimeError: the run stays
    resumable); the hint says to lower the batch size after an out-of-memory error, else to rerun one
    ``unit`` for the full traceback."""
    out_of_memory = "out of memory" in str(exc).lower()
    return ModelRuntimeError(
        f"{name} failed on {described}: {type(exc).__name__}: {exc}",
        hint="lower --batch-size"
        if out_of_memory
        else f"run the checkpoint on one {unit} in Python to see the full traceback",
    )


__all__ = ["float32_outputs", "forward_error", "predict_by_size", "processor_error"]
