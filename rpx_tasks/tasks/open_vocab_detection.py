"""RPX task ``open_vocab_detection``: boxes for classes named in free text, scored like detection.

Ground truth and metrics are those of ``object_detection`` (manifest key ``boxes``: a JSON file
or inline list of ``{"bbox": [x1, y1, x2, y2], "label": "..."}``; precision / recall / F1 at
IoU >= 0.5 with same-label greedy matching; primary ``f1``, higher is better). The labels are
free-text class names ("red box", "mug"), matched exactly.

The vocabulary a model is asked to find is settled when the split is opened
(:func:`settle_vocabulary`, the protocol of :mod:`rpx_tasks.contracts.vocabulary`): the sample's
own ``vocabulary`` key (an inline list of strings, or the path of a JSON file holding one), else
the split's (the manifest's top-level ``vocabulary``: inline or a JSON file under the dataset
root), else the sorted union of every ground-truth label of the run's samples. ``--vocabulary``
overrides all three; only ``--vocabulary frame-labels`` gives each frame its own ground-truth
labels, which tells the model what is in the image, so result.json records such a run as not
comparable. result.json's ``vocabulary`` says which source was used, its size and (when shared)
its terms.

``--model package.module:fn`` takes ``fn(rgb, vocabulary: list[str]) -> {"boxes", "scores",
"labels"}`` (or the tuple); a function that takes only ``rgb`` (the reference's
``make_numpy_detection_model(fn, task=OPEN_VOCAB_DETECTION)`` signature) is called as
``fn(rgb)`` (see :func:`call_function`). ``--hf-checkpoint`` loads an
``AutoModelForZeroShotObjectDetection`` checkpoint (OWL-ViT, OWLv2, Grounding DINO) with the
vocabulary as its text queries.
"""

from __future__ import annotations

from typing import Any, Callable

from rpx_tasks.contracts.boxes import BoxPrediction, DetectionGroundTruth
from rpx_tasks.contracts.sample_frame import SampleFrame
from rpx_tasks.contracts.spec import ModelEntry, PathResolver, TaskSpec
from rpx_tasks.contracts.vocabulary import SettledVocabulary, SplitEntries, VocabularyOverride
from rpx_tasks.entry_checks import ImageSize
from rpx_tasks.metrics.detection import DETECTION_METRIC_INFO, score_detections
from rpx_tasks.sample import Sample
from rpx_tasks.tasks._boxes import (
    accepts_second_argument,
    detections_from_function,
    load_box_annotations,
    load_string_list,
    validate_detections,
)
from rpx_tasks.tasks._sample_phrases import SAMPLE_VOCABULARY, object_phrase
from rpx_tasks.tasks._vocabulary import settle_split_vocabulary

NAME = "open_vocab_detection"


def _entry_labels(entry: dict, resolve: PathResolver) -> list[str]:
    """The ground-truth labels of one entry's ``boxes``. Raises ManifestError naming the sample and file."""
    return load_box_annotations(entry["boxes"], resolve, entry["id"], "boxes", labels_required=True)[1] or []


def load_ground_truth(entry: dict, resolve: PathResolver) -> DetectionGroundTruth:
    """The labelled boxes of ``boxes`` and the entry's ``vocabulary`` (as :func:`settle_vocabulary` set it;
    None when the entry has none: this never falls back to the frame's own labels).

    Raises ManifestError naming the sample and file when either field is missing, unreadable or malformed.
    """
    boxes, labels = load_box_annotations(entry["boxes"], resolve, entry["id"], "boxes", labels_required=True)
    vocabulary = None
    if entry.get("vocabulary") is not None:
        vocabulary = load_string_list(entry["vocabulary"], resolve, entry["id"], "vocabulary")
    return DetectionGroundTruth(boxes=boxes, labels=labels or [], vocabulary=vocabulary)


def settle_vocabulary(split: SplitEntries, override: VocabularyOverride | None) -> SettledVocabulary:
    """Give every entry of the opened split the vocabulary its model receives (sample, split file, split
    union, or the ``--vocabulary`` override); returns the entries and result.json's record.

    Raises ManifestError naming the sample (or manifest), field and file of a malformed vocabulary or boxes.
    """
    return settle_split_vocabulary(split, override, labels_of=_entry_labels)


def check_entry(entry: dict, resolve: PathResolver, rgb_size: ImageSize) -> None:
    """Check an entry when the split is opened: its ``boxes`` load (four finite numbers with x2 >= x1 and
    y2 >= y1 and a non-empty label per box) and its ``vocabulary``, when given, is a list of non-empty
    strings. Raises ManifestError naming the sample, the field and its value."""
    load_box_annotations(entry["boxes"], resolve, entry["id"], "boxes", labels_required=True)
    if entry.get("vocabulary") is not None:
        load_string_list(entry["vocabulary"], resolve, entry["id"], "vocabulary")


