"""How an HF fast path runs its module: the data path, precision, torch.compile, channels-last, stage timing.

:class:`ExecutionOptions` are the run's choices (``rpx bench --precision fp32|bf16|fp16``, ``--compile``;
``--model-kwarg device_preprocess=true|false`` and ``channels_last=true|false`` override the automatic
choices). :class:`HFExecution` applies them for one model:

- inputs: the device-side data path (``models.hf_device_preprocess``: uint8 frames to the device, the
  processor's resize and normalisation as torch ops there) or the image processor on the host, whose
  tensors then go to the device (page-locked, ``non_blocking``). Automatic: the device path off the CPU,
  the processor on the CPU (Pillow's SIMD resize beats integer torch ops on a few cores; both give the
  same input, bit for bit before normalisation);
- forward: ``torch.inference_mode`` and, for bf16 / fp16, ``torch.autocast`` on the device's type (the
  weights stay in their dtype; floating outputs are cast back to float32 for post-processing);
  ``compile``: ``torch.compile`` of the module (backend ``$RPX_COMPILE_BACKEND``, default inductor), the
  first batches pay the compilation (the warm-up batch is excluded from latency);
- channels-last: automatic on CUDA for a module with 2-D convolutions (where cuDNN gains from it);
- stage timing: the model's preprocess and postprocess go to the run's stage clock
  (``contracts.stage_timer``), the forward pass is the rest of the call.

``record()`` is what result.json's ``compute.execution`` keeps. A deep copy (the runner's FLOP pass) runs
uncompiled (compiling the copy would cost a compilation and count nothing) and with eager attention
(``FlopCounterMode`` has no formula for the CPU SDPA kernel; see ``models.hf_depth``).
"""

from __future__ import annotations

import contextlib
import copy
import os
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np

from rpx_tasks.contracts.stage_timer import NO_STAGES, StageClock
from rpx_tasks.errors import ConfigError
from rpx_tasks.models.hf_batches import float32_outputs, processor_error
from rpx_tasks.models.hf_device_preprocess import DevicePreprocessor
from rpx_tasks.models.hf_loading import inputs_to_device, move_module

PRECISIONS = ("fp32", "bf16", "fp16")
_AUTOCAST_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}


def check_precision(precision: Any, device: str | None = None) -> str:
    """Return ``precision`` when it is one of ``PRECISIONS`` and runs on ``device`` (None: any device).

    Raises ConfigError for another value, and for fp16 on the CPU (CPU autocast in float16 is slow and
    imprecise where it exists at all: use bf16 there).
    """
    if precision not in PRECISIONS:
        raise ConfigError(
            f"Unknown precision {precision!r}.",
            hint=f"use --precision {' | '.join(PRECISIONS)}",
            details={"precision": precision},
        )
    if precision == "fp16" and device is not None and not str(device).startswith("cuda"):
        raise ConfigError(
            f"--precision fp16 needs a CUDA device; this run's device is {device!r}.",
            hint="use --precision bf16 on the CPU (autocast in bfloat16), or fp32",
            details={"precision": precision, "device": device},
        )
    return precision


@dataclass(frozen=True)
class ExecutionOptions:
    """A run's execution choices for an HF fast path (see the module docstring); None means automatic."""

    precision: str = "fp32"
    compile: bool = False
    channels_last: bool | None = None
    device_preprocess: bool | None = None

    @property
    def is_default(self) -> bool:
        """True when nothing was asked for beyond the automatic choices (fp32, eager)."""
        return self.precision == "fp32" and not self.compile


def _eager_attention(module: Any) -> None:
    """Switch a transformers module (and its sub-models) to eager attention where it can; else leave it."""
    setter = getattr(module, "set_attn_implementation", None)
    if callable(setter):
        try:
            setter("eager")
        except Exception:  # noqa: BLE001 - a model that cannot switch keeps its attention; FLOPs may then miss it
            pass


def _has_conv2d(module: Any) -> bool:
    import torch

    return any(isinstance(layer, torch.nn.Conv2d) for layer in module.modules())


