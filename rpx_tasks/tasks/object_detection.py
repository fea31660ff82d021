"""RPX task ``object_detection``: labelled boxes from one RGB frame, scored by precision/recall/F1.

Ground truth (manifest key ``boxes``, reference §5): the path of a JSON file, or the same list
inline, of ``{"bbox": [x1, y1, x2, y2], "label": "..."}`` objects in pixels. Prediction: boxes
(N, 4), scores (N,) and N labels (§1.4). A prediction matches a ground-truth box of the same
label at IoU >= 0.5, greedily by descending score (``metrics.detection``); the primary metric
is ``f1`` (higher is better).

``--model package.module:fn`` takes ``fn(rgb) -> {"boxes", "scores", "labels"}`` or the tuple
``(boxes, scores, labels)``; boxes are reshaped to (-1, 4) float32 (§1.5). ``--hf-checkpoint``
loads any transformers ``AutoModelForObjectDetection`` checkpoint (``models.hf_detection``);
its labels are the checkpoint's ``id2label`` names, so they score only where the dataset uses
the same class names.
"""

from __future__ import annotations

from typing import Any

from rpx_tasks.contracts.boxes import BoxPrediction, DetectionGroundTruth
from rpx_tasks.contracts.sample_frame import SampleFrame
from rpx_tasks.contracts.spec import ModelEntry, PathResolver, TaskSpec
from rpx_tasks.entry_checks import ImageSize
from rpx_tasks.metrics.detection import DETECTION_METRIC_INFO, score_detections
from rpx_tasks.sample import Sample
from rpx_tasks.tasks._boxes import detections_from_function, load_box_annotations, validate_detections

NAME = "object_detection"


def load_ground_truth(entry: dict, resolve: PathResolver) -> DetectionGroundTruth:
    """The labelled boxes of a manifest entry's ``boxes``. Raises ManifestError naming sample and file."""
    boxes, labels = load_box_annotations(entry["boxes"], resolve, entry["id"], "boxes", labels_required=True)
    return DetectionGroundTruth(boxes=boxes, labels=labels or [])


def check_entry(entry: dict, resolve: PathResolver, rgb_size: ImageSize) -> None:
    """Check an entry when the split is opened: its ``boxes`` load (four finite numbers with x2 >= x1
    and y2 >= y1 and a non-empty label per box). Raises ManifestError naming the sample, field and value."""
    load_ground_truth(entry, resolve)


def validate_prediction(prediction: Any, sample: Sample) -> BoxPrediction:
    """The prediction as a BoxPrediction; raises ModelError naming the sample when it is malformed."""
    return validate_detections(prediction, sample, task=NAME)


def normalise_function_output(output: Any, sample: Sample) -> BoxPrediction:
    """A numpy detection function's ``{boxes, scores, labels}`` (or 3-tuple) as a BoxPrediction: boxes
    reshaped to (-1, 4) float32, scores (N,) float32, labels strings. Raises AdapterError naming the
    sample on missing keys, a wrong return type, boxes that do not reshape to (N, 4) or unequal counts."""
    return detections_from_function(output, sample, task=NAME)


def sample_entry(frame: SampleFrame) -> dict:
    """Every built-in sample frame, with its visible objects' boxes and categories in a JSON file."""
    boxes = [{"bbox": obj.box.tolist(), "label": obj.label} for obj in frame.objects]
    return {**frame.base_entry(), "boxes": frame.write_json("boxes", boxes)}


MODELS = (
    ModelEntry(
        "yolos_small",
        NAME,
        "hf",
        "hustvl/yolos-small",
        "YOLOS-S (ViT, COCO classes); needs neither timm nor torchvision",
    ),
    ModelEntry("yolos_tiny", NAME, "hf", "hustvl/yolos-tiny", "YOLOS-Ti (ViT, COCO classes), the smallest YOLOS"),
    ModelEntry(
        "rt_detr_v2_r18", NAME, "hf", "PekingU/rtdetr_v2_r18vd", "RT-DETRv2 ResNet-18 (COCO classes), real-time"
    ),
    ModelEntry(
        "colour_blob_detector",
        NAME,
        "import",
        "rpx_tasks.models.box_baselines:detect_objects",
        "weight-free baseline: boxes of saturated-colour blobs, labelled box/crate/bottle by shape",
    ),
)

SPEC = TaskSpec(
    name=NAME,
    display_name="Object Detection",
    modalities=("rgb", "mask", "tracklets"),
    required_keys=("boxes",),
    load_ground_truth=load_ground_truth,
    check_entry=check_entry,
    validate_prediction=validate_prediction,
    compute_metrics=score_detections,
    metrics=DETECTION_METRIC_INFO,
    primary_metric="f1",
    numpy_normalise=normalise_function_output,
    hf_loader="rpx_tasks.models.hf_detection:load_hf_detection_model",
    numpy_signature="fn(rgb: (H, W, 3) uint8) -> {'boxes': (N, 4) [x1, y1, x2, y2] px, 'scores': (N,), "
    "'labels': N strings} or (boxes, scores, labels)",
    models=MODELS,
    sample_entry=sample_entry,
)
