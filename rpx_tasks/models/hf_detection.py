"""The ``--hf-checkpoint`` fast paths of the box tasks.

- ``load_hf_detection_model`` (object_detection): any transformers ``AutoModelForObjectDetection``
  checkpoint (YOLOS, DETR, RT-DETR, ...) with its ``AutoImageProcessor``; predictions are the
  processor's ``post_process_object_detection`` at the frame size, labelled with the
  checkpoint's ``id2label`` names.
- ``load_hf_zero_shot_model`` (open_vocab_detection, visual_grounding): any
  ``AutoModelForZeroShotObjectDetection`` checkpoint (OWL-ViT, OWLv2, Grounding DINO) with its
  ``AutoProcessor``. The text queries are the sample's vocabulary (open vocabulary) or its
  referring expression (grounding); predictions come from the processor's
  ``post_process_grounded_object_detection`` at the frame size, labelled with the query they
  answer. ``load_hf_open_vocab_model`` and ``load_hf_grounding_model`` are its two tasks'
  ``TaskSpec.hf_loader``.

Both run one batched forward per group of same-sized frames (RPX frames are all 640x480, so
one per batch), return boxes clipped to the frame and sorted by descending score (at most
``max_detections``; for grounding the first box is the one scored) and never load remote
code. Offline use, dtype casting, eager attention on CPU (for FLOP counting), load errors and
device moves come from ``models.hf_loading``, as for the other fast paths.

Default score thresholds: 0.5 for closed-vocabulary detection (the transformers pipeline
default), 0.1 for open-vocabulary detection (the OWL-ViT default) and 0.0 for grounding (the
top box is always kept; an empty answer would score 0). Pass ``threshold=`` to change them.
"""

from __future__ import annotations

import inspect
from typing import Any

from rpx_tasks.errors import ConfigError
from rpx_tasks.models.hf_box_model import MAX_DETECTIONS, ZERO_SHOT_TASKS, HFBoxModel
from rpx_tasks.models.hf_execution import ExecutionOptions, execution_options
from rpx_tasks.models.hf_loading import (
    check_request,
    hub_kwargs,
    load_checkpoint,
    model_load_kwargs,
)

DETECTION_TASK = "object_detection"
DEFAULT_THRESHOLD = {"object_detection": 0.5, "open_vocab_detection": 0.1, "visual_grounding": 0.0}
# Zero-shot model types whose processor takes all queries of an image as one "a. b." string.


def _model_types(zero_shot: bool) -> list[str]:
    from transformers.models.auto import modeling_auto

    names = (
        modeling_auto.MODEL_FOR_ZERO_SHOT_OBJECT_DETECTION_MAPPING_NAMES
        if zero_shot
        else modeling_auto.MODEL_FOR_OBJECT_DETECTION_MAPPING_NAMES
    )
    return sorted(names)


def _load(
    checkpoint: str,
    *,
    zero_shot: bool,
    device: str,
    dtype: Any,
    cache_dir: str | None,
    revision: str | None,
    processor_kwargs: dict[str, Any] | None,
    model_kwargs: dict[str, Any],
) -> tuple[Any, Any, str]:
    """(module, processor, model_type) of a checkpoint; raises ConfigError / ModelError."""
    kind = "zero-shot object-detection" if zero_shot else "object-detection"
    example = "google/owlv2-base-patch16-ensemble" if zero_shot else "hustvl/yolos-small"
    check_request(checkpoint, example, model_kwargs, processor_kwargs, kind=kind)

    from transformers import AutoModelForObjectDetection, AutoModelForZeroShotObjectDetection, AutoProcessor

    hub = hub_kwargs(cache_dir, revision, model_kwargs)
    config, module, processor = load_checkpoint(
        checkpoint,
        AutoModelForZeroShotObjectDetection if zero_shot else AutoModelForObjectDetection,
        _model_types(zero_shot),
        expected=f"{'a' if zero_shot else 'an'} {kind} model",
        hub=hub,
        model_kwargs=model_load_kwargs(model_kwargs, device=device, dtype=dtype, eager_on_cpu=False),
        processor_kwargs=processor_kwargs,
        auto_processor=AutoProcessor if zero_shot else None,
    )
    return module, processor, getattr(config, "model_type", None)