class HFExecution:
    """Runs ``module`` with ``processor``'s inputs on ``device`` as ``options`` say (module docstring).

    ``stages`` is the run's stage clock (``use_stage_clock``); ``NO_STAGES`` outside a run.
    """

    def __init__(self, module: Any, processor: Any, device: str, options: ExecutionOptions | None = None):
        self.module = module
        self.processor = processor
        self.device = str(device)
        self.options = options or ExecutionOptions()
        self.stages: StageClock = NO_STAGES
        self.channels_last = False
        self._forward: Callable[..., Any] = module
        self._device_inputs: DevicePreprocessor | None = None

    def setup(self, name: str) -> None:
        """Check the precision against the device, move the module there (channels-last when chosen), build the
        device data path and compile. Raises ConfigError (fp16 off CUDA), ModelError (the move fails)."""
        check_precision(self.options.precision, self.device)
        move_module(self.module, self.device, name)
        on_cuda = self.device.startswith("cuda")
        wanted = self.options.channels_last
        self.channels_last = (on_cuda and _has_conv2d(self.module)) if wanted is None else bool(wanted)
        if self.channels_last:
            import torch

            self.module.to(memory_format=torch.channels_last)
        use_device_path = on_cuda if self.options.device_preprocess is None else self.options.device_preprocess
        self._device_inputs = DevicePreprocessor(self.processor, self.device) if use_device_path else None
        self._forward = self.module
        if self.options.compile:
            import torch

            self._forward = torch.compile(self.module, backend=os.environ.get("RPX_COMPILE_BACKEND") or "inductor")

    def __deepcopy__(self, memo: dict) -> "HFExecution":
        twin = HFExecution(
            copy.deepcopy(self.module, memo),
            copy.deepcopy(self.processor, memo),
            self.device,
            replace(self.options, compile=False),
        )
        twin.channels_last = self.channels_last
        _eager_attention(twin.module)
        twin._device_inputs = copy.deepcopy(self._device_inputs, memo) if self._device_inputs is not None else None
        if twin._device_inputs is not None:
            twin._device_inputs.processor = twin.processor
        return twin

    def record(self) -> dict[str, Any]:
        """result.json's ``compute.execution``: precision, compile, channels_last and the data path."""
        if self._device_inputs is not None:
            path = self._device_inputs.record()
        elif self.options.device_preprocess is None:
            path = {"data_path": "processor", "data_path_reason": "host preprocessing (automatic on the CPU)"}
        else:
            path = {"data_path": "processor", "data_path_reason": "device_preprocess=false"}
        return {
            "precision": self.options.precision,
            "compile": self.options.compile,
            "channels_last": self.channels_last,
            **path,
        }

    def image_inputs(self, images: list[np.ndarray], name: str) -> dict[str, Any]:
        """The model inputs of same-sized uint8 frames, on the device (the ``preprocess`` stage). Raises
        AdapterError when the processor fails."""
        with self.stages.stage("preprocess"):
            inputs = self._device_inputs(images) if self._device_inputs is not None else None
            if inputs is None:
                height, width = images[0].shape[:2]
                try:
                    inputs = self.processor(images=images, return_tensors="pt")
                except Exception as exc:
                    raise processor_error(name, f"{len(images)} frame(s) of {height}x{width}", exc) from exc
            return self.to_device(inputs)

    def to_device(self, inputs: Any) -> dict[str, Any]:
        """Processor outputs on the device in the module's dtype (``hf_loading.inputs_to_device``), pixel values
        channels-last when chosen."""
        import torch

        moved = inputs_to_device(inputs, self.module, self.device)
        if self.channels_last and torch.is_tensor(moved.get("pixel_values")) and moved["pixel_values"].dim() == 4:
            moved["pixel_values"] = moved["pixel_values"].contiguous(memory_format=torch.channels_last)
        return moved

    def forward(self, inputs: dict[str, Any]) -> Any:
        """The module's output for ``inputs`` (inference mode, autocast at the run's precision), floating tensors
        in float32. Raises what the module raises."""
        import torch

        with torch.inference_mode(), self._autocast():
            outputs = self._forward(**inputs)
        return float32_outputs(outputs)

    def _autocast(self) -> contextlib.AbstractContextManager:
        import torch

        if self.options.precision == "fp32":
            return contextlib.nullcontext()
        dtype = getattr(torch, _AUTOCAST_DTYPES[self.options.precision])
        return torch.autocast(device_type=torch.device(self.device).type, dtype=dtype)

    def postprocess(self) -> contextlib.AbstractContextManager:
        """The ``postprocess`` stage: wrap post-processing and the copy of its results to the host in it."""
        import torch

        return _chained(self.stages.stage("postprocess"), torch.inference_mode())


@contextlib.contextmanager
def _chained(*managers: contextlib.AbstractContextManager):
    with contextlib.ExitStack() as stack:
        for manager in managers:
            stack.enter_context(manager)
        yield


def execution_options(
    execution: ExecutionOptions | None, *, device_preprocess: bool | None, channels_last: bool | None
) -> ExecutionOptions:
    """The run's ``execution`` with a loader's ``device_preprocess`` / ``channels_last`` model kwargs applied."""
    options = execution or ExecutionOptions()
    if device_preprocess is not None:
        options = replace(options, device_preprocess=bool(device_preprocess))
    if channels_last is not None:
        options = replace(options, channels_last=bool(channels_last))
    return options


__all__ = ["PRECISIONS", "ExecutionOptions", "HFExecution", "check_precision", "execution_options"]
