"""Connected regions of saturated colour ("colour blobs"): the image analysis behind the
weight-free box baselines (detection, grounding, tracking).

Every pixel whose colour is saturated and bright enough is put in a hue sector
(``HUE_SECTORS``: red, orange, yellow, green, cyan, blue, purple, pink); 4-connected pixels of
one sector form a blob. Blobs smaller than ``MIN_BLOB_FRACTION`` of the frame, or wider than
``MAX_WIDTH_FRACTION`` of it (floor, walls), are dropped. Grey, white and black things are
invisible here, and touching objects of one hue merge into one blob.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rpx_tasks.constants import SAMPLE_HUE_WORDS
from rpx_tasks.errors import AdapterError

# The hue words are the sample data's (rpx_tasks.constants), whose generator names object colours by
# these sectors too, so that the baselines' words match its labels and phrases.
HUE_WORDS: tuple[str, ...] = SAMPLE_HUE_WORDS
# Upper hue limit (degrees) of each word of HUE_WORDS, in order; hues from 335 to 360 are red again.
_HUE_LIMITS: tuple[float, ...] = (15, 40, 70, 160, 200, 255, 290, 335)
HUE_SECTORS: tuple[tuple[float, str], ...] = tuple(zip(_HUE_LIMITS, HUE_WORDS)) + ((360, HUE_WORDS[0]),)
MIN_SATURATION = 0.3  # (max - min) / max of the RGB channels
MIN_VALUE = 30  # of 255: darker pixels have no reliable hue
MIN_BLOB_FRACTION = 0.002  # of the frame's pixels
MAX_WIDTH_FRACTION = 0.6  # of the frame's width


@dataclass(frozen=True)
class ColourBlob:
    """One blob: ``colour`` its mean RGB (3,) float64 in 0-255, ``box`` (4,) float64
    [min x, min y, max x + 1, max y + 1], ``pixels`` its size and ``hue`` its sector word."""

    colour: np.ndarray
    box: np.ndarray
    pixels: int
    hue: str


def check_rgb(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` as an array; raises AdapterError unless it is (H, W, 3)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise AdapterError(
            f"expected an (H, W, 3) image, got shape {rgb.shape}", hint="pass the frame as an (H, W, 3) uint8 array"
        )
    return rgb


def hue_degrees(colour: np.ndarray) -> np.ndarray:
    """Hue in degrees [0, 360) of RGB colours (..., 3) on any scale; 0 for greys. Raises nothing."""
    colour = np.asarray(colour, dtype=np.float64)
    r, g, b = colour[..., 0], colour[..., 1], colour[..., 2]
    hi, lo = colour.max(axis=-1), colour.min(axis=-1)
    span = np.where(hi > lo, hi - lo, 1.0)
    sector = np.where(hi == r, ((g - b) / span) % 6, np.where(hi == g, (b - r) / span + 2, (r - g) / span + 4))
    return np.where(hi > lo, 60.0 * sector, 0.0) % 360.0


def hue_word(hue: np.ndarray) -> np.ndarray:
    """Index into ``HUE_WORDS`` of hues in degrees (any shape), by ``HUE_SECTORS``."""
    limits = np.array([limit for limit, _ in HUE_SECTORS])
    words = np.array([HUE_WORDS.index(word) for _, word in HUE_SECTORS], dtype=np.int8)
    return words[np.minimum(np.searchsorted(limits, hue, side="right"), len(limits) - 1)]


def hue_classes(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel index into ``HUE_WORDS`` (H, W) int8; -1 for unsaturated or dark pixels.
    Raises AdapterError for a non-image."""
    image = check_rgb(rgb).astype(np.float32)
    hi, lo = image.max(axis=2), image.min(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        chromatic = (hi >= MIN_VALUE) & ((hi - lo) / hi >= MIN_SATURATION)
    return np.where(chromatic, hue_word(hue_degrees(image)), np.int8(-1))


def connected_components(classes: np.ndarray) -> np.ndarray:
    """4-connected components of equal, non-negative class values: (H, W) int64 component ids
    (the smallest flat index among the component's pixels), -1 where the class is negative."""
    h, w = classes.shape
    valid = classes >= 0
    sentinel = h * w
    labels = np.where(valid, np.arange(h * w, dtype=np.int64).reshape(h, w), sentinel)
    same_right = valid[:, :-1] & (classes[:, :-1] == classes[:, 1:])
    same_down = valid[:-1, :] & (classes[:-1, :] == classes[1:, :])
    members = valid.ravel()
    while True:
        best = labels.copy()
        np.minimum(best[:, :-1], np.where(same_right, labels[:, 1:], sentinel), out=best[:, :-1])
        np.minimum(best[:, 1:], np.where(same_right, labels[:, :-1], sentinel), out=best[:, 1:])
        np.minimum(best[:-1, :], np.where(same_down, labels[1:, :], sentinel), out=best[:-1, :])
        np.minimum(best[1:, :], np.where(same_down, labels[:-1, :], sentinel), out=best[1:, :])
        flat = best.ravel()
        while True:  # pointer jumping: a pixel takes the label of the pixel its label names
            jumped = flat.copy()
            jumped[members] = flat[flat[members]]
            if np.array_equal(jumped, flat):
                break
            flat = jumped
        best = flat.reshape(h, w)
        if np.array_equal(best, labels):
            return np.where(valid, labels, -1)
        labels = best


def find_colour_blobs(rgb: np.ndarray) -> list[ColourBlob]:
    """The colour blobs of an (H, W, 3) frame, left to right (by x1, then y1).

    Raises AdapterError when ``rgb`` is not (H, W, 3).
    """
    image = check_rgb(rgb)
    classes = hue_classes(image)
    h, w = classes.shape
    components = connected_components(classes)
    ids, counts = np.unique(components[components >= 0], return_counts=True)
    blobs = []
    for component, count in zip(ids, counts):
        if count < MIN_BLOB_FRACTION * h * w:
            continue
        rows, cols = np.nonzero(components == component)
        box = np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], dtype=np.float64)
        if box[2] - box[0] > MAX_WIDTH_FRACTION * w:
            continue
        colour = image[rows, cols].astype(np.float64).mean(axis=0)
        blobs.append(ColourBlob(colour, box, int(count), HUE_WORDS[int(classes.flat[component])]))
    return sorted(blobs, key=lambda blob: (blob.box[0], blob.box[1]))


__all__ = [
    "ColourBlob",
    "HUE_SECTORS",
    "HUE_WORDS",
    "check_rgb",
    "connected_components",
    "find_colour_blobs",
    "hue_classes",
    "hue_degrees",
    "hue_word",
]
