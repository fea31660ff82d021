"""The model behind the box tasks' HF fast paths (``models.hf_detection`` builds it): one batched
forward per group of same-sized frames, post-processed at the frame size into BoxPredictions.

Kept apart from the loaders so each module reads in one sitting.
"""

from __future__ import annotations

import inspect
from typing import Any, Sequence

import numpy as np

from rpx_tasks.contracts.boxes import BoxPrediction, clip_boxes
from rpx_tasks.contracts.stage_timer import StageClock
from rpx_tasks.errors import AdapterError, ModelError
from rpx_tasks.models.hf_batches import forward_error, predict_by_size
from rpx_tasks.models.hf_execution import ExecutionOptions, HFExecution
from rpx_tasks.sample import Sample

ZERO_SHOT_TASKS = ("open_vocab_detection", "visual_grounding")
MAX_DETECTIONS = 100
_MERGED_QUERY_TYPES = frozenset({"grounding-dino", "mm-grounding-dino"})


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
        execution: ExecutionOptions | None = None,
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
        self.execution = HFExecution(module, processor, self.device, execution)

    def use_stage_clock(self, clock: StageClock) -> None:
        """Time preprocess and postprocess on the run's stage clock (``contracts.stage_timer``)."""
        self.execution.stages = clock

    @property
    def zero_shot(self) -> bool:
        return self.task in ZERO_SHOT_TASKS

    def setup(self) -> None:
        """Put the module in eval mode on ``device`` and inspect the processor's post-processing.

        Raises ModelError when the module cannot be moved to the device or the processor has no
        post-processing for its kind of model; ConfigError for fp16 off CUDA.
        """
        self.execution.setup(self.name)
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
        with self.execution.postprocess():
            for position, result in zip(active, raw):
                position_queries = queries[position] if queries is not None else None
                results[position] = self._to_prediction(result, position_queries, height, width)
        return results

    def _inputs(
        self, images: list[np.ndarray], queries: list[list[str]] | None, height: int, width: int
    ) -> dict[str, Any]:
        if queries is None:  # images only: the device data path when it is on (models.hf_execution)
            return self.execution.image_inputs(images, self.name)
        with self.execution.stages.stage("preprocess"):
            return self.execution.to_device(self._text_inputs(images, queries, height, width))

    def _text_inputs(self, images: list[np.ndarray], queries: list[list[str]], height: int, width: int) -> Any:
        """The processor's inputs of images with their text queries (on the host). Raises AdapterError."""
        try:
            if self.model_type in _MERGED_QUERY_TYPES:
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
                else "frames must be (H, W, 3) uint8 RGB; queries must be non-empty text",
            ) from exc
        return inputs

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

        outputs = self.execution.forward(inputs)
        with self.execution.postprocess():
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


__all__ = ["HFBoxModel", "MAX_DETECTIONS", "ZERO_SHOT_TASKS"]
