"""RPX task ``monocular_depth``: metric depth from one RGB frame, scored against D435 depth."""

from __future__ import annotations

from typing import Any

import numpy as np

from rpx_tasks.contracts.frames import resize_depth
from rpx_tasks.contracts.sample_frame import SampleFrame
from rpx_tasks.contracts.spec import ModelEntry, PathResolver, TaskSpec
from rpx_tasks.decoding import decode_depth_m
from rpx_tasks.entry_checks import ImageSize, check_label_map
from rpx_tasks.errors import AdapterError, ModelError
from rpx_tasks.metrics.depth import DEPTH_METRIC_INFO, depth_metrics
from rpx_tasks.metrics.depth_alignment import apply_alignment, fit_alignment
from rpx_tasks.sample import Sample
from rpx_tasks.tasks._frame_maps import check_frame_map

NAME = "monocular_depth"


def load_ground_truth(entry: dict, resolve: PathResolver) -> np.ndarray:
    """The (H, W) float32 metre depth map of a manifest entry (0 = invalid). Raises ManifestError."""
    return decode_depth_m(resolve(entry["depth"], entry["id"], "depth"), entry["id"])


def check_entry(entry: dict, resolve: PathResolver, rgb_size: ImageSize) -> None:
    """Check an entry when the split is opened: its ``depth`` is a single-channel image of the RGB frame's size.

    Reads the header only. Raises ManifestError naming the sample, the field and its value.
    """
    check_label_map(entry, "depth", resolve, rgb_size)


def validate_prediction(prediction: Any, sample: Sample) -> np.ndarray:
    """Return the prediction as (H, W) float32; raise ModelError naming the sample when its
    type, shape or values (NaN/inf) are wrong."""
    check_frame_map(
        prediction,
        sample,
        kind="depth",
        noun="depth map",
        type_hint="check your model's predict() return type for monocular_depth: one (H, W) float32 array per sample",
        shape_hint="check the shape your model returns: (H, W) metres",
        resize_hint="resize predictions back to the sample's RGB resolution",
    )
    if not np.issubdtype(prediction.dtype, np.floating):
        raise ModelError(
            f"Sample {sample.id!r}: depth map dtype is {prediction.dtype}, expected floating point metres.",
            hint="return float32 depth in metres",
            details={"sample": sample.id},
        )
    prediction = prediction.astype(np.float32, copy=False)
    if not np.isfinite(prediction).all():
        raise ModelError(
            f"Sample {sample.id!r}: depth map contains NaN or inf.",
            hint="the model produced non-finite depth; check its input normalisation and dtype",
            details={"sample": sample.id},
        )
    return prediction


def normalise_function_output(output: Any, sample: Sample) -> np.ndarray:
    """A numpy depth function's output as (H, W) float32 metres: squeezed to 2-D and bilinearly resized to
    the frame. Raises AdapterError naming the sample when it is not a 2-D array of numbers."""
    try:
        depth = np.asarray(output, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise AdapterError(
            f"Sample {sample.id!r}: the depth function returned {type(output).__name__}, not an array of numbers.",
            hint="fn(rgb (H,W,3) uint8) must return a 2-D array (h, w) of metres",
        ) from exc
    if depth.ndim == 3 and 1 in (depth.shape[0], depth.shape[-1]):
        depth = depth.reshape(depth.shape[1:] if depth.shape[0] == 1 else depth.shape[:-1])
    if depth.ndim != 2:
        raise AdapterError(
            f"Sample {sample.id!r}: the depth function must return a 2-D array (h, w), got shape {depth.shape}.",
            hint="fn(rgb (H,W,3) uint8) must return a 2-D array (h, w) of metres",
        )
    height, width = sample.rgb.shape[:2]
    return resize_depth(depth, height, width)


def align_prediction(prediction: np.ndarray, ground_truth: np.ndarray, mode: str) -> tuple[np.ndarray, dict]:
    """The prediction aligned to its ground truth by ``mode`` (one least-squares fit for this frame), and the fit.

    Returns ``(aligned float32 depth, {"scale", "shift"})``; for a degenerate fit (fewer than 2 valid
    GT pixels, a constant prediction) the prediction itself and ``{"scale": None, "shift": None}``.
    Raises MetricError for an unknown mode or mismatched shapes.
    """
    fit = fit_alignment(prediction, ground_truth, mode)
    if fit["scale"] is None:
        return prediction, fit
    return apply_alignment(prediction, fit["scale"], fit["shift"], mode), fit


def sample_entry(frame: SampleFrame) -> dict:
    """The manifest entry of one built-in sample frame: its RGB, depth and pose files (already written)."""
    return {**frame.base_entry(), "depth": frame.paths["depth"], "pose": frame.paths["pose"]}


MODELS = (
    *(
        ModelEntry(
            name=f"depth_anything_v2_metric_indoor_{size.lower()}",
            task=NAME,
            kind="hf",
            target=f"depth-anything/Depth-Anything-V2-Metric-Indoor-{size}-hf",
            description=f"Depth Anything V2 {size}, metric head fine-tuned on indoor scenes (max 20 m)",
        )
        for size in ("Small", "Base", "Large")
    ),
    ModelEntry(
        "depth_pro",
        NAME,
        "hf",
        "apple/DepthPro-hf",
        "Apple Depth Pro, metric depth with focal-length estimation (its processor needs torchvision)",
    ),
    ModelEntry(
        "zoedepth_nyu_kitti",
        NAME,
        "hf",
        "Intel/zoedepth-nyu-kitti",
        "ZoeDepth with NYU (indoor) and KITTI (outdoor) metric bins",
    ),
    ModelEntry(
        "depth_anything_v2_relative_small",
        NAME,
        "hf",
        "depth-anything/Depth-Anything-V2-Small-hf",
        "Depth Anything V2 Small, relative inverse depth: scored after a per-frame ls_disparity fit",
        alignment="ls_disparity",
    ),
    ModelEntry(
        "ground_plane_prior",
        NAME,
        "import",
        "rpx_tasks.models.baselines:ground_plane_depth",
        "weight-free baseline: depth of a flat floor seen by a level camera",
    ),
    ModelEntry(
        "constant_depth",
        NAME,
        "import",
        "rpx_tasks.models.baselines:constant_depth",
        "weight-free baseline: the same depth for every pixel",
    ),
)

SPEC = TaskSpec(
    name=NAME,
    display_name="Monocular Absolute Depth",
    modalities=("rgb", "depth"),
    optional_modalities=("pose",),
    required_keys=("depth",),
    load_ground_truth=load_ground_truth,
    check_entry=check_entry,
    validate_prediction=validate_prediction,
    compute_metrics=depth_metrics,
    metrics=DEPTH_METRIC_INFO,
    primary_metric="absrel",
    phi_metrics=("absrel", "rmse", "silog", "delta1"),
    temporal="depth",
    numpy_normalise=normalise_function_output,
    hf_loader="rpx_tasks.models.hf_depth:load_hf_depth_model",
    numpy_signature="fn(rgb: (H, W, 3) uint8) -> depth: (h, w) float32 metres (resized to H x W)",
    models=MODELS,
    sample_entry=sample_entry,
    align_prediction=align_prediction,
)