def load_hf_detection_model(
    checkpoint: str,
    *,
    device: str = "cpu",
    dtype: str | None = None,
    name: str | None = None,
    cache_dir: str | None = None,
    revision: str | None = None,
    threshold: float = DEFAULT_THRESHOLD[DETECTION_TASK],
    max_detections: int = MAX_DETECTIONS,
    processor_kwargs: dict[str, Any] | None = None,
    execution: ExecutionOptions | None = None,
    device_preprocess: bool | None = None,
    channels_last: bool | None = None,
    **kwargs: Any,
) -> HFBoxModel:
    """Load an ``AutoModelForObjectDetection`` checkpoint (Hub id or local folder) for object_detection.

    ``execution``: the run's precision and compile choice (``models.hf_execution``); ``device_preprocess``
    and ``channels_last`` override its automatic data path and memory format (the device data path serves
    image-only inputs; zero-shot queries go through the processor).
    ``threshold`` is the score below which boxes are dropped; remaining ``kwargs`` go to
    ``from_pretrained`` of the model. Weights load on the CPU; ``setup()`` moves them to
    ``device``. The display name defaults to the checkpoint id.

    Raises ConfigError for an empty or malformed id, an unknown dtype or ``trust_remote_code``;
    ModelError when the checkpoint cannot be found (offline: not in the cache), is not an
    object-detection model, or its processor needs a missing library.
    """
    module, processor, model_type = _load(
        checkpoint,
        zero_shot=False,
        device=device,
        dtype=dtype,
        cache_dir=cache_dir,
        revision=revision,
        processor_kwargs=processor_kwargs,
        model_kwargs=dict(kwargs),
    )
    return HFBoxModel(
        module,
        processor,
        task=DETECTION_TASK,
        model_type=model_type,
        name=name or checkpoint,
        device=device,
        threshold=threshold,
        max_detections=max_detections,
        execution=execution_options(execution, device_preprocess=device_preprocess, channels_last=channels_last),
    )


def load_hf_zero_shot_model(
    checkpoint: str,
    *,
    task: str,
    device: str = "cpu",
    dtype: str | None = None,
    name: str | None = None,
    cache_dir: str | None = None,
    revision: str | None = None,
    threshold: float | None = None,
    text_threshold: float | None = None,
    max_detections: int = MAX_DETECTIONS,
    processor_kwargs: dict[str, Any] | None = None,
    execution: ExecutionOptions | None = None,
    device_preprocess: bool | None = None,
    channels_last: bool | None = None,
    **kwargs: Any,
) -> HFBoxModel:
    """Load an ``AutoModelForZeroShotObjectDetection`` checkpoint for ``task`` (open_vocab_detection
    or visual_grounding).

    ``threshold`` defaults to ``DEFAULT_THRESHOLD[task]``; ``text_threshold`` goes to processors
    that take one (Grounding DINO). Otherwise as :func:`load_hf_detection_model`.

    Raises ConfigError for an unknown task, an empty or malformed id, an unknown dtype or
    ``trust_remote_code``; ModelError when the checkpoint cannot be loaded or is not a zero-shot
    object-detection model.
    """
    if task not in ZERO_SHOT_TASKS:
        raise ConfigError(
            f"The zero-shot detection fast path serves {list(ZERO_SHOT_TASKS)}, not {task!r}.",
            hint="use load_hf_detection_model for object_detection",
        )
    module, processor, model_type = _load(
        checkpoint,
        zero_shot=True,
        device=device,
        dtype=dtype,
        cache_dir=cache_dir,
        revision=revision,
        processor_kwargs=processor_kwargs,
        model_kwargs=dict(kwargs),
    )
    return HFBoxModel(
        module,
        processor,
        task=task,
        model_type=model_type,
        name=name or checkpoint,
        device=device,
        threshold=DEFAULT_THRESHOLD[task] if threshold is None else threshold,
        text_threshold=text_threshold,
        max_detections=max_detections,
        execution=execution_options(execution, device_preprocess=device_preprocess, channels_last=channels_last),
    )


def load_hf_open_vocab_model(checkpoint: str, **kwargs: Any) -> HFBoxModel:
    """The open_vocab_detection fast path: :func:`load_hf_zero_shot_model` with the vocabulary as queries."""
    return load_hf_zero_shot_model(checkpoint, task="open_vocab_detection", **kwargs)


def load_hf_grounding_model(checkpoint: str, **kwargs: Any) -> HFBoxModel:
    """The visual_grounding fast path: :func:`load_hf_zero_shot_model` with the expression as the query."""
    return load_hf_zero_shot_model(checkpoint, task="visual_grounding", **kwargs)


def _zero_shot_signature_without_task() -> inspect.Signature:
    """:func:`load_hf_zero_shot_model`'s signature less ``task``, which the two task loaders fix."""
    full = inspect.signature(load_hf_zero_shot_model)
    return full.replace(parameters=[p for p in full.parameters.values() if p.name != "task"])


# The keywords the two task loaders pass on are load_hf_zero_shot_model's: say so to inspect.signature,
# which the run's validation reads (hf_loading.check_loader_kwargs).
load_hf_open_vocab_model.__signature__ = _zero_shot_signature_without_task()  # type: ignore[attr-defined]
load_hf_grounding_model.__signature__ = _zero_shot_signature_without_task()  # type: ignore[attr-defined]


__all__ = [
    "DEFAULT_THRESHOLD",
    "HFBoxModel",
    "load_hf_detection_model",
    "load_hf_grounding_model",
    "load_hf_open_vocab_model",
    "load_hf_zero_shot_model",
]
