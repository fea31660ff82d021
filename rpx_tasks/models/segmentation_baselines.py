"""Weight-free object-segmentation baselines: plain numpy functions ``fn(rgb) -> (H, W) int32 mask``.

``colour_segmentation`` separates objects from the room by colour and numbers them the way the
built-in sample data numbers its instances (left to right), so its mIoU on that data means
something; ``background_only`` is the floor every model has to beat. Benchmark either by name
(``--model colour_segmentation``) or by import path.

Why colour: the sample renderer shades every surface by one factor per pixel, so a surface's
chromaticity (r, g) = (R, G) / (R + G + B) stays that of its albedo whatever the lighting; walls
and floor each have one chromaticity per room, and every object its own.
"""

from __future__ import annotations

import numpy as np

from rpx_tasks.constants import SAMPLE_BASEBOARD_ALBEDO
from rpx_tasks.errors import AdapterError

MIN_SEGMENT_PIXELS = 20
# Chromaticity distance within which a pixel belongs to a colour, at a bright pixel; 8-bit
# rounding makes darker pixels noisier, so the tolerance grows as 1 / brightness.
_BACKGROUND_TOLERANCE = 0.012
_SEGMENT_TOLERANCE = 0.03
_NOISE_PER_LEVEL = 3.0  # tolerance added: this / (R + G + B)
_DARK_LEVEL = 17  # max channel below this: a dark object (the room's darkest surfaces stay brighter)
_GLARE_LEVEL = 235  # min channel at or above this: saturated glare (the picture), or clipped walls
_GREY_RADIUS = 0.03  # chromaticities this close to neutral are one grey segment (arm and gripper)
_BIN = 0.01
_BASEBOARD = np.array(SAMPLE_BASEBOARD_ALBEDO[:2]) / sum(SAMPLE_BASEBOARD_ALBEDO)  # its (r, g) chromaticity


def _image(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise AdapterError(
            f"expected an (H, W, 3) image, got shape {rgb.shape}", hint="pass the frame as an (H, W, 3) uint8 array"
        )
    return rgb


def _dominant_chroma(chroma: np.ndarray, weights_ok: np.ndarray) -> np.ndarray | None:
    """The most common chromaticity (bin mode refined by a local mean) of the selected pixels."""
    values = chroma[weights_ok]
    if len(values) == 0:
        return None
    bins = np.floor(values / _BIN).astype(np.int64)
    keys = bins[:, 0] * 1000 + bins[:, 1]
    unique, counts = np.unique(keys, return_counts=True)
    mode = unique[np.argmax(counts)]
    centre = (np.array([mode // 1000, mode % 1000]) + 0.5) * _BIN
    near = np.linalg.norm(values - centre, axis=1) < 1.5 * _BIN
    return values[near].mean(axis=0)


def _floor_chroma(chroma: np.ndarray, candidates: np.ndarray) -> np.ndarray | None:
    """The floor's chromaticity: of the three most common colours among ``candidates`` (the
    non-wall pixels of the bottom rows), the one seen in the most columns; the floor runs the
    full width behind the objects, each object covers only its own columns."""
    best, best_columns = None, -1
    remaining = candidates.copy()
    for _ in range(3):
        if np.count_nonzero(remaining) < MIN_SEGMENT_PIXELS:
            break
        colour = _dominant_chroma(chroma, remaining)
        members = remaining & (np.linalg.norm(chroma - colour, axis=-1) < _SEGMENT_TOLERANCE)
        columns = int(np.count_nonzero(members.any(axis=0)))
        if columns > best_columns:
            best, best_columns = colour, columns
        remaining &= ~members
    return best


def _near(chroma: np.ndarray, colour: np.ndarray | None, tolerance: np.ndarray) -> np.ndarray:
    if colour is None:
        return np.zeros(chroma.shape[:2], bool)
    return np.linalg.norm(chroma - colour, axis=-1) < tolerance


def colour_segmentation(rgb: np.ndarray) -> np.ndarray:
    """Segment the objects of a sample-data frame by colour; returns an (H, W) int32 mask.

    Steps: (1) the room's colours are the dominant chromaticities of the top third (wall) and
    the bottom quarter (floor) of the frame, plus a fixed baseboard colour; those pixels,
    saturated glare and clipped pixels are background (0). (2) The rest is split into segments
    by repeatedly taking the most common remaining chromaticity and every pixel near it; very
    dark pixels form one segment and near-neutral colours another (the robot arm is grey).
    (3) Segments of at least ``MIN_SEGMENT_PIXELS`` pixels are numbered 1..n left to right by
    their centroid column, as the sample data numbers instances; smaller ones become 0.
    Objects coloured like the room are missed and same-coloured objects merge: it is a
    baseline. Raises AdapterError if ``rgb`` is not (H, W, 3).
    """
    rgb = _image(rgb)
    h, w = rgb.shape[:2]
    x = rgb.astype(np.float32)
    total = x.sum(axis=2)
    chroma = x[..., :2] / np.maximum(total, 1.0)[..., None]
    brightest, darkest = x.max(axis=2), x.min(axis=2)
    usable = (brightest >= _DARK_LEVEL) & (darkest < _GLARE_LEVEL)
    noise = _NOISE_PER_LEVEL / np.maximum(total, 1.0)

    tolerance = _BACKGROUND_TOLERANCE + noise
    top, bottom = slice(0, max(1, h // 3)), slice(h - max(1, h // 4), h)
    wall = _dominant_chroma(chroma[top], usable[top])
    background = (darkest >= _GLARE_LEVEL) | _near(chroma, wall, tolerance) | _near(chroma, _BASEBOARD, tolerance)
    floor = _floor_chroma(chroma[bottom], usable[bottom] & ~background[bottom])
    background |= _near(chroma, floor, tolerance)

    dark = brightest < _DARK_LEVEL
    background &= ~dark
    segment = np.zeros((h, w), np.int32)
    segment[dark] = 1
    grey = ~background & usable & _near(chroma, np.full(2, 1 / 3), np.full((h, w), _GREY_RADIUS))
    segment[grey] = 2
    remaining = ~background & usable & ~grey
    next_id = 3
    while np.count_nonzero(remaining) >= MIN_SEGMENT_PIXELS:
        colour = _dominant_chroma(chroma, remaining)
        members = remaining & _near(chroma, colour, _SEGMENT_TOLERANCE + noise)
        if not members.any():  # the mode's neighbourhood is empty only in degenerate images
            break
        segment[members] = next_id
        remaining &= ~members
        next_id += 1
    return _number_left_to_right(segment)


def _number_left_to_right(segment: np.ndarray) -> np.ndarray:
    """Renumber segments >= 1 with at least MIN_SEGMENT_PIXELS pixels as 1..n by centroid column."""
    flat = segment.ravel()
    counts = np.bincount(flat)
    columns = np.bincount(flat, weights=np.tile(np.arange(segment.shape[1], dtype=np.float64), segment.shape[0]))
    kept = [k for k in range(1, len(counts)) if counts[k] >= MIN_SEGMENT_PIXELS]
    kept.sort(key=lambda k: columns[k] / counts[k])
    lookup = np.zeros(len(counts), np.int32)
    lookup[kept] = np.arange(1, len(kept) + 1, dtype=np.int32)
    return lookup[segment]


def background_only(rgb: np.ndarray) -> np.ndarray:
    """Every pixel background (0): the score of a model that finds no object.

    Returns (H, W) int32 zeros; raises AdapterError if ``rgb`` is not (H, W, 3).
    """
    rgb = _image(rgb)
    return np.zeros(rgb.shape[:2], np.int32)
