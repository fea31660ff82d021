"""The ``--hf-checkpoint`` fast path for monocular depth: any transformers depth-estimation checkpoint.

``load_hf_depth_model("depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf")`` loads the
checkpoint's config, model (``AutoModelForDepthEstimation``) and image processor
(``AutoImageProcessor``), never with remote code. ``HFDepthModel.predict`` runs one batched
forward per group of same-sized frames and post-processes the depth back to each frame's
(H, W), in metres.

Offline use: when ``HF_HUB_OFFLINE=1`` (read at call time) the checkpoint must already be in
the HF cache (``cache_dir`` or ``HF_HUB_CACHE``); nothing waits on the network.

Image processors without torchvision: transformers 5.x picks the PIL backend of a processor
when torchvision is missing (Depth Anything -> ``DPTImageProcessorPil``, ZoeDepth ->
``ZoeDepthImageProcessorPil``). Depth Pro's processor (``DepthProImageProcessor``) exists
only for torchvision, so ``apple/DepthPro-hf`` needs ``pip install torchvision``; the load
error says so.

FLOPs and attention: the runner counts FLOPs with ``torch.utils.flop_counter.FlopCounterMode``.
In torch 2.13 it has formulas for the CUDA kernels behind ``scaled_dot_product_attention``
(flash, memory-efficient and cuDNN, and the math fallback decomposes into counted matmuls),
but not for the CPU kernel ``aten._scaled_dot_product_flash_attention_for_cpu``: on CPU the
attention matmuls of an SDPA model count as 0 FLOPs. So on CPU this loader asks for
``attn_implementation="eager"`` (plain matmul + softmax, counted exactly); on CUDA it keeps the
checkpoint's default (SDPA), which is both counted and faster. An explicit
``attn_implementation=`` in the model kwargs always wins.
"""

from __future__ import annotations

import inspect
import logging
import os
from typing import Any

import numpy as np

from rpx_tasks.errors import AdapterError, ConfigError, ModelError
from rpx_tasks.sample import Sample

logger = logging.getLogger(__name__)

TASK = "monocular_depth"

_DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}


