"""Monocular-depth models that predict an exact affine transform of the ground truth, for the alignment tests.

They read ``sample.ground_truth`` (the D435 depth in metres, 0 = invalid), which a real model never
sees: a prediction ``a * gt + b`` (``ls_affine``) or ``a / gt + b`` (``ls_disparity``, an inverse-depth
output) is what a perfect relative-depth model emits, so its aligned absrel is 0.
"""

from __future__ import annotations

import numpy as np

from rpx_tasks.sample import Sample

SCALE = 0.37
SHIFT = 1.9


class AffineDepthModel:
    """Predicts ``SCALE * gt + SHIFT`` (``space="depth"``) or ``SCALE / gt + SHIFT`` (``space="disparity"``)
    on valid pixels and ``SHIFT`` on invalid ones (no ground truth there to transform)."""

    task = "monocular_depth"
    torch_module = None

    def __init__(self, space: str = "depth") -> None:
        self.space = space
        self.name = f"affine_{space}"

    def setup(self) -> None:
        """Nothing to load."""

    def predict(self, batch: list[Sample]) -> list[np.ndarray]:
        """One float32 map per sample, the affine transform of its ground truth."""
        out = []
        for sample in batch:
            gt = sample.ground_truth.astype(np.float64)
            valid = gt > 0
            source = np.where(valid, gt if self.space == "depth" else 1.0 / np.where(valid, gt, 1.0), 0.0)
            out.append((SCALE * source + SHIFT).astype(np.float32))
        return out


def affine_depth_model() -> AffineDepthModel:
    """The factory a registry entry names: the ``depth``-space model."""
    return AffineDepthModel("depth")
