"""The ``--hf-checkpoint`` fast path for object segmentation: transformers universal-segmentation checkpoints.

``load_hf_segmentation_model("facebook/mask2former-swin-tiny-coco-instance")`` loads the
checkpoint's config, model (``AutoModelForUniversalSegmentation``: Mask2Former, MaskFormer, EoMT,
DETR-panoptic) and image processor, never with remote code (offline mode, errors and devices as in
``models.hf_loading``). ``HFSegmentationModel.predict`` runs one batched forward per group of
same-sized frames and post-processes each frame to an (H, W) int32 instance map with the first
method the processor has, in this order (reference §6.4): ``post_process_instance_segmentation``,
``post_process_panoptic_segmentation``, ``post_process_semantic_segmentation``; each gets
``target_sizes`` and, when it accepts them, ``threshold`` and ``return_coco_annotation=False``.

Ids follow the RPX mask convention, 0 = background: instance and panoptic segments are numbered
1..n in the order the post-processor lists them (their own ids mark background as -1 or 0 and start
at 0 or 1 depending on the model, which would put a model's first object on the ground truth's
background); a semantic map keeps its class ids. mIoU compares ids, and a COCO model's ids are not
the dataset's instance ids, so expect low mIoU from any off-the-shelf model; temporal stability and
SGC do not depend on the ids.

Requirements: these models build their training loss (Hungarian matching) at construction, which
needs ``scipy``. OneFormer needs a text tokenizer for its task prompt and is not supported.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from rpx_tasks.contracts.frames import resize_labels
from rpx_tasks.contracts.stage_timer import StageClock
from rpx_tasks.errors import AdapterError
from rpx_tasks.models.hf_batches import forward_error, predict_by_size
from rpx_tasks.models.hf_execution import ExecutionOptions, HFExecution, execution_options
from rpx_tasks.models.hf_loading import (
    check_request,
    hub_kwargs,
    load_checkpoint,
    model_load_kwargs,
)
from rpx_tasks.sample import Sample

TASK = "object_segmentation"
POST_PROCESSORS = (
    "post_process_instance_segmentation",
    "post_process_panoptic_segmentation",
    "post_process_semantic_segmentation",
)
_UNSUPPORTED = {
    "oneformer": "OneFormer needs its text task prompt tokenized, which an image processor cannot do",
    "videomt": "it segments videos, not single frames",
}


def _segmentation_model_types() -> list[str]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_UNIVERSAL_SEGMENTATION_MAPPING_NAMES

    return sorted(set(MODEL_FOR_UNIVERSAL_SEGMENTATION_MAPPING_NAMES) - set(_UNSUPPORTED))


def load_hf_segmentation_model(
    checkpoint: str,
    *,
    device: str = "cpu",
    threshold: float = 0.5,
    name: str | None = None,
    cache_dir: str | None = None,
    revision: str | None = None,
    dtype: str | None = None,
    processor_kwargs: dict[str, Any] | None = None,
    execution: ExecutionOptions | None = None,
    device_preprocess: bool | None = None,
    channels_last: bool | None = None,
    **kwargs: Any,
) -> "HFSegmentationModel":
    """Load an HF universal-segmentation checkpoint (Hub id or local folder) as an HFSegmentationModel.

    ``execution``: the run's precision and compile choice (``models.hf_execution``); ``device_preprocess``
    and ``channels_last`` override its automatic data path and memory format.

    ``threshold`` is the score a segment needs to be kept (passed to post-processing when it
    accepts one); ``dtype`` casts the weights; ``processor_kwargs`` go to
    ``AutoImageProcessor.from_pretrained`` and the remaining ``kwargs`` to
    ``AutoModelForUniversalSegmentation.from_pretrained``. Weights load on the CPU; ``setup()``
    moves them to ``device``. The display name defaults to the checkpoint id.

    Raises ConfigError for an empty or malformed checkpoint id, an unknown dtype or
    ``trust_remote_code``; ModelError when the checkpoint cannot be found (offline: not in the
    cache), is not a supported universal-segmentation model, or needs a missing library (scipy,
    torchvision: the hint says which).
    """
    check_request(
        checkpoint,
        "facebook/mask2former-swin-tiny-coco-instance",
        kwargs,
        processor_kwargs,
        kind="universal-segmentation",
    )
    from transformers import AutoModelForUniversalSegmentation

    hub = hub_kwargs(cache_dir, revision, kwargs)
    model_kwargs = model_load_kwargs(kwargs, device=device, dtype=dtype, eager_on_cpu=False)
    _config, module, processor = load_checkpoint(
        checkpoint,
        AutoModelForUniversalSegmentation,
        _segmentation_model_types(),
        expected="a universal-segmentation model",
        hub=hub,
        model_kwargs=model_kwargs,
        processor_kwargs=processor_kwargs,
        unsupported=_UNSUPPORTED,
    )
    options = execution_options(execution, device_preprocess=device_preprocess, channels_last=channels_last)
    return HFSegmentationModel(
        module, processor, name=name or checkpoint, device=device, threshold=threshold, execution=options
    )


def instance_map(result: Any, height: int, width: int) -> np.ndarray:
    """The (H, W) int32 instance map of one post-processing result, 0 = background.

    A dict with ``segmentation`` and ``segments_info`` (instance / panoptic) gives its segments
    the ids 1..n in list order, everything else 0 (a None segmentation means no segment); any
    other result is a semantic class map, kept as is. A map of another size is resized nearest.
    Raises AdapterError for a result that holds no 2-D map.
    """
    if isinstance(result, dict) or hasattr(result, "keys"):
        segmentation = result.get("segmentation")
        if segmentation is None:
            return np.zeros((height, width), np.int32)
        raw = _numpy(segmentation)
        if raw.ndim != 2:
            raise AdapterError(
                f"Post-processing returned a segmentation of shape {raw.shape}; expected (H, W).",
                hint="binary-map or RLE outputs are not supported; "
                "leave return_binary_maps / return_coco_annotation off",
            )
        ids = np.array([int(info["id"]) for info in result.get("segments_info") or []], np.int64)
        labels = np.zeros(raw.shape, np.int32)
        if ids.size:
            order = np.argsort(ids, kind="stable")
            values = np.rint(raw).astype(np.int64)
            position = np.clip(np.searchsorted(ids[order], values), 0, ids.size - 1)
            found = ids[order][position] == values
            labels[found] = (order[position[found]] + 1).astype(np.int32)
    else:
        raw = _numpy(result)
        if raw.ndim != 2:
            raise AdapterError(
                f"Post-processing returned a map of shape {raw.shape}; expected (H, W).",
                hint="the semantic post-processing should give one (H, W) class map per frame",
            )
        labels = np.rint(raw).astype(np.int32)
    return resize_labels(labels, height, width)


def _numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


class HFSegmentationModel:
    """A transformers universal-segmentation model plus its image processor, benchmarked as one Model.

    ``predict(batch)`` returns one int32 (H, W) instance map (0 = background) per sample, at the
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
        threshold: float = 0.5,
        execution: ExecutionOptions | None = None,
    ):
        self.torch_module = module
        self.processor = processor
        self.name = name
        self.device = str(device)
        self.threshold = threshold
        self.execution = HFExecution(module, processor, self.device, execution)
        self._post_process: Any = None
        self._post_kwargs: dict[str, Any] = {}

    def use_stage_clock(self, clock: StageClock) -> None:
        """Time preprocess and postprocess on the run's stage clock (``contracts.stage_timer``)."""
        self.execution.stages = clock

    def setup(self) -> None:
        """Put the module in eval mode on ``device`` and pick the processor's post-processing.

        Raises ModelError when the module cannot be moved; AdapterError when the processor has
        no ``post_process_*_segmentation`` method; ConfigError for fp16 off CUDA.
        """
        self.execution.setup(self.name)
        for method in POST_PROCESSORS:
            if callable(getattr(self.processor, method, None)):
                self._post_process = getattr(self.processor, method)
                break
        else:
            raise AdapterError(
                f"The image processor of {self.name} ({type(self.processor).__name__}) "
                "exposes no post_process_*_segmentation.",
                hint="use a universal-segmentation checkpoint (Mask2Former, MaskFormer, EoMT)",
            )
        try:
            params = inspect.signature(self._post_process).parameters
        except (TypeError, ValueError):
            params = {}
        accepted = {"threshold": self.threshold, "return_coco_annotation": False, "label_ids_to_fuse": set()}
        self._post_kwargs = {key: value for key, value in accepted.items() if key in params}

    def predict(self, batch: list[Sample]) -> list[np.ndarray]:
        """Return one int32 (H, W) instance map per sample, in batch order.

        Raises AdapterError when the processor, the model or the post-processing fails on the batch.
        """
        if self._post_process is None:
            self.setup()
        return predict_by_size(
            batch,
            lambda sample: tuple(sample.rgb.shape[:2]),
            lambda samples, size: self._predict_same_size([sample.rgb for sample in samples], *size),
        )

    def _predict_same_size(self, images: list[np.ndarray], height: int, width: int) -> list[np.ndarray]:
        described = f"{len(images)} frame(s) of {height}x{width}"
        inputs = self.execution.image_inputs(images, self.name)
        try:
            outputs = self.execution.forward(inputs)
            with self.execution.postprocess():
                results = self._post_process(outputs, target_sizes=[(height, width)] * len(images), **self._post_kwargs)
        except Exception as exc:
            raise forward_error(self.name, described, exc) from exc
        if len(results) != len(images):
            raise AdapterError(
                f"Post-processing of {self.name} returned {len(results)} results for {len(images)} frames.",
                hint="the processor's post-processing must return one result per image",
            )
        with self.execution.postprocess():  # only the (H, W) maps and segment ids come back to the host
            return [instance_map(result, height, width) for result in results]

    def __repr__(self) -> str:
        return f"HFSegmentationModel(name={self.name!r}, device={self.device!r})"


__all__ = ["HFSegmentationModel", "POST_PROCESSORS", "instance_map", "load_hf_segmentation_model"]
