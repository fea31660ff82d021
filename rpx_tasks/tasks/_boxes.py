"""What the box tasks share on the task side: box-label loading, the validation of predictions and
the normalisation of numpy-function outputs (object_detection, open_vocab_detection, visual_grounding).

The types (BoxPrediction, DetectionGroundTruth, GroundingGroundTruth), ``label_text`` and
``clip_boxes`` live in ``rpx_tasks.contracts.boxes``; the metrics in ``rpx_tasks.metrics.detection``.
Boxes are ``[x1, y1, x2, y2]`` float pixels everywhere, stored as (N, 4) float32 arrays;
labels are strings (JSON numbers such as COCO category ids become their decimal text, so a
model's ``3`` matches a ground-truth ``3``).

Box labels in a manifest (reference §5) are either a path to a JSON file or the same value
inline: a list whose items are ``{"bbox": [x1, y1, x2, y2], "label": str, ...}`` objects or,
where labels are optional (grounding), plain ``[x1, y1, x2, y2]`` lists. A box has four finite
numbers with x2 >= x1 and y2 >= y1 (an empty box, x2 == x1, is allowed: its area is 0); a label
is a non-empty string (or an integer id). Every problem is a ManifestError naming the sample,
the key, the file and the offending item.

This module's name starts with "_" so the task registry does not take it for a task.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from rpx_tasks.contracts.boxes import BoxPrediction, label_text
from rpx_tasks.contracts.spec import PathResolver
from rpx_tasks.decoding import load_json_value
from rpx_tasks.errors import AdapterError, ManifestError, ModelError
from rpx_tasks.sample import Sample

# --------------------------------------------------------------------------- ground truth


def _bbox(value: Any) -> np.ndarray | None:
    """Four finite numbers as float32 (4,), else None."""
    if isinstance(value, (str, bytes, dict)) or value is None:
        return None
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if array.shape != (4,) or not np.isfinite(array).all():
        return None
    return array.astype(np.float32)


def _box_problem(item: dict | list, index: int, box: np.ndarray | None) -> str | None:
    """Why the ``index``-th box item cannot be used (None when it can): ``box`` is its bbox parsed by ``_bbox``."""
    raw = item["bbox"] if isinstance(item, dict) else item
    if box is None:
        if not isinstance(item, dict):
            return f"item {index} is {raw!r}, not a box (four finite numbers [x1, y1, x2, y2])"
        return f"item {index} has bbox {raw!r}, not four finite numbers [x1, y1, x2, y2]"
    if box[2] < box[0] or box[3] < box[1]:
        return f"item {index} has bbox {raw!r} with x2 < x1 or y2 < y1 (boxes are [x1, y1, x2, y2])"
    return None


def _item_label(item: dict, index: int, *, required: bool) -> tuple[str | None, str | None]:
    """(label text, problem) of a box item: the label (None when absent or null and not required) or why it is bad."""
    if "label" not in item or (item["label"] is None and not required):
        return None, (f"item {index} has no 'label'" if required else None)
    label = label_text(item["label"])
    if label is None:
        return None, f"item {index} has label {item['label']!r}, not a string"
    if not label.strip():
        return None, f"item {index} has an empty label {item['label']!r}"
    return label, None


def load_box_annotations(
    value: Any, resolve: PathResolver, sample_id: str, key: str = "boxes", *, labels_required: bool = True
) -> tuple[np.ndarray, list[str] | None]:
    """Decode a manifest box field (JSON file path or inline list) into (boxes (N, 4) float32, labels).

    Items are ``{"bbox": [x1, y1, x2, y2], "label": ...}`` objects; with
    ``labels_required=False`` plain ``[x1, y1, x2, y2]`` lists (or one flat 4-number list) are
    accepted too and labels come back as None unless every item has one. An empty list gives
    (0, 4) boxes. Raises ManifestError (naming sample, key, file and item) when the file is
    missing or not JSON, the value is not a list, or an item has no valid bbox or label.
    """
    data = load_json_value(value, resolve, sample_id, key)
    source = f" in {resolve(value, sample_id, key)}" if isinstance(value, str) else " (inline)"
    shape_hint = (
        f'\'{key}\' is a JSON file or an inline list of {{"bbox": [x1, y1, x2, y2], "label": "..."}} objects'
        + ("" if labels_required else " or of [x1, y1, x2, y2] lists")
    )

    def bad(reason: str) -> ManifestError:
        return ManifestError(
            f"Sample {sample_id!r}: '{key}'{source} {reason}.",
            hint=shape_hint,
            details={"sample": sample_id, "key": key, **({"path": str(value)} if isinstance(value, str) else {})},
        )

    if not isinstance(data, list):
        raise bad(f"must be a list of boxes, got {type(data).__name__}")
    if not labels_required and len(data) == 4 and _bbox(data) is not None:
        data = [data]  # one box written as a flat [x1, y1, x2, y2]
    boxes: list[np.ndarray] = []
    labels: list[str | None] = []
    for index, item in enumerate(data):
        if isinstance(item, dict):
            if "bbox" not in item:
                raise bad(f"item {index} has no 'bbox'")
            box = _bbox(item["bbox"])
            label, problem = _item_label(item, index, required=labels_required)
            problem = _box_problem(item, index, box) or problem
        elif not labels_required and isinstance(item, list):
            box, label = _bbox(item), None
            problem = _box_problem(item, index, box)
        else:
            raise bad(f"item {index} is {item!r}, not " + ("a {bbox, label} object" if labels_required else "a box"))
        if problem is not None:
            raise bad(problem)
        boxes.append(box)
        labels.append(label)
    array = np.stack(boxes) if boxes else np.zeros((0, 4), np.float32)
    if all(label is not None for label in labels):
        return array, [str(label) for label in labels]
    return array, None


def load_string_list(value: Any, resolve: PathResolver, sample_id: str, key: str) -> list[str]:
    """A list of non-empty strings given inline or as a JSON file path (e.g. ``vocabulary``, ``labels``).

    Raises ManifestError naming the sample, key, file and value when the file is missing or not
    JSON, or the value is not a list of non-empty strings.
    """
    data = load_json_value(value, resolve, sample_id, key)
    texts = [label_text(item) for item in data] if isinstance(data, list) else None
    if texts is None or any(text is None or not text.strip() for text in texts):
        raise ManifestError(
            f"Sample {sample_id!r}: '{key}' must be a list of strings, none empty, got {data!r:.200}.",
            hint=f"give '{key}' inline as [\"...\", ...] or as the path of a JSON file holding that list",
            details={"sample": sample_id, "key": key, "value": repr(data)[:200]},
        )
    return texts  # type: ignore[return-value]


# --------------------------------------------------------------------------- predictions

_MISSING = object()


def _field(output: Any, name: str) -> Any:
    if isinstance(output, dict):
        return output.get(name, _MISSING)
    return getattr(output, name, _MISSING)


def _labels(value: Any, error: type[ModelError], where: str, hint: str) -> list[str]:
    if hasattr(value, "tolist") and not isinstance(value, (str, np.str_)):
        value = value.tolist()  # numpy arrays and torch tensors
    if not isinstance(value, (list, tuple)):
        raise error(f"{where}: 'labels' must be a list with one string per box, got {type(value).__name__}.", hint=hint)
    texts = [label_text(item) for item in value]
    for item, text in zip(value, texts):
        if text is None:
            raise error(f"{where}: every label must be a string, got {item!r} ({type(item).__name__}).", hint=hint)
    return texts  # type: ignore[return-value]


@dataclass(frozen=True)
class _PredictionCheck:
    """Who complains about one box prediction, and how: error type, sample, task and hint."""

    error: type[ModelError]
    sample: Sample
    task: str
    hint: str

    @property
    def where(self) -> str:
        return f"Sample {self.sample.id!r}"


def _require_fields(output: Any, keys: tuple[str, ...], check: _PredictionCheck) -> None:
    """Raise ``check.error`` when ``output`` has none of ``keys`` (and is no dict) or lacks some."""
    if not isinstance(output, (BoxPrediction, dict)) and all(_field(output, k) is _MISSING for k in keys):
        raise check.error(
            f"{check.where}: {check.task} prediction must have {', '.join(keys)}; got {type(output).__name__}.",
            hint=check.hint,
            details={"sample": check.sample.id, "type": type(output).__name__},
        )
    missing = [k for k in keys if _field(output, k) is _MISSING]
    if missing:
        present = f" (it has {sorted(map(str, output))})" if isinstance(output, dict) else ""
        raise check.error(
            f"{check.where}: {check.task} prediction is missing required keys: {missing}{present}.",
            hint=check.hint,
            details={"sample": check.sample.id, "missing": missing},
        )


def _box_arrays(output: Any, check: _PredictionCheck) -> tuple[np.ndarray, np.ndarray]:
    """(boxes as float32, scores as flat float32); raises ``check.error`` when not numeric."""
    try:
        boxes = np.asarray(_field(output, "boxes"), dtype=np.float32)
        scores = np.asarray(_field(output, "scores"), dtype=np.float32).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise check.error(
            f"{check.where}: {check.task} 'boxes' and 'scores' must be numeric arrays ({exc}).", hint=check.hint
        ) from exc
    return boxes, scores


def _n_by_4(boxes: np.ndarray, check: _PredictionCheck, *, strict: bool, labels_required: bool) -> np.ndarray:
    """``boxes`` as (N, 4). Raises ``check.error`` when a strict detection's boxes are not [N, 4]
    already, or when their size is not a multiple of 4."""
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    elif strict and labels_required and (boxes.ndim != 2 or boxes.shape[1] != 4):
        raise check.error(
            f"{check.where}: Detection boxes must have shape [N, 4]; got {tuple(boxes.shape)}.",
            hint="check the shape your model returns: one [x1, y1, x2, y2] row per box",
            details={"sample": check.sample.id, "shape": list(boxes.shape)},
        )
    elif boxes.size % 4:
        raise check.error(
            f"{check.where}: {check.task} 'boxes' has shape {tuple(boxes.shape)}, which does not reshape to (N, 4).",
            hint="return boxes as an (N, 4) array of [x1, y1, x2, y2] pixels",
            details={"sample": check.sample.id, "shape": list(boxes.shape)},
        )
    return boxes.reshape(-1, 4)


def _require_finite(boxes: np.ndarray, scores: np.ndarray, check: _PredictionCheck) -> None:
    """Raise ``check.error`` when a box coordinate is not finite or a score is NaN."""
    if not np.isfinite(boxes).all() or np.isnan(scores).any():
        raise check.error(
            f"{check.where}: {check.task} prediction has non-finite boxes or NaN scores.",
            hint="check the model's output post-processing (normalised vs pixel boxes, dtype)",
            details={"sample": check.sample.id},
        )


def _prediction_labels(
    output: Any, boxes: np.ndarray, scores: np.ndarray, check: _PredictionCheck, *, labels_required: bool
) -> list[str] | None:
    """The labels as strings (None when absent). Raises ``check.error`` when labels are required
    but absent, or box, score and label counts differ."""
    raw_labels = _field(output, "labels")
    labels = None
    if raw_labels is not _MISSING and raw_labels is not None:
        labels = _labels(raw_labels, check.error, check.where, check.hint)
    if labels_required and labels is None:
        raise check.error(
            f"{check.where}: {check.task} prediction has labels None; one label per box is required.",
            hint=check.hint,
            details={"sample": check.sample.id},
        )
    if labels_required and not (len(boxes) == len(scores) == len(labels)):
        raise check.error(
            f"{check.where}: {check.task} prediction has {len(boxes)} boxes, {len(scores)} scores and "
            f"{len(labels)} labels; they must be equally many.",
            hint="return one score and one label per box",
            details={
                "sample": check.sample.id,
                "n_boxes": len(boxes),
                "n_scores": len(scores),
                "n_labels": len(labels),
            },
        )
    return labels


def coerce_box_prediction(
    output: Any,
    sample: Sample,
    *,
    task: str,
    labels_required: bool,
    strict: bool,
    hint: str,
) -> BoxPrediction:
    """Turn what a model returned for ``sample`` into a BoxPrediction.

    Accepts a BoxPrediction, a dict or an object with ``boxes``, ``scores`` (and ``labels``)
    fields. With ``strict`` (validation of any model's predictions, reference §1.4) boxes must
    already be (N, 4), errors are ModelErrors and, when ``labels_required``, box, score and
    label counts must agree; without it (numpy-function outputs, §1.5) boxes are reshaped to
    (-1, 4) and errors are AdapterErrors. Boxes must be finite and scores not NaN.

    Returns the BoxPrediction. Raises ModelError (``strict``) or AdapterError (otherwise)
    naming the sample when fields are missing, not numeric, mis-shaped, non-finite or unequal.
    """
    check = _PredictionCheck(error=ModelError if strict else AdapterError, sample=sample, task=task, hint=hint)
    keys = ("boxes", "scores", "labels") if labels_required else ("boxes", "scores")
    _require_fields(output, keys, check)
    boxes, scores = _box_arrays(output, check)
    boxes = _n_by_4(boxes, check, strict=strict, labels_required=labels_required)
    _require_finite(boxes, scores, check)
    labels = _prediction_labels(output, boxes, scores, check, labels_required=labels_required)
    return BoxPrediction(boxes=boxes, scores=scores, labels=labels)


def output_fields(
    output: Any, keys: Sequence[str], sample: Sample, *, task: str, optional: Sequence[str] = (), hint: str
) -> dict[str, Any]:
    """The fields of a numpy function's result: a dict with ``keys`` (plus any ``optional``),
    a tuple of ``len(keys)`` (or ``len(keys) + len(optional)``) values in that order, or a
    BoxPrediction. Raises AdapterError listing missing keys, or naming the type that was returned."""
    if isinstance(output, BoxPrediction):
        return {"boxes": output.boxes, "scores": output.scores, "labels": output.labels}
    if isinstance(output, dict):
        missing = [k for k in keys if k not in output]
        if missing:
            raise AdapterError(
                f"Sample {sample.id!r}: the {task} function's result is missing required keys: {missing} "
                f"(it has {sorted(map(str, output))}).",
                hint=hint,
                details={"sample": sample.id, "missing": missing},
            )
        return {k: output[k] for k in (*keys, *optional) if k in output}
    if isinstance(output, tuple) and len(output) in (len(keys), len(keys) + len(optional)):
        return dict(zip((*keys, *optional), output))
    shape = f"a {len(output)}-tuple" if isinstance(output, tuple) else type(output).__name__
    raise AdapterError(
        f"Sample {sample.id!r}: the {task} function must return a dict with keys {list(keys)} "
        f"or a {len(keys)}-tuple; got {shape}.",
        hint=hint,
        details={"sample": sample.id},
    )


def accepts_second_argument(fn: Callable[..., Any], name: str) -> str | None:
    """How ``fn`` takes an optional second input called ``name``: "positional" when its second
    positional parameter is required or is called ``name``, "keyword" when it has a keyword-only
    parameter ``name``, else None (call it with the frame only: ``fn(rgb)``, ``fn(rgb,
    threshold=0.5)``, ``fn(*args)`` or an unreadable signature)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) >= 2 and (positional[1].default is inspect.Parameter.empty or positional[1].name == name):
        return "positional"
    if any(p.kind is p.KEYWORD_ONLY and p.name == name for p in params):
        return "keyword"
    return None