def _offline() -> bool:
    """HF offline mode, read now (huggingface_hub reads the variable only once, at import)."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return constants.is_offline_mode() or env.strip().upper() in {"1", "ON", "YES", "TRUE"}


def _torch_dtype(dtype: Any):
    import torch

    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    key = str(dtype).strip().lower().removeprefix("torch.")
    if key not in _DTYPES:
        raise ConfigError(
            f"Unknown dtype {dtype!r} for an HF depth model.",
            hint="use one of float32, float16 or bfloat16 (or leave it unset for the checkpoint's own)",
        )
    return getattr(torch, _DTYPES[key])


def _depth_model_types() -> list[str]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_DEPTH_ESTIMATION_MAPPING_NAMES

    return sorted(MODEL_FOR_DEPTH_ESTIMATION_MAPPING_NAMES)


def _load_error(checkpoint: str, what: str, exc: Exception) -> ModelError | ConfigError:
    """The error for a failed from_pretrained, with a hint fitting the likely cause."""
    text = str(exc)
    first_line = text.splitlines()[0] if text else type(exc).__name__
    if "Repo id must" in text:
        return ConfigError(
            f"{checkpoint!r} is neither an HF Hub checkpoint id nor an existing local folder.",
            hint=f"use a Hub id like org/name, or a folder holding config.json and the weights ({first_line})",
            details={"checkpoint": checkpoint},
        )
    if "torchvision" in text:
        hint = f"this checkpoint's image processor needs torchvision: pip install torchvision ({first_line})"
    elif _offline():
        hint = (
            "with HF_HUB_OFFLINE=1 the checkpoint must already be in the HF cache "
            "(--cache-dir or HF_HUB_CACHE); download it once online, or unset HF_HUB_OFFLINE"
        )
    elif isinstance(exc, OSError):
        hint = (
            "check the checkpoint id (it is case-sensitive) and your network; gated or private "
            "repos need `hf auth login`; a local folder must hold config.json and the weights"
        )
    else:
        hint = "check that the checkpoint is a transformers depth-estimation model"
    return ModelError(
        f"Could not load the {what} of HF checkpoint {checkpoint!r}: {first_line}",
        hint=hint,
        details={"checkpoint": checkpoint, "error": type(exc).__name__},
    )


def load_hf_depth_model(
    checkpoint: str,
    *,
    device: str = "cpu",
    dtype: str | None = None,
    name: str | None = None,
    cache_dir: str | None = None,
    revision: str | None = None,
    processor_kwargs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> "HFDepthModel":
    """Load an HF depth-estimation checkpoint (Hub id or local folder) as an HFDepthModel.

    ``dtype`` casts the weights (float32/float16/bfloat16); ``processor_kwargs`` go to
    ``AutoImageProcessor.from_pretrained`` and the remaining ``kwargs`` to
    ``AutoModelForDepthEstimation.from_pretrained`` (e.g. ``attn_implementation``). Weights
    load on the CPU; ``setup()`` moves them to ``device``. The display name defaults to the
    checkpoint id.

    Raises ConfigError for an empty or malformed checkpoint id, an unknown dtype or
    ``trust_remote_code`` (never allowed); ModelError when the checkpoint cannot be found (offline: not in the
    cache), is not a transformers depth model, or its processor needs a missing library.
    """
    if not isinstance(checkpoint, str) or not checkpoint.strip():
        raise ConfigError(
            "An HF checkpoint id is required.",
            hint="e.g. --hf-checkpoint depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf",
        )
    if kwargs.pop("trust_remote_code", False) or (processor_kwargs or {}).get("trust_remote_code"):
        raise ConfigError(
            "trust_remote_code is not allowed for the HF depth fast path.",
            hint="it only runs transformers' own model classes; wrap custom code in a factory "
            "and pass --model package.module:factory",
        )
    torch_dtype = _torch_dtype(dtype)

    from transformers import AutoConfig, AutoImageProcessor, AutoModelForDepthEstimation

    hub_kwargs: dict[str, Any] = {"cache_dir": cache_dir, "revision": revision, "trust_remote_code": False}
    if _offline():
        hub_kwargs["local_files_only"] = True
    hub_kwargs.update({k: kwargs.pop(k) for k in ("local_files_only", "token") if k in kwargs})

    try:
        config = AutoConfig.from_pretrained(checkpoint, **hub_kwargs)
    except Exception as exc:  # transformers raises OSError / ValueError / HFValidationError
        raise _load_error(checkpoint, "config", exc) from exc
    model_type = getattr(config, "model_type", None)
    if model_type not in _depth_model_types():
        raise ModelError(
            f"HF checkpoint {checkpoint!r} is a {model_type!r} model, not a depth-estimation model.",
            hint="the depth fast path loads AutoModelForDepthEstimation; model types it knows: "
            + ", ".join(_depth_model_types()),
            details={"checkpoint": checkpoint, "model_type": model_type},
        )
    if getattr(config, "depth_estimation_type", "metric") == "relative":
        logger.warning(
            "%s predicts relative depth; monocular_depth scores absolute metric depth with no alignment.", checkpoint
        )

    model_kwargs = dict(kwargs)
    if not str(device).startswith("cuda"):
        model_kwargs.setdefault("attn_implementation", "eager")  # see the module docstring: FLOPs on CPU
    if torch_dtype is not None:
        model_kwargs["dtype"] = torch_dtype
    try:
        module = AutoModelForDepthEstimation.from_pretrained(checkpoint, config=config, **hub_kwargs, **model_kwargs)
    except Exception as exc:
        raise _load_error(checkpoint, "model weights", exc) from exc
    try:
        processor = AutoImageProcessor.from_pretrained(checkpoint, **hub_kwargs, **(processor_kwargs or {}))
    except Exception as exc:
        raise _load_error(checkpoint, "image processor", exc) from exc

    return HFDepthModel(module, processor, name=name or checkpoint, device=device)


class HFDepthModel:
    """A transformers depth model plus its image processor, benchmarked as one Model.

    ``predict(batch)`` returns one float32 (H, W) depth map in metres per sample, at the
    sample's RGB resolution. Frames of equal size share one forward pass.
    """

    task = TASK

    def __init__(self, module: Any, processor: Any, *, name: str, device: str = "cpu"):
        self.torch_module = module
        self.processor = processor
        self.name = name
        self.device = str(device)
        self._pass_source_sizes = False
        self._ready = False

    def setup(self) -> None:
        """Put the module in eval mode on ``device`` and inspect the processor's post-processing.

        Raises ModelError when the module cannot be moved to the device.
        """
        try:
            self.torch_module.eval().to(self.device)
        except Exception as exc:
            raise ModelError(
                f"Could not move {self.name} to device {self.device!r}: {exc}",
                hint="check --device (`cuda`, `cuda:N` or `cpu`) and free GPU memory",
            ) from exc
        try:
            params = inspect.signature(self.processor.post_process_depth_estimation).parameters
        except (TypeError, ValueError):
            params = {}
        # ZoeDepth pads its input and needs the source sizes to crop the padding back off.
        self._pass_source_sizes = "source_sizes" in params
        self._ready = True

    def predict(self, batch: list[Sample]) -> list[np.ndarray]:
        """Return one float32 (H, W) metric depth map per sample, in batch order.

        Raises AdapterError when the processor or the model fails on the batch.
        """
        if not self._ready:
            self.setup()
        groups: dict[tuple[int, int], list[int]] = {}
        for index, sample in enumerate(batch):
            groups.setdefault(tuple(sample.rgb.shape[:2]), []).append(index)
        depths: list[np.ndarray | None] = [None] * len(batch)
        for (height, width), indices in groups.items():
            maps = self._predict_same_size([batch[i].rgb for i in indices], height, width)
            for index, depth in zip(indices, maps):
                depths[index] = depth
        return depths  # type: ignore[return-value]

    def _predict_same_size(self, images: list[np.ndarray], height: int, width: int) -> np.ndarray:
        """One forward pass for frames of one size; returns a (N, H, W) float32 array."""
        import torch

        sizes = [(height, width)] * len(images)
        try:
            inputs = self.processor(images=images, return_tensors="pt")
        except Exception as exc:
            raise AdapterError(
                f"The image processor of {self.name} failed on {len(images)} frame(s) of {height}x{width}: {exc}",
                hint="frames must be (H, W, 3) uint8 RGB",
            ) from exc
        inputs = self._to_device(inputs)
        post_kwargs: dict[str, Any] = {"target_sizes": sizes}
        if self._pass_source_sizes:
            post_kwargs["source_sizes"] = sizes
        try:
            with torch.inference_mode():
                outputs = self.torch_module(**inputs)
                for key, value in list(outputs.items()):
                    if torch.is_tensor(value) and value.is_floating_point():
                        outputs[key] = value.float()  # post-processing interpolates in float32
                results = self.processor.post_process_depth_estimation(outputs, **post_kwargs)
                stacked = torch.stack([r["predicted_depth"].reshape(height, width) for r in results])
                return stacked.to(torch.float32).cpu().numpy()
        except Exception as exc:
            out_of_memory = "out of memory" in str(exc).lower()
            raise AdapterError(
                f"{self.name} failed on {len(images)} frame(s) of {height}x{width}: {type(exc).__name__}: {exc}",
                hint="lower --batch-size"
                if out_of_memory
                else "run the checkpoint on one frame in Python to see the full traceback",
            ) from exc

    def _to_device(self, inputs: Any) -> dict[str, Any]:
        import torch

        device = torch.device(self.device)
        dtype = next(self.torch_module.parameters()).dtype
        moved = {}
        for key, value in inputs.items():
            if torch.is_tensor(value):
                if value.is_floating_point():
                    value = value.to(dtype)
                if device.type == "cuda":
                    # Pinned host memory lets the copy overlap with work already queued on the GPU.
                    value = value.pin_memory().to(device, non_blocking=True)
                else:
                    value = value.to(device)
            moved[key] = value
        return moved

    def __repr__(self) -> str:
        return f"HFDepthModel(name={self.name!r}, device={self.device!r})"


__all__ = ["HFDepthModel", "load_hf_depth_model"]
