"""Class names of the built-in sample data's objects, shared by the box tasks' sample entries
(open_vocab_detection's labels and vocabulary, visual_grounding's referring expressions).

A floor object is "<colour> <category>" for a colour word and a category of
``rpx_tasks.sample_data``; the robot arm is ``robot arm``.

This module's name starts with "_" so the task registry does not take it for a task.
"""

from __future__ import annotations

SAMPLE_COLOURS = ("black", "grey", "white", "red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink")
SAMPLE_CATEGORIES = ("box", "crate", "bottle")
ARM_PHRASE = "robot arm"
_FLOOR_PHRASES = tuple(f"{colour} {category}" for colour in SAMPLE_COLOURS for category in SAMPLE_CATEGORIES)
SAMPLE_VOCABULARY = _FLOOR_PHRASES + (ARM_PHRASE,)


def object_phrase(obj) -> str:
    """The class name of a built-in sample object: ``robot arm`` or "<colour> <category>"."""
    return ARM_PHRASE if obj.label == "arm" else f"{obj.colour} {obj.label}"


__all__ = ["ARM_PHRASE", "SAMPLE_CATEGORIES", "SAMPLE_COLOURS", "SAMPLE_VOCABULARY", "object_phrase"]
