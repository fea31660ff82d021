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
attention matmuls of an SDPA model count as 0 FLOPs. So the model runs with the checkpoint's
default attention (SDPA where it has one: faster, on CPU too) and the FLOP pass's deep copy switches
to ``attn_implementation="eager"`` (plain matmul + softmax, counted exactly; ``models.hf_execution``).
An explicit ``attn_implementation=`` in the model kwargs sets what the run uses.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import numpy as np

from rpx_tasks.contracts.stage_timer import StageClock
from rpx_tasks.models.hf_batches import forward_error, predict_by_size
from rpx_tasks.models.hf_execution import ExecutionOptions, HFExecution, execution_options
from rpx_tasks.models.hf_loading import (
    check_request,
    hub_kwargs,
    load_checkpoint,
    model_load_kwargs,
)
from rpx_tasks.sample import Sample

logger = logging.getLogger(__name__)

TASK = "monocular_depth"


def _depth_model_types() -> list[str]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_DEPTH_ESTIMATION_MAPPING_NAMES

    return sorted(MODEL_FOR_DEPTH_ESTIMATION_MAPPING_NAMES)


def load_hf_depth_model(
    checkpoint: str,
    *,
    device: str = "cpu",
    dtype: str | None = None,
    name: str | None = None,
    cache_dir: str | None = None,
    revision: str | None = None,
    processor_kwargs: dict[str, Any] | None = None,
    execution: ExecutionOptions | None = None,
    device_preprocess: bool | None = None,
    channels_last: bool | None = None,
    **kwargs: Any,
) -> "HFDepthModel":
    """Load an HF depth-estimation checkpoint (Hub id or local folder) as an HFDepthModel.

    ``execution``: the run's precision and compile choice (``models.hf_execution``); ``device_preprocess``
    and ``channels_last`` override its automatic data path and memory format.
    ``dtype`` casts the weights (float32/float16/bfloat16); ``processor_kwargs`` go to
    ``AutoImageProcessor.from_pretrained`` and the remaining ``kwargs`` to
    ``AutoModelForDepthEstimation.from_pretrained`` (e.g. ``attn_implementation``). Weights
    load on the CPU; ``setup()`` moves them to ``device``. The display name defaults to the
    checkpoint id.

    Raises ConfigError for an empty or malformed checkpoint id, an unknown dtype or
    ``trust_remote_code`` (never allowed); ModelError when the checkpoint cannot be found (offline: not in the
    cache), is not a transformers depth model, or its processor needs a missing library.
    """
    check_request(
        checkpoint,
        "depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf",
        kwargs,
        processor_kwargs,
        kind="depth-estimation",
    )
    from transformers import AutoModelForDepthEstimation

    hub = hub_kwargs(cache_dir, revision, kwargs)
    model_kwargs = model_load_kwargs(kwargs, device=device, dtype=dtype, eager_on_cpu=False)  # see FLOPs above
    config, module, processor = load_checkpoint(
        checkpoint,
        AutoModelForDepthEstimation,
        _depth_model_types(),
        expected="a depth-estimation model",
        hub=hub,
        model_kwargs=model_kwargs,
        processor_kwargs=processor_kwargs,
    )
    if getattr(config, "depth_estimation_type", "metric") == "relative":
        logger.warning(
            "%s predicts relative depth; monocular_depth scores it as metric depth unless --alignment fits it "
            "(ls_disparity for an inverse-depth output).",
            checkpoint,
        )
    options = execution_options(execution, device_preprocess=device_preprocess, channels_last=channels_last)
    return HFDepthModel(module, processor, name=name or checkpoint, device=device, execution=options)


class HFDepthModel:
    """A transformers depth model plus its image processor, benchmarked as one Model.

    ``predict(batch)`` returns one float32 (H, W) depth map in metres per sample, at the
    sample's RGB resolution. Frames of equal size share one forward pass.
    """

    task = TASK

    def __init__(
        self,
        module: Any,
        processor: Any,
        *,
        name: str,
        device: str = "cpu",
        execution: ExecutionOptions | None = None,
    ):
        self.torch_module = module
        self.processor = processor
        self.name = name
        self.device = str(device)
        self.execution = HFExecution(module, processor, self.device, execution)
        self._pass_source_sizes = False
        self._ready = False

    def use_stage_clock(self, clock: StageClock) -> None:
        """Time preprocess and postprocess on the run's stage clock (``contracts.stage_timer``)."""
        self.execution.stages = clock

    def setup(self) -> None:
        """Put the module in eval mode on ``device`` (data path, precision, compile: ``models.hf_execution``) and
        inspect the processor's post-processing.

        Raises ModelError when the module cannot be moved to the device, ConfigError for fp16 off CUDA.
        """
        self.execution.setup(self.name)
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
        return predict_by_size(
            batch,
            lambda sample: tuple(sample.rgb.shape[:2]),
            lambda samples, size: self._predict_same_size([sample.rgb for sample in samples], *size),
        )

    def _predict_same_size(self, images: list[np.ndarray], height: int, width: int) -> np.ndarray:
        """One forward pass for frames of one size; returns a (N, H, W) float32 array."""
        import torch

        sizes = [(height, width)] * len(images)
        described = f"{len(images)} frame(s) of {height}x{width}"
        inputs = self.execution.image_inputs(images, self.name)
        post_kwargs: dict[str, Any] = {"target_sizes": sizes}
        if self._pass_source_sizes:
            post_kwargs["source_sizes"] = sizes
        try:
            outputs = self.execution.forward(inputs)
            with self.execution.postprocess():
                # Resized to the frame on the device; only the (N, H, W) float32 depth comes back.
                results = self.processor.post_process_depth_estimation(outputs, **post_kwargs)
                stacked = torch.stack([r["predicted_depth"].reshape(height, width) for r in results])
                return stacked.to(torch.float32).cpu().numpy()
        except Exception as exc:
            raise forward_error(self.name, described, exc) from exc

    def __repr__(self) -> str:
        return f"HFDepthModel(name={self.name!r}, device={self.device!r})"


__all__ = ["HFDepthModel", "load_hf_depth_model"]
