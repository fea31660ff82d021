"""RPX task ``sparse_depth``: metric depth at given pixels, scored against D435 depth there.

Ground truth is a list of pixels ``coordinates`` (N, 2) as (x, y) and their depths ``depths``
(N,) in metres; each manifest key holds a ``.npy`` path, a JSON file path or an inline list
(reference §4.2). The dense ``depth`` image is a download modality only: it is not decoded.

A model answers with a depth per pixel it chooses to report; every ground-truth point takes
the depth of the nearest predicted pixel when that lies within ``MATCH_RADIUS_PX``, else 0.
A numpy function ``fn(rgb, coords) -> depths`` is asked exactly at the ground-truth pixels.
"""

from __future__ import annotations

import zlib
from typing import Any, Callable

import numpy as np

from rpx_tasks.contracts.sample_frame import SampleFrame
from rpx_tasks.contracts.sparse_depth import SparseDepthGroundTruth, SparseDepthPrediction
from rpx_tasks.contracts.spec import ModelEntry, PathResolver, TaskSpec
from rpx_tasks.decoding import load_array
from rpx_tasks.entry_checks import ImageSize, check_points_in_frame, field_error
from rpx_tasks.errors import AdapterError, ManifestError, ModelError
from rpx_tasks.metrics.sparse_depth import SPARSE_DEPTH_METRIC_INFO, sparse_depth_metrics
from rpx_tasks.sample import Sample

NAME = "sparse_depth"
SAMPLE_POINTS = 32


# --------------------------------------------------------------------------- ground truth


def load_ground_truth(entry: dict, resolve: PathResolver) -> SparseDepthGroundTruth:
    """The ground-truth points of a manifest entry (keys ``coordinates`` and ``depths``).

    Returns float32 arrays (N, 2) and (N,). Raises ManifestError naming the sample and file when
    a file is missing or unreadable, a value is not a numeric array of that shape, the two
    lengths differ, a value is not finite or a depth is negative (0 is allowed: no return).
    """
    sample_id = entry["id"]
    coordinates = load_array(entry["coordinates"], resolve, sample_id, "coordinates", dtype=np.float32, columns=2)
    depths = load_array(entry["depths"], resolve, sample_id, "depths", dtype=np.float32)
    if len(depths) != len(coordinates):
        raise ManifestError(
            f"Sample {sample_id!r}: 'coordinates' has {len(coordinates)} points but 'depths' has {len(depths)} values "
            f"(coordinates: {_describe(entry['coordinates'])}, depths: {_describe(entry['depths'])}).",
            hint="give one depth in metres per (x, y) pixel, in the same order",
            details={"sample": sample_id, "coordinates": len(coordinates), "depths": len(depths)},
        )
    for key, array in (("coordinates", coordinates), ("depths", depths)):
        if not np.isfinite(array).all():
            raise ManifestError(
                f"Sample {sample_id!r}: '{key}' ({_describe(entry[key])}) holds NaN or inf.",
                hint="ground-truth points must be finite pixels and depths in metres",
                details={"sample": sample_id, "key": key},
            )
    if (depths < 0).any():
        index = int(np.flatnonzero(depths < 0)[0])
        raise field_error(
            sample_id,
            "depths",
            float(depths[index]),
            f"(point {index}, {_describe(entry['depths'])}) is a negative depth",
            hint="ground-truth depths are metres >= 0",
        )
    return SparseDepthGroundTruth(coordinates=coordinates, depths=depths)


def check_entry(entry: dict, resolve: PathResolver, rgb_size: ImageSize) -> None:
    """Check an entry when the split is opened: its points load (see ``load_ground_truth``) and lie in
    the frame (0 <= x <= W, 0 <= y <= H; the model is asked at those pixels). Raises ManifestError
    naming the sample, the field and its value."""
    truth = load_ground_truth(entry, resolve)
    check_points_in_frame(entry["id"], "coordinates", truth.coordinates, rgb_size)


