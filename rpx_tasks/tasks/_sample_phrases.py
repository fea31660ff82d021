"""Class names of the built-in sample data's objects, shared by the box tasks' sample entries
(open_vocab_detection's labels and vocabulary, visual_grounding's referring expressions).

A floor object is "<colour> <category>" for a colour word and a category of the sample data's
vocabulary (``SAMPLE_COLOUR_WORDS``, ``SAMPLE_CATEGORIES`` in ``rpx_tasks.constants``); the
robot arm is ``SAMPLE_ARM_PHRASE`` (``robot arm``).

This module's name starts with "_" so the task registry does not take it for a task.
"""

from __future__ import annotations

from rpx_tasks.constants import SAMPLE_ARM_LABEL, SAMPLE_ARM_PHRASE, SAMPLE_CATEGORIES, SAMPLE_COLOUR_WORDS
from rpx_tasks.contracts.sample_frame import SampleObject

_FLOOR_PHRASES = tuple(f"{colour} {category}" for colour in SAMPLE_COLOUR_WORDS for category in SAMPLE_CATEGORIES)
SAMPLE_VOCABULARY = _FLOOR_PHRASES + (SAMPLE_ARM_PHRASE,)


def object_phrase(obj: SampleObject) -> str:
    """The class name of a built-in sample object: ``robot arm`` or "<colour> <category>". Raises nothing."""
    return SAMPLE_ARM_PHRASE if obj.label == SAMPLE_ARM_LABEL else f"{obj.colour} {obj.label}"


__all__ = ["SAMPLE_VOCABULARY", "object_phrase"]
