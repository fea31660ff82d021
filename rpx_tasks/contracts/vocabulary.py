"""The open-vocabulary protocol's shared types: the ``--vocabulary`` option, the split a task's
vocabulary hook settles, and the names of the vocabulary sources result.json records.

The vocabulary a model receives for a sample is, in order of precedence (``--vocabulary``
overriding all of them):

1. the sample's own ``vocabulary`` (manifest sample key: an inline list of strings or the path of
   a JSON file holding one) — source ``sample``;
2. the split's vocabulary: the manifest's top-level ``vocabulary`` key (an inline list of strings
   or the path, relative to the dataset root, of a JSON file holding one) — source ``split-file``;
3. the sorted union of every ground-truth label of the split's samples — source ``split-union``.

``--vocabulary`` gives one vocabulary to every sample (source ``user``), or with the word
``frame-labels`` each frame's own ground-truth labels (source ``frame-labels``), which tells the
model what is in the image: result.json records that run as not comparable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rpx_tasks.errors import ConfigError

# The --vocabulary word for "each frame's own ground-truth labels" (not comparable).
FRAME_LABELS = "frame-labels"

# The vocabulary sources result.json names.
SOURCE_SAMPLE = "sample"
SOURCE_SPLIT_FILE = "split-file"
SOURCE_SPLIT_UNION = "split-union"
SOURCE_USER = "user"
SOURCE_FRAME_LABELS = FRAME_LABELS

# The --vocabulary syntax, for hints and help texts.
VOCABULARY_OPTION_SYNTAX = (
    "--vocabulary 'red box,mug' (comma-separated phrases), --vocabulary @FILE (a .json file holding a list "
    "of strings, any other file one phrase per line) or --vocabulary frame-labels (each frame's own "
    "ground-truth labels; recorded as not comparable)"
)

# A parsed --vocabulary: the phrases every sample gets, or FRAME_LABELS.
VocabularyOverride = list[str] | str


def _phrases(items: list[Any], origin: str) -> list[str]:
    """``items`` as distinct non-empty stripped strings in their order. Raises ConfigError otherwise."""
    if not all(isinstance(item, str) for item in items):
        raise ConfigError(
            f"The vocabulary {origin} must be a list of strings, got {items!r:.200}.",
            hint=VOCABULARY_OPTION_SYNTAX,
        )
    phrases = [item.strip() for item in items]
    if not phrases or not all(phrases):
        raise ConfigError(
            f"The vocabulary {origin} holds an empty phrase or none at all: {items!r:.200}.",
            hint="give at least one phrase and no empty ones; " + VOCABULARY_OPTION_SYNTAX,
        )
    return list(dict.fromkeys(phrases))


def _read_vocabulary_file(text: str) -> list[str]:
    """The phrases of ``@FILE``: a JSON list of strings (``.json``) or one phrase per line. Raises ConfigError."""
    path = Path(text).expanduser()
    origin = f"file {path}"
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"Cannot read the vocabulary file {path}: {exc}.",
            hint="pass an existing file after @: " + VOCABULARY_OPTION_SYNTAX,
            details={"path": str(path)},
        ) from exc
    if path.suffix.lower() != ".json":
        return _phrases([line for line in content.splitlines() if line.strip()], origin)
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"The vocabulary file {path} is not valid JSON: {exc}.",
            hint='a .json vocabulary file holds a list of strings, e.g. ["red box", "mug"]',
            details={"path": str(path)},
        ) from exc
    if not isinstance(data, list):
        raise ConfigError(
            f"The vocabulary file {path} must hold a list of strings, got {type(data).__name__}.",
            hint='a .json vocabulary file holds a list of strings, e.g. ["red box", "mug"]',
            details={"path": str(path)},
        )
    return _phrases(data, origin)


def parse_vocabulary_option(value: Any) -> VocabularyOverride:
    """The ``--vocabulary`` value (or a run config's ``vocabulary``) as the phrases every sample gets, or FRAME_LABELS.

    A list of strings is used as is; a string is ``frame-labels``, ``@FILE`` (a ``.json`` file
    holding a list of strings, any other file one phrase per line) or comma-separated phrases.
    Phrases are stripped and de-duplicated in order. Raises ConfigError (with the syntax as
    hint) for an empty value or phrase, a missing or unreadable file, or a file that is not a
    list of strings.
    """
    if isinstance(value, (list, tuple)):
        return _phrases(list(value), "given")
    if not isinstance(value, str):
        raise ConfigError(
            f"vocabulary must be a string or a list of strings, got {type(value).__name__}.",
            hint=VOCABULARY_OPTION_SYNTAX,
        )
    text = value.strip()
    if text == FRAME_LABELS:
        return FRAME_LABELS
    if text.startswith("@"):
        return _read_vocabulary_file(text[1:])
    return _phrases(text.split(","), f"{value!r}")


@dataclass(frozen=True)
class SplitEntries:
    """The split a task's vocabulary hook settles, when the split is opened.

    ``manifest`` is the whole manifest (its top-level ``vocabulary`` is the split's vocabulary),
    ``source`` its path (for messages), ``entries`` the samples of this run in run order and
    ``resolve(path, sample_id, key)`` the dataset root's path resolver.
    """

    manifest: dict[str, Any]
    source: str
    entries: list[dict[str, Any]]
    resolve: Callable[[str, str, str], Path]


@dataclass(frozen=True)
class SettledVocabulary:
    """What a task's vocabulary hook returns: the entries, each with the ``vocabulary`` list its
    model receives, and the record result.json keeps under ``vocabulary``."""

    entries: list[dict[str, Any]]
    record: dict[str, Any]


# settle(split, override) -> SettledVocabulary; override None, a phrase list or FRAME_LABELS.
VocabularyHook = Callable[[SplitEntries, VocabularyOverride | None], SettledVocabulary]
