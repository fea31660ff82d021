"""What the depth tasks (monocular_depth, video_depth) share: a frame's depth map as ground truth and as
prediction, the numpy output normalisation and the per-frame relative-depth alignment.

This module's name starts with "_" so the task registry does not take it for a task.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rpx_tasks.contracts.frames import resize_depth
from rpx_tasks.contracts.spec import PathResolver
from rpx_tasks.decoding import decode_depth_m
from rpx_tasks.entry_checks import ImageSize, check_label_map
from rpx_tasks.errors import AdapterError, ModelError
from rpx_tasks.metrics.depth_alignment import apply_alignment, fit_alignment
from rpx_tasks.sample import Sample
from rpx_tasks.tasks._frame_maps import check_frame_map


def load_depth_map(entry: dict, resolve: PathResolver) -> np.ndarray:
    """The (H, W) float32 metre depth map of a (frame) manifest entry (0 = invalid). Raises ManifestError."""
    return decode_depth_m(resolve(entry["depth"], entry["id"], "depth"), entry["id"])


def check_depth_entry(entry: dict, resolve: PathResolver, rgb_size: ImageSize) -> None:
    """Check a frame entry when the split is opened: its ``depth`` is a single-channel image of the RGB
    frame's size. Reads the header only. Raises ManifestError naming the sample, the field and its value."""
    check_label_map(entry, "depth", resolve, rgb_size)


def validate_depth_map(prediction: Any, sample: Sample, task: str) -> np.ndarray:
    """Return the prediction as (H, W) float32; raise ModelError naming the sample when its type, shape or
    values (NaN/inf) are wrong. ``task`` names the task in the hints."""
    check_frame_map(
        prediction,
        sample,
        kind="depth",
        noun="depth map",
        type_hint=f"check your model's predict() return type for {task}: one (H, W) float32 array per frame",
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


def depth_from_output(output: Any, sample: Sample, signature: str) -> np.ndarray:
    """A numpy function's depth output for one frame as (H, W) float32 metres: squeezed to 2-D and bilinearly
    resized to the frame. Raises AdapterError naming the sample (and ``signature`` in the hint) when it is
    not a 2-D array of numbers."""
    try:
        depth = np.asarray(output, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise AdapterError(
            f"Sample {sample.id!r}: the depth function returned {type(output).__name__}, not an array of numbers.",
            hint=f"the function must be {signature}",
        ) from exc
    if depth.ndim == 3 and 1 in (depth.shape[0], depth.shape[-1]):
        depth = depth.reshape(depth.shape[1:] if depth.shape[0] == 1 else depth.shape[:-1])
    if depth.ndim != 2:
        raise AdapterError(
            f"Sample {sample.id!r}: the depth function must return a 2-D array (h, w) per frame, "
            f"got shape {depth.shape}.",
            hint=f"the function must be {signature}",
        )
    height, width = sample.rgb.shape[:2]
    return resize_depth(depth, height, width)


def align_depth(prediction: np.ndarray, ground_truth: np.ndarray, mode: str) -> tuple[np.ndarray, dict]:
    """The prediction aligned to its ground truth by ``mode`` (one least-squares fit over everything given:
    a frame, or a stacked clip), and the fit.

    Returns ``(aligned float32 depth, {"scale", "shift"})``; for a degenerate fit (fewer than 2 valid
    GT pixels, a constant prediction) the prediction itself and ``{"scale": None, "shift": None}``.
    Raises MetricError for an unknown mode or mismatched shapes.
    """
    fit = fit_alignment(prediction, ground_truth, mode)
    if fit["scale"] is None:
        return prediction, fit
    return apply_alignment(prediction, fit["scale"], fit["shift"], mode), fit
