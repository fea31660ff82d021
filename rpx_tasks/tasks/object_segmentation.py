"""RPX task ``object_segmentation``: an instance-id mask per RGB frame, scored by mIoU.

Ground truth is the clip's instance map (``mask``: a single-channel integer PNG, 0 =
background, ids persistent per object within a clip). mIoU compares label *values*
(reference §1.4), so a model scores only where its ids agree with the ground truth's.
Temporal stability pairs consecutive masks of a clip (§8.3); with ``--sgc`` the predicted
mask boundaries are also scored against the ground-truth depth edges (SGC, §8.4) for every
sample whose manifest entry has ``depth``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from rpx_tasks.contracts.frames import resize_labels
from rpx_tasks.contracts.sample_frame import SampleFrame
from rpx_tasks.contracts.segmentation import SegmentationGroundTruth
from rpx_tasks.contracts.spec import ModelEntry, PathResolver, TaskSpec
from rpx_tasks.decoding import decode_depth_m, decode_label_map
from rpx_tasks.entry_checks import ImageSize, check_label_map
from rpx_tasks.errors import AdapterError, ManifestError, ModelError
from rpx_tasks.metrics.segmentation import SEGMENTATION_METRIC_INFO, segmentation_metrics
from rpx_tasks.sample import Sample
from rpx_tasks.tasks._frame_maps import check_frame_map

NAME = "object_segmentation"
_FUNCTION_HINT = "fn(rgb (H,W,3) uint8) must return a 2-D integer array (h, w) of instance ids (0 = background)"


def _rgb_size(path: Path) -> tuple[int, int] | None:
    """(H, W) of an image from its header, or None when it cannot be read (decode_rgb reports that)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    return height, width


def load_ground_truth(entry: dict, resolve: PathResolver) -> SegmentationGroundTruth:
    """The instance mask of a manifest entry (and where its depth is, for SGC).

    Raises ManifestError naming the sample and file when the mask is missing, undecodable,
    not 2-D or of another size than the RGB frame.
    """
    sample_id = entry["id"]
    mask_path = resolve(entry["mask"], sample_id, "mask")
    mask = decode_label_map(mask_path, sample_id, "mask")
    rgb_size = _rgb_size(resolve(entry["rgb"], sample_id, "rgb"))
    if rgb_size is not None and mask.shape != rgb_size:
        raise ManifestError(
            f"Sample {sample_id!r}: mask file {mask_path} is {mask.shape[0]}x{mask.shape[1]}, "
            f"the RGB frame {rgb_size[0]}x{rgb_size[1]}.",
            hint="masks must have the resolution of their RGB frame",
            details={"sample": sample_id, "key": "mask", "path": str(mask_path)},
        )
    depth_path = resolve(entry["depth"], sample_id, "depth") if isinstance(entry.get("depth"), str) else None
    return SegmentationGroundTruth(mask=mask, load_depth=partial(_load_depth, depth_path, sample_id, mask.shape))


def check_entry(entry: dict, resolve: PathResolver, rgb_size: ImageSize) -> None:
    """Check an entry when the split is opened: its ``mask`` and (when its file is there, for SGC) its
    ``depth`` are single-channel images of the RGB frame's size.

    Reads the headers only. Raises ManifestError naming the sample, the field and its value.
    """
    check_label_map(entry, "mask", resolve, rgb_size)
    depth = entry.get("depth")
    if isinstance(depth, str) and resolve(depth, entry["id"], "depth").exists():
        check_label_map(entry, "depth", resolve, rgb_size)


def _load_depth(depth_path: Path | None, sample_id: str, shape: tuple[int, int]) -> np.ndarray | None:
    """The frame's (H, W) float32 depth in metres for SGC, or None when there is no depth file.

    Raises ManifestError naming the sample and file when it is undecodable or differs in shape from the mask.
    """
    if depth_path is None or not depth_path.exists():
        return None
    depth = decode_depth_m(depth_path, sample_id)
    if depth.shape != shape:
        raise ManifestError(
            f"Sample {sample_id!r}: depth file {depth_path} has shape {depth.shape}, the mask {shape}.",
            hint="depth and mask of a sample must have the RGB frame's resolution",
            details={"sample": sample_id, "key": "depth", "path": str(depth_path)},
        )
    return depth


