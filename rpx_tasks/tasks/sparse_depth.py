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
from dataclasses import dataclass
from typing import Any

import numpy as np

from rpx_tasks.contracts.sparse_depth import SparseDepthGroundTruth, SparseDepthPrediction
from rpx_tasks.decoding import load_array
from rpx_tasks.errors import AdapterError, ManifestError, MetricError, ModelError
from rpx_tasks.models.numpy_function import NumpyFunctionModel
from rpx_tasks.contracts.spec import ModelEntry
from rpx_tasks.sample import Sample
from rpx_tasks.contracts.spec import MetricInfo, PathResolver, TaskSpec

NAME = "sparse_depth"
MATCH_RADIUS_PX = 2.0
DEPTH_FLOOR_M = 1e-6
SAMPLE_POINTS = 32
_CHUNK = 2048  # ground-truth points per block of the distance matrix

METRICS: tuple[MetricInfo, ...] = (
    MetricInfo(
        "sparse_absrel",
        False,
        "mean over ground-truth points of |pd - d| / max(d, 1e-6); pd = depth of the nearest predicted "
        f"pixel within {MATCH_RADIUS_PX:g} px, else 0",
    ),
    MetricInfo("sparse_rmse", False, "root mean squared pd - d in metres over ground-truth points"),
)


# --------------------------------------------------------------------------- ground truth