def validate_prediction(prediction: Any, sample: Sample) -> BoxPrediction:
    """The prediction as a BoxPrediction; raises ModelError naming the sample when it is malformed."""
    return validate_detections(prediction, sample, task=NAME)


def _vocabulary(sample: Sample) -> list[str]:
    return list(getattr(sample.ground_truth, "vocabulary", None) or [])


def call_function(fn: Callable[..., Any], sample: Sample) -> Any:
    """Call a numpy open-vocabulary function on one sample, in the form its signature asks for.

    ``fn(rgb, vocabulary)`` when its second positional parameter is required or is called
    ``vocabulary``; ``fn(rgb, vocabulary=...)`` when it has a keyword-only ``vocabulary``; else
    ``fn(rgb)`` (``fn(rgb)``, ``fn(rgb, threshold=0.5)``, ``fn(*args)`` or an unreadable
    signature). The vocabulary is the sample's ground-truth ``vocabulary`` as a list.
    """
    form = accepts_second_argument(fn, "vocabulary")
    if form == "positional":
        return fn(sample.rgb, _vocabulary(sample))
    if form == "keyword":
        return fn(sample.rgb, vocabulary=_vocabulary(sample))
    return fn(sample.rgb)


def normalise_function_output(output: Any, sample: Sample) -> BoxPrediction:
    """A numpy open-vocabulary function's ``{boxes, scores, labels}`` (or 3-tuple) as a BoxPrediction:
    boxes reshaped to (-1, 4) float32, scores (N,) float32, labels strings. Raises AdapterError naming
    the sample on missing keys, a wrong return type, boxes that do not reshape to (N, 4) or unequal counts."""
    return detections_from_function(output, sample, task=NAME)


def sample_entry(frame: SampleFrame) -> dict:
    """Every built-in sample frame: its objects' boxes with "<colour> <category>" labels in a JSON
    file, and an inline vocabulary of every class of the sample data."""
    boxes = [{"bbox": obj.box.tolist(), "label": object_phrase(obj)} for obj in frame.objects]
    vocabulary = sorted(set(SAMPLE_VOCABULARY) | {item["label"] for item in boxes})
    return {**frame.base_entry(), "boxes": frame.write_json("phrase_boxes", boxes), "vocabulary": vocabulary}


MODELS = (
    ModelEntry(
        "owlv2_base_ensemble",
        NAME,
        "hf",
        "google/owlv2-base-patch16-ensemble",
        "OWLv2 base/16 (ensemble), zero-shot boxes for the vocabulary's text queries; its image processor needs scipy",
    ),
    ModelEntry(
        "owlvit_base_patch32",
        NAME,
        "hf",
        "google/owlvit-base-patch32",
        "OWL-ViT base/32, zero-shot boxes for the vocabulary's text queries",
    ),
    ModelEntry(
        "grounding_dino_tiny",
        NAME,
        "hf",
        "IDEA-Research/grounding-dino-tiny",
        "Grounding DINO tiny, zero-shot boxes for the vocabulary's text queries",
    ),
    ModelEntry(
        "colour_phrase_detector",
        NAME,
        "import",
        "rpx_tasks.models.box_baselines:detect_phrases",
        "weight-free baseline: saturated-colour blobs named '<hue> <shape>', kept when in the vocabulary",
    ),
)

SPEC = TaskSpec(
    name=NAME,
    display_name="Open-Vocabulary Detection",
    modalities=("rgb", "mask", "tracklets", "questionnaires"),
    required_keys=("boxes",),
    load_ground_truth=load_ground_truth,
    check_entry=check_entry,
    validate_prediction=validate_prediction,
    compute_metrics=score_detections,
    metrics=DETECTION_METRIC_INFO,
    primary_metric="f1",
    numpy_invoke=call_function,
    numpy_optional_inputs=("vocabulary",),
    numpy_normalise=normalise_function_output,
    hf_loader="rpx_tasks.models.hf_detection:load_hf_open_vocab_model",
    numpy_signature="fn(rgb: (H, W, 3) uint8, vocabulary: list[str]) -> {'boxes': (N, 4) [x1, y1, x2, y2] px, "
    "'scores': (N,), 'labels': N strings from the vocabulary} or (boxes, scores, labels); fn(rgb) also works",
    models=MODELS,
    sample_entry=sample_entry,
    settle_vocabulary=settle_vocabulary,
)
