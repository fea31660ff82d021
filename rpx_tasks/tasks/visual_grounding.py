"""RPX task ``visual_grounding``: the box a referring expression ("the red box") points at.

Ground truth (reference §5): ``text`` (the expression, required), ``boxes`` (a JSON file path
as for detection, an inline list of ``[x1, y1, x2, y2]`` or of ``{"bbox": [...]}`` objects,
or absent for no box) and optional ``labels``. Prediction: boxes (N, 4) and scores (N,), the
model's best box **first** (labels optional, unused). Metrics (§1.4): ``grounding_iou`` = the
highest IoU of the first predicted box with any ground-truth box and ``grounding_acc`` = 1 when
that IoU >= 0.5; no predicted box -> 0 and 0, else no ground-truth box -> 1 and 1. Primary
``grounding_acc`` (higher is better).

``--model package.module:fn`` takes ``fn(rgb, text) -> {"boxes", "scores"}`` or the tuple
``(boxes, scores)``; boxes are reshaped to (-1, 4) float32 and not reordered (§1.5).
``--hf-checkpoint`` loads an ``AutoModelForZeroShotObjectDetection`` checkpoint (OWL-ViT,
OWLv2, Grounding DINO) with the expression as its one text query, boxes by descending score.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

import numpy as np

from rpx_tasks.contracts.boxes import BoxPrediction, GroundingGroundTruth, label_text
from rpx_tasks.contracts.sample_frame import SampleFrame
from rpx_tasks.contracts.spec import ModelEntry, PathResolver, TaskSpec
from rpx_tasks.entry_checks import ImageSize, field_error
from rpx_tasks.errors import ManifestError
from rpx_tasks.metrics.detection import GROUNDING_METRIC_INFO, score_grounding
from rpx_tasks.sample import Sample
from rpx_tasks.tasks._boxes import coerce_box_prediction, load_box_annotations, output_fields
from rpx_tasks.tasks._sample_phrases import object_phrase

NAME = "visual_grounding"
OUTPUT_HINT = (
    "return {'boxes': (N, 4) [x1, y1, x2, y2] pixels, best box first, 'scores': (N,)} or the tuple (boxes, scores)"
)


def _labels(value: Any, sample_id: str) -> list[str]:
    """The optional ``labels`` field: a string or a list of non-empty strings (integer ids as text).

    Raises ManifestError naming the sample and the value for anything else.
    """
    texts = [label_text(item) for item in value] if isinstance(value, list) else [label_text(value)]
    if not all(text is not None and text.strip() for text in texts):
        raise field_error(
            sample_id,
            "labels",
            value,
            "is not a label or a list of non-empty labels",
            hint="'labels' is optional: a string or a list of strings naming the referred object(s)",
        )
    return texts  # type: ignore[return-value]


def load_ground_truth(entry: dict, resolve: PathResolver) -> GroundingGroundTruth:
    """The expression, boxes and labels of a manifest entry.

    Raises ManifestError naming the sample (and file) when ``text`` is missing or not a non-empty
    string, ``boxes`` cannot be read or holds something other than boxes (four finite numbers
    with x2 >= x1 and y2 >= y1), or ``labels`` is not a label or a list of labels.
    """
    sample_id = entry["id"]
    text = entry.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ManifestError(
            f"Sample {sample_id!r}: visual_grounding needs a 'text' string (the referring expression), got {text!r}.",
            hint='add "text": "the red box" (and its \'boxes\') to every visual_grounding sample',
            details={"sample": sample_id, "key": "text", "value": text},
        )
    raw = entry.get("boxes")
    if raw is None:
        boxes, file_labels = np.zeros((0, 4), np.float32), None
    else:
        boxes, file_labels = load_box_annotations(raw, resolve, sample_id, "boxes", labels_required=False)
    labels = _labels(entry["labels"], sample_id) if entry.get("labels") is not None else file_labels
    return GroundingGroundTruth(text=text, boxes=boxes, labels=labels)


def check_entry(entry: dict, resolve: PathResolver, rgb_size: ImageSize) -> None:
    """Check an entry when the split is opened: its expression, boxes and labels load (see
    ``load_ground_truth``). Raises ManifestError naming the sample, the field and its value."""
    load_ground_truth(entry, resolve)


def validate_prediction(prediction: Any, sample: Sample) -> BoxPrediction:
    """The prediction as a BoxPrediction (boxes reshaped to (N, 4)); raises ModelError naming the
    sample when it has no boxes and scores or they are not numeric."""
    return coerce_box_prediction(
        prediction,
        sample,
        task=NAME,
        labels_required=False,
        strict=True,
        hint="check your model's predict() return type for visual_grounding: one BoxPrediction (or dict with "
        "boxes and scores, best box first) per sample",
    )


def call_function(fn: Callable[..., Any], sample: Sample) -> Any:
    """Call a numpy grounding function on one sample: ``fn(rgb, text)`` with the referring expression."""
    return fn(sample.rgb, sample.ground_truth.text)


def normalise_function_output(output: Any, sample: Sample) -> BoxPrediction:
    """A numpy grounding function's ``{boxes, scores}`` (or 2-tuple; ``labels`` optional) as a
    BoxPrediction: boxes reshaped to (-1, 4) float32 and not reordered, scores (N,) float32. Raises
    AdapterError naming the sample on missing keys, a wrong return type or boxes that do not reshape."""
    fields = output_fields(output, ("boxes", "scores"), sample, task=NAME, optional=("labels",), hint=OUTPUT_HINT)
    return coerce_box_prediction(fields, sample, task=NAME, labels_required=False, strict=False, hint=OUTPUT_HINT)


def sample_entry(frame: SampleFrame) -> dict | None:
    """Frames with an object no other object of the frame shares a description with: "the <colour>
    <category>" (or "the robot arm") and its box inline. The referent cycles through such objects
    with the frame index. Other frames are skipped."""
    counts = Counter(object_phrase(obj) for obj in frame.objects)
    candidates = [obj for obj in frame.objects if counts[object_phrase(obj)] == 1]
    if not candidates:
        return None
    target = candidates[frame.frame_idx % len(candidates)]
    phrase = object_phrase(target)
    return {**frame.base_entry(), "text": f"the {phrase}", "boxes": [target.box.tolist()], "labels": [phrase]}


MODELS = (
    ModelEntry(
        "owlv2_base_ensemble_grounding",
        NAME,
        "hf",
        "google/owlv2-base-patch16-ensemble",
        "OWLv2 base/16 (ensemble) with the expression as its text query, top box first; "
        "its image processor needs scipy",
    ),
    ModelEntry(
        "owlvit_base_patch32_grounding",
        NAME,
        "hf",
        "google/owlvit-base-patch32",
        "OWL-ViT base/32 with the expression as its text query, top box first",
    ),
    ModelEntry(
        "grounding_dino_tiny_grounding",
        NAME,
        "hf",
        "IDEA-Research/grounding-dino-tiny",
        "Grounding DINO tiny with the expression as its text query; top-scoring box first",
    ),
    ModelEntry(
        "colour_phrase_grounder",
        NAME,
        "import",
        "rpx_tasks.models.box_baselines:ground_phrase",
        "weight-free baseline: the saturated-colour blob whose hue (and shape) word the text names",
    ),
)

SPEC = TaskSpec(
    name=NAME,
    display_name="Visual Grounding",
    modalities=("rgb", "questionnaires", "spatial_qa"),
    required_keys=(),
    load_ground_truth=load_ground_truth,
    check_entry=check_entry,
    validate_prediction=validate_prediction,
    compute_metrics=score_grounding,
    metrics=GROUNDING_METRIC_INFO,
    primary_metric="grounding_acc",
    numpy_invoke=call_function,
    numpy_inputs=("rgb", "text"),
    numpy_normalise=normalise_function_output,
    hf_loader="rpx_tasks.models.hf_detection:load_hf_grounding_model",
    numpy_signature="fn(rgb: (H, W, 3) uint8, text: str) -> {'boxes': (N, 4) [x1, y1, x2, y2] px, best first, "
    "'scores': (N,)} or (boxes, scores)",
    models=MODELS,
    sample_entry=sample_entry,
)