def load_ground_truth(entry: dict, resolve: PathResolver) -> SparseDepthGroundTruth:
    """The ground-truth points of a manifest entry (keys ``coordinates`` and ``depths``).

    Returns float32 arrays (N, 2) and (N,). Raises ManifestError naming the sample and file when
    a file is missing or unreadable, a value is not a numeric array of that shape, the two
    lengths differ or a value is not finite.
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
    return SparseDepthGroundTruth(coordinates=coordinates, depths=depths)


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
            raise error(f"{where}sparse depth prediction lacks the keys {missing}.", hint=hint, details={"sample": sample_id, "missing": missing})
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
        raise error(f"{where}sparse depth prediction holds non-numeric values ({exc}).", hint=hint, details={"sample": sample_id}) from exc
    if coordinates.size == 0:
        coordinates = coordinates.reshape(0, 2)
    if coordinates.ndim != 2 or coordinates.shape[1] != 2:
        raise error(f"{where}predicted 'coordinates' must have shape (M, 2), got {coordinates.shape}.", hint=hint, details={"sample": sample_id})
    if depths.ndim != 1 or len(depths) != len(coordinates):
        raise error(
            f"{where}predicted 'depths' has shape {depths.shape}, expected ({len(coordinates)},) to match 'coordinates'.",
            hint=hint,
            details={"sample": sample_id, "n_coordinates": len(coordinates), "depths_shape": list(depths.shape)},
        )
    if not (np.isfinite(coordinates).all() and np.isfinite(depths).all()):
        raise error(f"{where}sparse depth prediction contains NaN or inf.", hint="the model produced non-finite values", details={"sample": sample_id})
    return SparseDepthPrediction(coordinates=coordinates, depths=depths)


def validate_prediction(prediction: Any, sample: Sample) -> SparseDepthPrediction:
    """Return the prediction with float32 (M, 2) coordinates and (M,) depths.

    Accepts a SparseDepthPrediction or a dict with keys ``coordinates`` and ``depths``.
    Raises ModelError naming the sample when the type, a key, a shape or a value is wrong.
    """
    return _as_prediction(prediction, sample.id, ModelError)


# --------------------------------------------------------------------------- metric


def _matched_depths(gt_xy: np.ndarray, pred_xy: np.ndarray, pred_depths: np.ndarray) -> np.ndarray:
    """Per ground-truth point, the depth of the nearest predicted pixel within the radius, else 0.

    Ties in distance go to the first prediction.
    """
    out = np.zeros(len(gt_xy), dtype=np.float64)
    if len(pred_xy) == 0:
        return out
    pred_xy = pred_xy.astype(np.float64)
    for start in range(0, len(gt_xy), _CHUNK):
        block = gt_xy[start:start + _CHUNK].astype(np.float64)
        diff = block[:, None, :] - pred_xy[None, :, :]
        dist = np.sqrt((diff * diff).sum(axis=2))
        nearest = dist.argmin(axis=1)
        within = dist[np.arange(len(block)), nearest] <= MATCH_RADIUS_PX
        out[start:start + len(block)] = np.where(within, pred_depths[nearest].astype(np.float64), 0.0)
    return out


def sparse_depth_metrics(prediction: SparseDepthPrediction, ground_truth: SparseDepthGroundTruth) -> dict[str, float]:
    """``sparse_absrel`` and ``sparse_rmse`` of one sample (reference §1.4, SparseDepthError).

    For each ground-truth point (x, y, d): pd = depth of the nearest predicted pixel if it lies
    within 2 px (Euclidean, inclusive), else 0; abs term |pd - d| / max(d, 1e-6), squared term
    (pd - d)^2. sparse_absrel = mean abs term, sparse_rmse = sqrt(mean squared term). No
    ground-truth point -> both 0. No prediction at all -> every pd is 0, so each point adds its
    relative error 1.0 (0 for d = 0) to AbsRel and d^2 to the squared term (upstream added the
    raw depth d instead; this project uses the relative error).
    Returns Python floats. Raises MetricError when an argument has the wrong type.
    """
    if not isinstance(ground_truth, SparseDepthGroundTruth):
        raise MetricError(
            f"sparse_depth metrics expect a SparseDepthGroundTruth, got {type(ground_truth).__name__}.",
            hint="load ground truth with rpx_tasks.tasks.sparse_depth.load_ground_truth",
        )
    if not isinstance(prediction, SparseDepthPrediction):
        raise MetricError(
            f"sparse_depth metrics expect a SparseDepthPrediction, got {type(prediction).__name__}.",
            hint="validate predictions with rpx_tasks.tasks.sparse_depth.validate_prediction first",
        )
    gt_depths = np.asarray(ground_truth.depths, dtype=np.float64)
    if gt_depths.size == 0:
        return {"sparse_absrel": 0.0, "sparse_rmse": 0.0}
    pd = _matched_depths(np.asarray(ground_truth.coordinates), np.asarray(prediction.coordinates), np.asarray(prediction.depths))
    error = pd - gt_depths
    absrel = np.abs(error) / np.maximum(gt_depths, DEPTH_FLOOR_M)
    return {"sparse_absrel": float(absrel.mean()), "sparse_rmse": float(np.sqrt((error * error).mean()))}


# --------------------------------------------------------------------------- numpy adapter


def _invoke(fn, sample: Sample):
    # A copy: the function may scribble on its input, the ground truth must stay intact.
    return fn(sample.rgb, np.array(sample.ground_truth.coordinates, dtype=np.float32, copy=True))


def _normalise(output: Any, sample: Sample) -> SparseDepthPrediction:
    coordinates = np.asarray(sample.ground_truth.coordinates, dtype=np.float32)
    expected = len(coordinates)
    hint = f"fn(rgb (H,W,3) uint8, coords (N,2) float32 (x, y)) must return N = {expected} depths in metres, one per coordinate"
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
            f"Sample {sample.id!r}: the sparse depth function returned {type(output).__name__}, not an array of numbers.",
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


def wrap_numpy_function(fn, name: str) -> NumpyFunctionModel:
    """A Model calling ``fn(rgb, coords (N, 2) float32) -> depths (N,)`` at the ground-truth pixels.

    The coordinates are passed back unchanged with the returned depths. The Model raises
    AdapterError when the function returns anything but N numbers (or a dict with 'depths').
    """
    return NumpyFunctionModel(fn, task=NAME, name=name, invoke=_invoke, normalise=_normalise)


# --------------------------------------------------------------------------- baselines


def _pixel_indices(coords: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    coords = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    cols = np.clip(np.rint(coords[:, 0]), 0, width - 1).astype(np.intp)
    rows = np.clip(np.rint(coords[:, 1]), 0, height - 1).astype(np.intp)
    return rows, cols


def ground_plane_at_points(rgb: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Weight-free baseline: the ground-plane prior (floor below the horizon, wall above) at ``coords``.

    ``coords`` (N, 2) are (x, y) pixels, rounded and clamped into the image. Returns (N,)
    float32 metres; raises AdapterError if ``rgb`` is not (H, W, 3).
    """
    from rpx_tasks.models.baselines import ground_plane_depth

    dense = ground_plane_depth(rgb)
    rows, cols = _pixel_indices(coords, *dense.shape)
    return dense[rows, cols].astype(np.float32)


def constant_at_points(rgb: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Weight-free baseline: 2.0 m at every coordinate. Returns (N,) float32 metres."""
    from rpx_tasks.models.baselines import CONSTANT_DEPTH_M

    return np.full(len(np.asarray(coords).reshape(-1, 2)), CONSTANT_DEPTH_M, np.float32)


MODELS = (
    ModelEntry("sparse_ground_plane_prior", NAME, "import", "rpx_tasks.tasks.sparse_depth:ground_plane_at_points",
               "weight-free baseline: ground-plane depth prior sampled at the query pixels"),
    ModelEntry("sparse_constant_depth", NAME, "import", "rpx_tasks.tasks.sparse_depth:constant_at_points",
               "weight-free baseline: 2 m at every query pixel"),
)


# --------------------------------------------------------------------------- sample data


def sample_entry(frame) -> dict:
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
    validate_prediction=validate_prediction,
    compute_metrics=sparse_depth_metrics,
    metrics=METRICS,
    primary_metric="sparse_absrel",
    wrap_numpy_function=wrap_numpy_function,
    numpy_signature="fn(rgb: (H, W, 3) uint8, coords: (N, 2) float32 (x, y) pixels) -> depths: (N,) float32 metres",
    models=MODELS,
    sample_entry=sample_entry,
)
