"""Small hand-made TaskSpecs for model-resolution tests, and a loader that records its calls."""

from __future__ import annotations

from typing import Any

import numpy as np

from rpx_tasks.contracts.spec import MetricInfo, TaskSpec
from rpx_tasks.errors import ModelError

# (checkpoint, kwargs) of every recording_loader call. Read it through the `loader_calls` fixture of
# tests/test_models.py, which empties it before and after each test.
LOADER_CALLS: list[tuple[str, dict[str, Any]]] = []
RECORDING_LOADER = "tests.support.specs:recording_loader"


def recording_loader(checkpoint: str, **kwargs: Any) -> str:
    """An HF loader stand-in: records the call and returns the string "loaded"."""
    LOADER_CALLS.append((checkpoint, kwargs))
    return "loaded"


def _normalise_depth(raw: Any, sample: Any) -> np.ndarray:
    depth = np.asarray(raw, dtype=np.float32)
    if depth.ndim != 2:
        raise ModelError(f"depth must be 2-D, got {depth.ndim}")
    return depth


def make_spec(name: str = "monocular_depth", hf_loader: str | None = None) -> TaskSpec:
    """A minimal depth-like TaskSpec named ``name`` whose HF fast path is ``hf_loader`` (an import path)."""
    return TaskSpec(
        name=name,
        display_name=name.replace("_", " ").title(),
        modalities=("rgb", "depth"),
        required_keys=("depth",),
        load_ground_truth=lambda entry, resolve: None,
        validate_prediction=lambda prediction, sample: prediction,
        compute_metrics=lambda prediction, gt: {},
        metrics=(MetricInfo("absrel", higher_is_better=False),),
        primary_metric="absrel",
        numpy_signature="fn(rgb: (H, W, 3) uint8) -> (H, W) float depth in metres",
        numpy_normalise=_normalise_depth,
        hf_loader=hf_loader,
    )
