"""RPX vocabulary: splits, phases, difficulty weights and the default dataset location."""

from __future__ import annotations

import os

SPLITS: tuple[str, ...] = ("easy", "medium", "hard")
DEFAULT_SPLIT = "hard"

# Folder index on the Hub -> phase name.
PHASES: tuple[str, ...] = ("clutter", "interaction", "clean")
PHASE_BY_INDEX: dict[int, str] = dict(enumerate(PHASES))

# Effort-stratified difficulty weights of the Weighted Phase Score (fixed constants).
ESD_WEIGHTS: dict[str, float] = {"easy": 0.25, "medium": 0.35, "hard": 0.40}

REPO_TYPE = "dataset"
PINNED_REPO_ID = "IRVLUTD/RPX"
PINNED_REVISION = "51432e5d48895bbafb490ae7c5e34e0f6b7da7d6"


def default_repo_id() -> str:
    """The dataset repo: ``RPX_HF_REPO`` if set, else the pinned ``IRVLUTD/RPX``."""
    return os.environ.get("RPX_HF_REPO") or PINNED_REPO_ID


def default_revision() -> str:
    """The dataset revision: ``RPX_HF_REVISION`` if set, else the pinned commit."""
    return os.environ.get("RPX_HF_REVISION") or PINNED_REVISION
