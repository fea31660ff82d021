"""Objects of a sample clip: their category and colour words, instance ids and visible boxes.

Ids are 1..n per clip, numbered left to right by each object's visible centroid in the clip's
first frame (objects not visible there come last), and stay fixed over the clip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rpx_tasks.constants import SAMPLE_ARM_LABEL, SAMPLE_CATEGORIES, SAMPLE_NEUTRAL_WORDS
from rpx_tasks.models.colour_blobs import HUE_WORDS, hue_degrees, hue_word
from rpx_tasks.sample_data.frame import SampleObject
from rpx_tasks.sample_data.render import FIRST_OBJECT
from rpx_tasks.sample_data.scene import Box

MIN_OBJECT_PIXELS = 20  # smaller visible parts are not listed in SampleFrame.objects

_BLACK, _GREY, _WHITE = SAMPLE_NEUTRAL_WORDS
_BOX, _CRATE, _BOTTLE = SAMPLE_CATEGORIES


def colour_name(albedo: Sequence[float]) -> str:
    """A colour word of ``SAMPLE_COLOUR_WORDS`` for an RGB albedo in 0-1: black (dark), grey or white
    (unsaturated), else the hue word of the colour-blob baselines' hue sectors. Raises nothing."""
    r, g, b = (float(c) for c in albedo)
    hi, lo = max(r, g, b), min(r, g, b)
    if hi < 0.2:
        return _BLACK
    if (hi - lo) / hi < 0.2:
        return _WHITE if hi > 0.8 else _GREY
    return HUE_WORDS[int(hue_word(hue_degrees(np.array([r, g, b]))))]


def object_label(box: Box) -> str:
    """The category word of a floor object by its proportions: ``bottle`` (tall and slim),
    ``crate`` (low and wide) or ``box``. Raises nothing."""
    footprint = max(float(box.half[0]), float(box.half[2]))
    if box.half[1] >= 2.0 * footprint:
        return _BOTTLE
    if box.half[1] <= 0.75 * footprint:
        return _CRATE
    return _BOX


@dataclass(frozen=True)
class ClipEntity:
    """An object of a clip before it has an id: its label, colour, surface codes and scene order."""

    label: str
    colour: str
    codes: tuple[int, ...]
    order: int


def clip_entities(objects: list[Box], with_arm: bool) -> list[ClipEntity]:
    """Return the entities of a clip: its floor ``objects`` in order, then the arm when ``with_arm``.

    The arm and its gripper, rendered after the static objects, are one entity. Raises nothing.
    """
    entities = [
        ClipEntity(object_label(box), colour_name(box.albedo), (FIRST_OBJECT + k,), k) for k, box in enumerate(objects)
    ]
    if with_arm:
        first = FIRST_OBJECT + len(objects)
        entities.append(ClipEntity(SAMPLE_ARM_LABEL, _GREY, (first, first + 1), len(objects)))
    return entities


def instance_ids(entities: list[ClipEntity], code: np.ndarray) -> dict[ClipEntity, int]:
    """Return ids 1..n by the column of each entity's visible centroid in ``code`` (the clip's first
    frame's surface map), left to right; entities not visible there follow in scene order. Raises nothing."""
    flat = code.ravel().astype(np.intp)
    size = FIRST_OBJECT + sum(len(e.codes) for e in entities)
    counts = np.bincount(flat, minlength=size)
    column_of_pixel = np.tile(np.arange(code.shape[1], dtype=np.float64), code.shape[0])
    columns = np.bincount(flat, weights=column_of_pixel, minlength=size)

    def key(entity: ClipEntity):
        pixels = sum(int(counts[c]) for c in entity.codes)
        if pixels == 0:
            return (1, 0.0, entity.order)
        return (0, sum(float(columns[c]) for c in entity.codes) / pixels, entity.order)

    return {entity: index + 1 for index, entity in enumerate(sorted(entities, key=key))}


def id_lookup(ids: dict[ClipEntity, int], surface_count: int) -> np.ndarray:
    """Return an int32 table from surface code (0..``surface_count`` - 1) to instance id (0 = background)."""
    lookup = np.zeros(surface_count, np.int32)
    for entity, object_id in ids.items():
        lookup[list(entity.codes)] = object_id
    return lookup


def frame_objects(instances: np.ndarray, ids: dict[ClipEntity, int]) -> list[SampleObject]:
    """Return the objects with at least ``MIN_OBJECT_PIXELS`` pixels in ``instances``, by id. Raises nothing."""
    counts = np.bincount(instances.ravel(), minlength=len(ids) + 1)
    objects = []
    for entity, object_id in sorted(ids.items(), key=lambda item: item[1]):
        pixels = int(counts[object_id])
        if pixels < MIN_OBJECT_PIXELS:
            continue
        mask = instances == object_id
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        box = np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float64)
        objects.append(SampleObject(object_id, entity.label, entity.colour, box, pixels))
    return objects
