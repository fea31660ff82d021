"""Weight-free baselines of the box tasks, built on colour blobs (``models.colour_blobs``).

Each blob of saturated colour becomes one box; its score is the fraction of the box it fills.
They are reference points a learned model has to beat, not detectors: grey, white and black
objects (and the robot arm) are missed, touching objects of one hue merge, and the shape word
comes from the box's proportions only.

- :func:`detect_objects` ``fn(rgb) -> {boxes, scores, labels}`` (object_detection): each blob
  labelled ``bottle``, ``crate`` or ``box`` by :func:`shape_word`.
- :func:`detect_phrases` ``fn(rgb, vocabulary) -> {boxes, scores, labels}``
  (open_vocab_detection): each blob labelled "<hue> <shape>" and kept when that phrase is in
  the vocabulary.
- :func:`ground_phrase` ``fn(rgb, text) -> {boxes, scores}`` (visual_grounding): the blobs of
  the hue word the text names, best first.
- :func:`colour_blob_tracks` ``fn(rgb) -> tracks`` (object_tracking): one single-step track per
  blob, its id the blob's hue word; its score is the blob's share of the image instead.

Every function raises AdapterError when ``rgb`` is not an (H, W, 3) image.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

from rpx_tasks.models.colour_blobs import HUE_WORDS, ColourBlob, find_colour_blobs, hue_degrees, hue_word

TALL_ASPECT = 1.6  # box height / width at or above which a blob is a bottle
FLAT_ASPECT = 0.6  # at or below which it is a crate


def shape_word(box: Sequence[float]) -> str:
    """``bottle`` for a box at least TALL_ASPECT times taller than wide, ``crate`` for one at most
    FLAT_ASPECT, else ``box``."""
    x1, y1, x2, y2 = (float(v) for v in box)
    aspect = (y2 - y1) / max(x2 - x1, 1.0)
    if aspect >= TALL_ASPECT:
        return "bottle"
    if aspect <= FLAT_ASPECT:
        return "crate"
    return "box"


def colour_word(blob: ColourBlob) -> str:
    """The hue word of a blob's mean colour."""
    return HUE_WORDS[int(hue_word(hue_degrees(blob.colour)))]


def _score(blob: ColourBlob) -> float:
    x1, y1, x2, y2 = blob.box
    return float(blob.pixels / max((x2 - x1) * (y2 - y1), 1.0))


def _result(blobs: Sequence[ColourBlob], labels: Sequence[str] | None) -> dict:
    result: dict = {
        "boxes": np.array([blob.box for blob in blobs], dtype=np.float32).reshape(-1, 4),
        "scores": np.array([_score(blob) for blob in blobs], dtype=np.float32),
    }
    if labels is not None:
        result["labels"] = list(labels)
    return result


def detect_objects(rgb: np.ndarray) -> dict:
    """Object-detection baseline: every colour blob, labelled by :func:`shape_word`.

    Returns ``{"boxes": (N, 4) float32, "scores": (N,) float32, "labels": N strings}``.
    Raises AdapterError when ``rgb`` is not (H, W, 3).
    """
    blobs = find_colour_blobs(rgb)
    return _result(blobs, [shape_word(blob.box) for blob in blobs])


def detect_phrases(rgb: np.ndarray, vocabulary: Sequence[str]) -> dict:
    """Open-vocabulary baseline: colour blobs named "<hue> <shape>", kept when the phrase is in ``vocabulary``.

    Returns ``{"boxes", "scores", "labels"}`` as :func:`detect_objects` does. Raises
    AdapterError when ``rgb`` is not (H, W, 3).
    """
    wanted = {str(phrase).strip().lower() for phrase in vocabulary}
    named = [(blob, f"{colour_word(blob)} {shape_word(blob.box)}") for blob in find_colour_blobs(rgb)]
    kept = [(blob, phrase) for blob, phrase in named if phrase in wanted]
    return _result([blob for blob, _ in kept], [phrase for _, phrase in kept])


def ground_phrase(rgb: np.ndarray, text: str) -> dict:
    """Visual-grounding baseline: the blobs whose hue word appears in ``text``, best first.

    A blob whose shape word (bottle, crate, box) also appears in the text ranks before one whose
    shape does not, then larger blobs first. Without a hue word in the text, or a blob of that
    hue, no box is returned. Returns ``{"boxes": (N, 4) float32, "scores": (N,) float32}``.
    Raises AdapterError when ``rgb`` is not (H, W, 3).
    """
    words = set(re.findall(r"[a-z]+", str(text).lower()))
    blobs = [blob for blob in find_colour_blobs(rgb) if colour_word(blob) in words]
    blobs.sort(key=lambda blob: (shape_word(blob.box) not in words, -blob.pixels))
    return _result(blobs, None)


def colour_blob_tracks(rgb: np.ndarray) -> list[dict[str, Any]]:
    """Object-tracking baseline: one single-step track per blob of saturated colour
    (``rpx_tasks.models.colour_blobs``).

    The track id is the blob's hue word (``red``, ``blue``, ...), so an object keeps its id
    from frame to frame; blobs of one frame that share a word get ``-2``, ``-3``, ... in
    left-to-right order. The score is the blob's share of the image. Returns a list of
    ``{track_id, boxes (1, 4), scores (1,)}``; raises AdapterError if ``rgb`` is not (H, W, 3).
    """
    blobs = find_colour_blobs(rgb)
    area = float(rgb.shape[0] * rgb.shape[1])
    seen: dict[str, int] = {}
    tracks = []
    for blob in blobs:
        seen[blob.hue] = seen.get(blob.hue, 0) + 1
        track_id = blob.hue if seen[blob.hue] == 1 else f"{blob.hue}-{seen[blob.hue]}"
        boxes = np.asarray(blob.box, np.float32).reshape(1, 4)
        tracks.append({"track_id": track_id, "boxes": boxes, "scores": [blob.pixels / area]})
    return tracks


__all__ = ["colour_blob_tracks", "colour_word", "detect_objects", "detect_phrases", "ground_phrase", "shape_word"]
