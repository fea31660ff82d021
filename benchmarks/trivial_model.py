"""A trivial numpy depth model for throughput measurements: 2.0 m everywhere, no work per pixel.

Used as ``--model trivial_model:constant_depth_2m`` with ``benchmarks/`` on PYTHONPATH, so a
benchmark run measures the harness (decoding, metrics, reports), not a network.
"""

from __future__ import annotations

import numpy as np


def constant_depth_2m(rgb: np.ndarray) -> np.ndarray:
    """Return an (H, W) float32 map of 2.0 m for an (H, W, 3) image."""
    return np.full(rgb.shape[:2], 2.0, np.float32)
