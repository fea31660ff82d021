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
from typing import Any, Sequence

import numpy as np

from rpx_tasks.contracts.boxes import BoxPrediction, clip_boxes
from rpx_tasks.errors import AdapterError, ConfigError, ModelError
from rpx_tasks.models.hf_batches import float32_outputs, forward_error, predict_by_size
from rpx_tasks.models.hf_loading import (
    check_request,
    hub_kwargs,
    inputs_to_device,
    load_checkpoint,
    model_load_kwargs,
    move_module,
)
from rpx_tasks.sample import Sample

DETECTION_TASK = "object_detection"
ZERO_SHOT_TASKS = ("open_vocab_detection", "visual_grounding")
DEFAULT_THRESHOLD = {"object_detection": 0.5, "open_vocab_detection": 0.1, "visual_grounding": 0.0}
MAX_DETECTIONS = 100
# Zero-shot model types whose processor takes all queries of an image as one "a. b." string.
_MERGED_QUERY_TYPES = frozenset({"grounding-dino", "mm-grounding-dino"})


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
        model_kwargs=model_load_kwargs(model_kwargs, device=device, dtype=dtype),
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
    **kwargs: Any,
) -> "HFBoxModel":
    """Load an ``AutoModelForObjectDetection`` checkpoint (Hub id or local folder) for object_detection.

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
    **kwargs: Any,
) -> "HFBoxModel":
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
    )


def load_hf_open_vocab_model(checkpoint: str, **kwargs: Any) -> "HFBoxModel":
    """The open_vocab_detection fast path: :func:`load_hf_zero_shot_model` with the vocabulary as queries."""
    return load_hf_zero_shot_model(checkpoint, task="open_vocab_detection", **kwargs)


def load_hf_grounding_model(checkpoint: str, **kwargs: Any) -> "HFBoxModel":
    """The visual_grounding fast path: :func:`load_hf_zero_shot_model` with the expression as the query."""
    return load_hf_zero_shot_model(checkpoint, task="visual_grounding", **kwargs)


def _queries(sample: Sample, task: str) -> list[str]:
    """The text queries of a sample: its vocabulary (open vocabulary) or its expression (grounding)."""
    truth = sample.ground_truth
    if task == "visual_grounding":
        return [str(truth.text)]
    return [str(word) for word in (getattr(truth, "vocabulary", None) or [])]


def _normalised_phrase(text: str) -> str:
    return " ".join(str(text).lower().replace(".", " ").split())


class HFBoxModel:
    """A transformers (zero-shot) object detector plus its processor, benchmarked as one Model.

    ``predict(batch)`` returns one BoxPrediction per sample: boxes in the frame's pixels
    (clipped to it), scores and labels, by descending score.
    """

    def __init__(
        self,
        module: Any,
        processor: Any,
        *,
        task: str,
        model_type: str | None,
        name: str,
        device: str = "cpu",
        threshold: float = 0.5,
        text_threshold: float | None = None,
        max_detections: int = MAX_DETECTIONS,
    ):
        self.torch_module = module
        self.processor = processor
        self.task = task
        self.model_type = model_type
        self.name = name
        self.device = str(device)
        self.threshold = float(threshold)
        self.text_threshold = text_threshold
        self.max_detections = int(max_detections)
        self._post_params: set[str] = set()
        self._ready = False

    @property
    def zero_shot(self) -> bool:
        return self.task in ZERO_SHOT_TASKS

    def setup(self) -> None:
        """Put the module in eval mode on ``device`` and inspect the processor's post-processing.

        Raises ModelError when the module cannot be moved to the device or the processor has no
        post-processing for its kind of model.
        """
        move_module(self.torch_module, self.device, self.name)
        method = "post_process_grounded_object_detection" if self.zero_shot else "post_process_object_detection"
        post = getattr(self.processor, method, None)
        if post is None:
            raise ModelError(
                f"The processor of {self.name} ({type(self.processor).__name__}) has no {method}.",
                hint="this fast path needs a transformers processor with box post-processing",
            )
        try:
            self._post_params = set(inspect.signature(post).parameters)
        except (TypeError, ValueError):
            self._post_params = {"threshold", "target_sizes"}
        self._ready = True

    def predict(self, batch: list[Sample]) -> list[BoxPrediction]:
        """Return one BoxPrediction per sample, in batch order.

        Raises AdapterError when the processor or the model fails on the batch.
        """
        if not self._ready:
            self.setup()
        return predict_by_size(
            batch,
            lambda sample: tuple(sample.rgb.shape[:2]),
            lambda samples, size: self._predict_same_size(samples, *size),
        )

    def _predict_same_size(self, samples: list[Sample], height: int, width: int) -> list[BoxPrediction]:
        empty = BoxPrediction(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), [])
        queries = [_queries(sample, self.task) for sample in samples] if self.zero_shot else None
        # A frame with nothing to look for (an empty vocabulary) gets no boxes and no forward pass.
        active = [i for i in range(len(samples)) if queries is None or queries[i]]
        results: list[BoxPrediction] = [empty] * len(samples)
        if not active:
            return results
        images = [samples[i].rgb for i in active]
        active_queries = [queries[i] for i in active] if queries is not None else None
        inputs = self._inputs(images, active_queries, height, width)
        try:
            raw = self._forward_and_post_process(inputs, active_queries, [(height, width)] * len(active))
        except Exception as exc:
            raise forward_error(self.name, f"{len(active)} frame(s) of {height}x{width}", exc) from exc
        for position, result in zip(active, raw):
            position_queries = queries[position] if queries is not None else None
            results[position] = self._to_prediction(result, position_queries, height, width)
        return results

    def _inputs(
        self, images: list[np.ndarray], queries: list[list[str]] | None, height: int, width: int
    ) -> dict[str, Any]:
        try:
            if queries is None:
                inputs = self.processor(images=images, return_tensors="pt")
            elif self.model_type in _MERGED_QUERY_TYPES:
                text = [". ".join(_normalised_phrase(q) for q in image_queries) + "." for image_queries in queries]
                inputs = self.processor(images=images, text=text, padding=True, return_tensors="pt")
            else:
                # OWL processors tokenise each image's queries separately: pad all to one length.
                inputs = self.processor(
                    images=images,
                    text=queries,
                    padding="max_length",
                    max_length=self._query_length(queries),
                    truncation=True,
                    return_tensors="pt",
                )
        except Exception as exc:
            missing = next((lib for lib in ("scipy", "torchvision") if f"requires the {lib} library" in str(exc)), None)
            raise AdapterError(
                f"The processor of {self.name} failed on {len(images)} frame(s) of {height}x{width}: {exc}",
                hint=f"this checkpoint's image processor needs {missing}: pip install {missing}"
                if missing
                else "frames must be (H, W, 3) uint8 RGB"
                + ("" if queries is None else "; queries must be non-empty text"),
            ) from exc
        return inputs_to_device(inputs, self.torch_module, self.device)

    def _query_length(self, queries: list[list[str]]) -> int:
        """Tokens in the longest query of the batch, capped by the tokenizer's maximum."""
        tokenizer = self.processor.tokenizer
        all_queries = [q for image_queries in queries for q in image_queries]
        longest = max(len(ids) for ids in tokenizer(all_queries)["input_ids"])
        limit = getattr(tokenizer, "model_max_length", None)
        return min(longest, limit) if isinstance(limit, int) and limit > 0 else longest

    def _forward_and_post_process(
        self, inputs: dict[str, Any], queries: list[list[str]] | None, sizes: list[tuple[int, int]]
    ) -> list[dict[str, Any]]:
        import torch

        with torch.inference_mode():
            outputs = float32_outputs(self.torch_module(**inputs))
            kwargs: dict[str, Any] = {"threshold": self.threshold, "target_sizes": sizes}
            if queries is None:
                return self.processor.post_process_object_detection(outputs, **kwargs)
            logits = outputs.get("logits")
            if (
                self.model_type not in _MERGED_QUERY_TYPES
                and torch.is_tensor(logits)
                and logits.shape[-1] == max(map(len, queries))
            ):
                # One logit per query (OWL): a frame's padding queries must not win its boxes, so
                # a frame scores the same alone as in a batch with longer vocabularies.
                logits = logits.clone()
                for row, image_queries in enumerate(queries):
                    logits[row, ..., len(image_queries) :] = torch.finfo(logits.dtype).min
                outputs["logits"] = logits
            # No text_labels: OWL processors index them with padded query ids; labels are mapped below.
            if "input_ids" in self._post_params and "input_ids" in inputs:
                kwargs["input_ids"] = inputs["input_ids"]
            if "text_threshold" in self._post_params and self.text_threshold is not None:
                kwargs["text_threshold"] = self.text_threshold
            kwargs = {k: v for k, v in kwargs.items() if k in self._post_params}
            results = self.processor.post_process_grounded_object_detection(outputs, **kwargs)
            if self.model_type in _MERGED_QUERY_TYPES:
                self._attach_query_index(results, outputs["logits"], inputs["input_ids"], queries)
            return results

    def _attach_query_index(
        self, results: list[dict[str, Any]], logits: Any, input_ids: Any, queries: list[list[str]]
    ) -> None:
        """Grounding DINO scores text tokens, not queries: give each kept box the query ("a. b."
        phrase) holding its most probable token, as ``result["query_index"]``.

        The boxes kept by the post-processing are those whose best token probability exceeds
        the threshold, in query order; the same rule picks them here.
        """
        tokenizer = self.processor.tokenizer
        separator = tokenizer.convert_tokens_to_ids(".")
        special = set(tokenizer.all_special_ids)
        probs = logits.sigmoid().cpu().numpy()
        ids = input_ids.cpu().numpy()
        for row, result in enumerate(results):
            is_separator = ids[row] == separator
            phrase = np.cumsum(is_separator) - is_separator  # the separator closes its phrase
            in_phrase = ~is_separator & ~np.isin(ids[row], list(special)) & (phrase < len(queries[row]))
            kept = probs[row].max(axis=-1) > self.threshold
            if int(kept.sum()) != len(result["boxes"]):
                continue  # not the rule this processor used: fall back to its decoded text labels
            row_probs = probs[row][:, : len(ids[row])]
            per_query = np.full((int(kept.sum()), len(queries[row])), -1.0)
            for index in range(len(queries[row])):
                tokens = in_phrase & (phrase == index)
                if tokens.any():
                    per_query[:, index] = row_probs[kept][:, tokens].max(axis=1)
            result["query_index"] = per_query.argmax(axis=1) if per_query.size else np.zeros(0, np.int64)

    def _to_prediction(
        self, result: dict[str, Any], queries: Sequence[str] | None, height: int, width: int
    ) -> BoxPrediction:
        boxes = _numpy(result["boxes"], np.float32).reshape(-1, 4)
        scores = _numpy(result["scores"], np.float32).reshape(-1)
        labels, keep = self._labels(result, queries, len(boxes))
        boxes, scores, labels = boxes[keep], scores[keep], [labels[i] for i in keep]
        order = np.argsort(-scores, kind="stable")[: self.max_detections]
        return BoxPrediction(clip_boxes(boxes[order], height, width), scores[order], [labels[i] for i in order])

    def _labels(
        self, result: dict[str, Any], queries: Sequence[str] | None, count: int
    ) -> tuple[list[str], np.ndarray]:
        """Label text per box and the indices of the boxes to keep (a padding query answers nothing)."""
        if queries is None:
            id2label = getattr(self.torch_module.config, "id2label", None) or {}
            ids = _numpy(result["labels"], np.int64).reshape(-1)
            return [str(id2label.get(int(i), int(i))) for i in ids], np.arange(count)
        if "query_index" in result:
            return [queries[int(i)] for i in result["query_index"]], np.arange(count)
        texts = dict.get(result, "text_labels")
        if texts is None:
            ids = _numpy(dict.get(result, "labels"), np.int64).reshape(-1)
            keep = np.flatnonzero(ids < len(queries))
            labels = [queries[int(i)] if i < len(queries) else "" for i in ids]
            return labels, keep
        by_phrase = {_normalised_phrase(q): q for q in queries}
        return [by_phrase.get(_normalised_phrase(t), str(t)) for t in texts], np.arange(count)

    def __repr__(self) -> str:
        return f"HFBoxModel(name={self.name!r}, task={self.task!r}, device={self.device!r})"


def _numpy(value: Any, dtype) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().float().cpu().numpy() if dtype == np.float32 else value.detach().cpu().numpy()
    return np.asarray(value, dtype=dtype)


__all__ = [
    "DEFAULT_THRESHOLD",
    "HFBoxModel",
    "load_hf_detection_model",
    "load_hf_grounding_model",
    "load_hf_open_vocab_model",
    "load_hf_zero_shot_model",
]
