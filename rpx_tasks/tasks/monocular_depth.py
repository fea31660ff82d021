"""RPX task ``monocular_depth``: metric depth from one RGB frame, scored against D435 depth."""

from __future__ import annotations

from typing import Any

import numpy as np

from rpx_tasks.contracts.sample_frame import SampleFrame
from rpx_tasks.contracts.spec import ModelEntry, TaskSpec
from rpx_tasks.metrics.depth import DEPTH_METRIC_INFO, depth_metrics
from rpx_tasks.sample import Sample
from rpx_tasks.tasks._depth_maps import (
    align_depth,
    check_depth_entry,
    depth_from_output,
    load_depth_map,
    validate_depth_map,
)

NAME = "monocular_depth"


SIGNATURE = "fn(rgb: (H, W, 3) uint8) -> depth: (h, w) float32 metres (resized to H x W)"


def validate_prediction(prediction: Any, sample: Sample) -> np.ndarray:
    """Return the prediction as (H, W) float32; raise ModelError naming the sample when its
    type, shape or values (NaN/inf) are wrong."""
    return validate_depth_map(prediction, sample, NAME)


def normalise_function_output(output: Any, sample: Sample) -> np.ndarray:
    """A numpy depth function's output as (H, W) float32 metres: squeezed to 2-D and bilinearly resized to
    the frame. Raises AdapterError naming the sample when it is not a 2-D array of numbers."""
    return depth_from_output(output, sample, SIGNATURE)


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
    load_ground_truth=load_depth_map,
    check_entry=check_depth_entry,
    validate_prediction=validate_prediction,
    compute_metrics=depth_metrics,
    metrics=DEPTH_METRIC_INFO,
    primary_metric="absrel",
    phi_metrics=("absrel", "rmse", "silog", "delta1"),
    temporal="depth",
    numpy_normalise=normalise_function_output,
    hf_loader="rpx_tasks.models.hf_depth:load_hf_depth_model",
    numpy_signature=SIGNATURE,
    models=MODELS,
    sample_entry=sample_entry,
    align_prediction=align_depth,
)