def _describe(value: Any) -> str:
    return value if isinstance(value, str) else "inline list"


# --------------------------------------------------------------------------- predictions


def _as_prediction(output: Any, sample_id: str, error: type[ModelError]) -> SparseDepthPrediction:
    """A SparseDepthPrediction from a prediction object or a dict {coordinates, depths}."""
    where = f"Sample {sample_id!r}: "
    hint = "return a SparseDepthPrediction or a dict {'coordinates': (M, 2) (x, y), 'depths': (M,) metres}"
    if isinstance(output, SparseDepthPrediction):
        coordinates, depths = output.coordinates, output.depths
    elif isinstance(output, dict):
        missing = [key for key in ("coordinates", "depths") if key not in output]
        if missing:
            raise error(
                f"{where}sparse depth prediction lacks the keys {missing}.",
                hint=hint,
                details={"sample": sample_id, "missing": missing},
            )
        coordinates, depths = output["coordinates"], output["depths"]
    else:
        raise error(
            f"{where}sparse depth prediction must be a SparseDepthPrediction, got {type(output).__name__}.",
            hint=f"check your model's predict() return type for sparse_depth: {hint}",
            details={"sample": sample_id},
        )
    try:
        coordinates = np.asarray(coordinates, dtype=np.float32)
        depths = np.asarray(depths, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise error(
            f"{where}sparse depth prediction holds non-numeric values ({exc}).",
            hint=hint,
            details={"sample": sample_id},
        ) from exc
    if coordinates.size == 0:
        coordinates = coordinates.reshape(0, 2)
    if coordinates.ndim != 2 or coordinates.shape[1] != 2:
        raise error(
            f"{where}predicted 'coordinates' must have shape (M, 2), got {coordinates.shape}.",
            hint=hint,
            details={"sample": sample_id},
        )
    if depths.ndim != 1 or len(depths) != len(coordinates):
        raise error(
            f"{where}predicted 'depths' has shape {depths.shape}, "
            f"expected ({len(coordinates)},) to match 'coordinates'.",
            hint=hint,
            details={"sample": sample_id, "n_coordinates": len(coordinates), "depths_shape": list(depths.shape)},
        )
    if not (np.isfinite(coordinates).all() and np.isfinite(depths).all()):
        raise error(
            f"{where}sparse depth prediction contains NaN or inf.",
            hint="the model produced non-finite values",
            details={"sample": sample_id},
        )
    return SparseDepthPrediction(coordinates=coordinates, depths=depths)


def validate_prediction(prediction: Any, sample: Sample) -> SparseDepthPrediction:
    """Return the prediction with float32 (M, 2) coordinates and (M,) depths.

    Accepts a SparseDepthPrediction or a dict with keys ``coordinates`` and ``depths``.
    Raises ModelError naming the sample when the type, a key, a shape or a value is wrong.
    """
    return _as_prediction(prediction, sample.id, ModelError)


# --------------------------------------------------------------------------- metric


# --------------------------------------------------------------------------- numpy adapter


def call_function(fn: Callable[..., Any], sample: Sample) -> Any:
    """``fn(rgb, coords)`` at the sample's ground-truth pixels (a copy: the function may scribble on
    its input, the ground truth must stay intact)."""
    return fn(sample.rgb, np.array(sample.ground_truth.coordinates, dtype=np.float32, copy=True))


def normalise_function_output(output: Any, sample: Sample) -> SparseDepthPrediction:
    """A numpy sparse-depth function's output (N depths, or a dict with 'depths') as a prediction at the
    sample's N coordinates. Raises AdapterError naming the sample for anything but N numbers."""
    coordinates = np.asarray(sample.ground_truth.coordinates, dtype=np.float32)
    expected = len(coordinates)
    hint = (
        f"fn(rgb (H,W,3) uint8, coords (N,2) float32 (x, y)) must return N = {expected} depths in metres, "
        "one per coordinate"
    )
    if isinstance(output, dict):
        if "depths" not in output:
            raise AdapterError(
                f"Sample {sample.id!r}: the sparse depth function returned a dict without the key 'depths' "
                f"(keys: {sorted(map(str, output))}).",
                hint=hint,
                details={"sample": sample.id, "missing": ["depths"]},
            )
        output = output["depths"]
    try:
        depths = np.asarray(output, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise AdapterError(
            f"Sample {sample.id!r}: the sparse depth function returned {type(output).__name__}, "
            "not an array of numbers.",
            hint=hint,
            details={"sample": sample.id},
        ) from exc
    if depths.ndim > 1 and sum(side != 1 for side in depths.shape) <= 1:
        depths = depths.reshape(-1)  # (N, 1) or (1, N)
    if depths.ndim != 1 or len(depths) != expected:
        raise AdapterError(
            f"Sample {sample.id!r}: the sparse depth function returned depths of shape {depths.shape}, "
            f"expected ({expected},) for {expected} coordinates.",
            hint=hint,
            details={"sample": sample.id, "n_coordinates": expected, "shape": list(depths.shape)},
        )
    return SparseDepthPrediction(coordinates=coordinates.copy(), depths=depths)


# --------------------------------------------------------------------------- baselines


MODELS = (
    ModelEntry(
        "sparse_ground_plane_prior",
        NAME,
        "import",
        "rpx_tasks.models.sparse_depth_baselines:ground_plane_at_points",
        "weight-free baseline: ground-plane depth prior sampled at the query pixels",
    ),
    ModelEntry(
        "sparse_constant_depth",
        NAME,
        "import",
        "rpx_tasks.models.sparse_depth_baselines:constant_at_points",
        "weight-free baseline: 2 m at every query pixel",
    ),
)


# --------------------------------------------------------------------------- sample data


def sample_entry(frame: SampleFrame) -> dict:
    """The sparse_depth manifest entry of a built-in sample frame.

    Picks ``SAMPLE_POINTS`` pixels with valid depth (fewer if the frame has fewer), the same for
    the same frame on every run, and writes their (x, y) coordinates as ``.npy`` and their
    depths in metres as JSON (so both file encodings are exercised); the entry keeps the frame's
    dense ``depth`` path as the download modality.
    """
    valid = np.flatnonzero(frame.depth_mm.reshape(-1) > 0)
    seed = zlib.crc32(f"{frame.scene}/{frame.phase_idx}/{frame.frame_idx}".encode())
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(valid, size=min(SAMPLE_POINTS, valid.size), replace=False))
    rows, cols = np.divmod(chosen, frame.width)
    coordinates = np.stack([cols, rows], axis=1).astype(np.float32)
    depths = frame.depth_mm.reshape(-1)[chosen].astype(np.float32) / np.float32(1000.0)
    entry = frame.base_entry()
    entry["depth"] = frame.paths["depth"]
    entry["coordinates"] = frame.write_npy("sparse_depth", coordinates)
    entry["depths"] = frame.write_json("sparse_depth", [float(d) for d in depths])
    return entry


SPEC = TaskSpec(
    name=NAME,
    display_name="Sparse Depth",
    modalities=("rgb", "depth", "sparse_depth"),
    required_keys=("coordinates", "depths"),
    load_ground_truth=load_ground_truth,
    check_entry=check_entry,
    validate_prediction=validate_prediction,
    compute_metrics=sparse_depth_metrics,
    metrics=SPARSE_DEPTH_METRIC_INFO,
    # Upstream 0.3.x ranks sparse depth by RMSE (the CLI era used AbsRel); we follow 0.3.x.
    primary_metric="sparse_rmse",
    numpy_invoke=call_function,
    numpy_inputs=("rgb", "coords"),
    numpy_normalise=normalise_function_output,
    numpy_signature="fn(rgb: (H, W, 3) uint8, coords: (N, 2) float32 (x, y) pixels) -> depths: (N,) float32 metres",
    models=MODELS,
    sample_entry=sample_entry,
)
