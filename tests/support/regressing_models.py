"""A monocular-depth model whose quality an environment variable sets, for the regression-alert tests.

``--model tests.support.regressing_models:depth`` (with the repository on PYTHONPATH). The variable is
read at prediction time and is not part of the run's config fingerprint, so two runs of the same model
name, one good and one worse, are *comparable* runs (same task, model, split, data and device class):

- ``RPX_TEST_DEPTH_QUALITY=good`` (default): the ground-plane prior (``ground_plane_prior``'s function);
- ``RPX_TEST_DEPTH_QUALITY=bad``: the ground-plane prior three times too deep, much worse on every frame.

``RPX_TEST_DEPTH_QUALITY_FILE``, when set, names a file holding the quality instead (read at every
prediction), so a test can change the quality of a long-lived worker's flow runs.
"""

from __future__ import annotations

import os

import numpy as np

from rpx_tasks.models.baselines import ground_plane_depth

QUALITY_VARIABLE = "RPX_TEST_DEPTH_QUALITY"
QUALITY_FILE_VARIABLE = "RPX_TEST_DEPTH_QUALITY_FILE"


def quality() -> str:
    """Return ``good`` or ``bad``: the quality file's content when one is named, else the variable's."""
    path = os.environ.get(QUALITY_FILE_VARIABLE)
    if path:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    return os.environ.get(QUALITY_VARIABLE, "good")


def depth(rgb: np.ndarray) -> np.ndarray:
    """Return a depth map of ``rgb``: the ground-plane prior, scaled by 3 when the quality is ``bad``."""
    prior = ground_plane_depth(rgb)
    return prior * 3.0 if quality() == "bad" else prior