def validate_prediction(prediction: Any, sample: Sample) -> np.ndarray:
    """Return the prediction as an (H, W) integer array; raise ModelError naming the sample when
    it is not an array, not 2-D, not the frame's size, or not integer."""
    check_frame_map(
        prediction,
        sample,
        kind="segmentation",
        noun="mask",
        type_hint=(
            "check your model's predict() return type for object_segmentation: one (H, W) integer mask per sample"
        ),
        shape_hint="check the shape your model returns: (H, W) instance ids",
        resize_hint="resize masks to the original H x W (nearest neighbour)",
    )
    if prediction.dtype == np.bool_:
        return prediction.astype(np.int32)
    if not np.issubdtype(prediction.dtype, np.integer):
        raise ModelError(
            f"Sample {sample.id!r}: mask dtype is {prediction.dtype}, expected integer instance ids.",
            hint="return an integer (e.g. int32) mask",
            details={"sample": sample.id},
        )
    return prediction


def normalise_function_output(output: Any, sample: Sample) -> np.ndarray:
    """A numpy mask function's output as an (H, W) int32 instance map, nearest-resized to the frame.

    Raises AdapterError naming the sample when it is not a 2-D array of whole numbers that fit in int32.
    """
    try:
        labels = np.asarray(output)
    except (TypeError, ValueError) as exc:
        raise AdapterError(
            f"Sample {sample.id!r}: the mask function returned {type(output).__name__}, not an array.",
            hint=_FUNCTION_HINT,
        ) from exc
    if labels.ndim != 2:
        raise AdapterError(
            f"Sample {sample.id!r}: the mask function must return a 2-D array (h, w), got shape {labels.shape}.",
            hint=_FUNCTION_HINT,
        )
    if labels.dtype == np.bool_ or np.issubdtype(labels.dtype, np.integer):
        wide = labels.astype(np.int64)
    elif np.issubdtype(labels.dtype, np.floating) and np.isfinite(labels).all() and (labels == np.round(labels)).all():
        wide = labels.astype(np.int64)
    else:
        raise AdapterError(
            f"Sample {sample.id!r}: the mask function returned {labels.dtype} values that are not whole numbers.",
            hint=_FUNCTION_HINT,
        )
    if wide.size and (wide.min() < np.iinfo(np.int32).min or wide.max() > np.iinfo(np.int32).max):
        raise AdapterError(f"Sample {sample.id!r}: mask ids do not fit in int32.", hint=_FUNCTION_HINT)
    height, width = sample.rgb.shape[:2]
    return resize_labels(wide.astype(np.int32), height, width)


def sample_entry(frame: SampleFrame) -> dict:
    """The manifest entry of one built-in sample frame: its instance map as ``mask`` plus the
    frame's depth (for SGC) and pose (for temporal stability)."""
    return {
        **frame.base_entry(),
        "mask": frame.write_png("mask", frame.instances),
        "depth": frame.paths["depth"],
        "pose": frame.paths["pose"],
    }


MODELS = (
    ModelEntry(
        "mask2former_swin_tiny_coco_instance",
        NAME,
        "hf",
        "facebook/mask2former-swin-tiny-coco-instance",
        "Mask2Former, Swin-Tiny backbone, COCO instance segmentation (80 classes)",
    ),
    ModelEntry(
        "colour_segmentation",
        NAME,
        "import",
        "rpx_tasks.models.segmentation_baselines:colour_segmentation",
        "weight-free baseline: objects by colour against the room's colours, numbered left to right",
    ),
    ModelEntry(
        "background_only",
        NAME,
        "import",
        "rpx_tasks.models.segmentation_baselines:background_only",
        "weight-free baseline: every pixel background",
    ),
)

SPEC = TaskSpec(
    name=NAME,
    display_name="Object Segmentation",
    modalities=("rgb", "mask"),
    optional_modalities=("depth", "pose"),
    required_keys=("mask",),
    load_ground_truth=load_ground_truth,
    check_entry=check_entry,
    validate_prediction=validate_prediction,
    compute_metrics=segmentation_metrics,
    metrics=SEGMENTATION_METRIC_INFO,
    primary_metric="miou",
    temporal="labels",
    geometric_coherence=True,
    numpy_normalise=normalise_function_output,
    hf_loader="rpx_tasks.models.hf_segmentation:load_hf_segmentation_model",
    numpy_signature="fn(rgb: (H, W, 3) uint8) -> mask: (h, w) integer instance ids, 0 = background "
    "(nearest-resized to H x W)",
    models=MODELS,
    sample_entry=sample_entry,
)
