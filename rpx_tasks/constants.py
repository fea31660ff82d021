"""RPX vocabulary: splits, phases, difficulty weights, the dataset and cache locations and the camera;
and the vocabulary of the built-in procedural sample data (``SAMPLE_*``)."""

from __future__ import annotations

import os
from pathlib import Path

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


def rpx_cache_dir() -> Path:
    """Return the RPX cache folder: ``RPX_CACHE_DIR`` if set, else ``~/.cache/rpx_benchmark`` (user-expanded).

    Resolved manifests of downloaded splits and the built-in sample data live under it. Read on
    every call, so a changed environment takes effect at once. Raises nothing.
    """
    return Path(os.environ.get("RPX_CACHE_DIR") or "~/.cache/rpx_benchmark").expanduser()


# -- The RPX camera ---------------------------------------------------------------------------
# Paper-declared RealSense D435 colour intrinsics of the RPX recordings at 640x480; other image
# sizes scale them by width / 640 (see scaled_intrinsics).
RPX_WIDTH = 640
RPX_HEIGHT = 480
RPX_FOCAL_PX = 615.0

# ASSUMPTIONS about RPX recordings, not measured per frame: the D435 stands level (no pitch or
# roll) about CAMERA_HEIGHT_M above a flat floor and faces a wall about WALL_DISTANCE_M away (an
# indoor room ~4 m deep). The weight-free depth baselines build their prior from these, and the
# procedural sample data centres its rooms on them.
CAMERA_HEIGHT_M = 1.2
WALL_DISTANCE_M = 4.0


def scaled_intrinsics(width: int, height: int) -> tuple[float, float, float, float]:
    """Return (fx, fy, cx, cy) of the RPX D435 camera scaled to an image of ``width`` x ``height``.

    fx = fy = ``RPX_FOCAL_PX`` * width / ``RPX_WIDTH``; the principal point is the image centre.
    Raises nothing.
    """
    f = RPX_FOCAL_PX * width / RPX_WIDTH
    return f, f, width / 2.0, height / 2.0


# -- The built-in procedural sample data ------------------------------------------------------
# ASSUMPTIONS of the built-in procedural data (rpx_tasks.sample_data), not of RPX: the words its
# generator names objects with, which the sample entries of the tasks and the weight-free
# baselines share so that their labels and phrases match. Real RPX labels may use other words.
SAMPLE_HUE_WORDS: tuple[str, ...] = ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink")
SAMPLE_NEUTRAL_WORDS: tuple[str, ...] = ("black", "grey", "white")  # dark, unsaturated and bright unsaturated
SAMPLE_COLOUR_WORDS: tuple[str, ...] = SAMPLE_NEUTRAL_WORDS + SAMPLE_HUE_WORDS
# A floor object's category by its proportions: cube-like, low and wide, tall and slim.
SAMPLE_CATEGORIES: tuple[str, ...] = ("box", "crate", "bottle")
SAMPLE_ARM_LABEL = "arm"  # the category of the robot arm (with its gripper), which moves with the camera
SAMPLE_ARM_PHRASE = "robot arm"  # how the phrase tasks name it
SAMPLE_BASEBOARD_ALBEDO: tuple[float, float, float] = (0.4, 0.35, 0.3)  # RGB in 0-1 of every room's baseboard

# How often a run commits its rows and state to its journal (RunConfig.checkpoint_every /
# checkpoint_seconds, ``rpx bench --checkpoint-every``): whichever comes first. A commit drains
# the predict/score pipeline once and fsyncs a few small files.
CHECKPOINT_EVERY_SAMPLES = 200
CHECKPOINT_EVERY_SECONDS = 60.0