# --------------------------------------------------------------------------- the two detection tasks

DETECTION_OUTPUT_HINT = (
    "return {'boxes': (N, 4) [x1, y1, x2, y2] pixels, 'scores': (N,), 'labels': N strings} "
    "or the tuple (boxes, scores, labels)"
)


def validate_detections(prediction: Any, sample: Sample, *, task: str) -> BoxPrediction:
    """Check one detection prediction (reference §1.4) and return it as a BoxPrediction.

    Raises ModelError naming the sample when it is not boxes/scores/labels, the boxes are not
    [N, 4] (details ``shape``), the counts differ (details ``n_boxes``, ``n_scores``,
    ``n_labels``), or boxes are non-finite.
    """
    return coerce_box_prediction(
        prediction,
        sample,
        task=task,
        labels_required=True,
        strict=True,
        hint=f"check your model's predict() return type for {task}: one BoxPrediction (or dict with "
        "boxes, scores, labels) per sample",
    )


def detections_from_function(output: Any, sample: Sample, *, task: str) -> BoxPrediction:
    """Normalise a numpy detection function's result (reference §1.5): boxes reshaped to (-1, 4)
    float32, scores to (N,) float32, labels to strings. Raises AdapterError naming missing keys,
    a wrong return type, boxes that do not reshape to (N, 4), or unequal counts."""
    fields = output_fields(output, ("boxes", "scores", "labels"), sample, task=task, hint=DETECTION_OUTPUT_HINT)
    return coerce_box_prediction(
        fields, sample, task=task, labels_required=True, strict=False, hint=DETECTION_OUTPUT_HINT
    )


__all__ = [
    "DETECTION_OUTPUT_HINT",
    "accepts_second_argument",
    "coerce_box_prediction",
    "detections_from_function",
    "load_box_annotations",
    "load_string_list",
    "output_fields",
    "validate_detections",
]
