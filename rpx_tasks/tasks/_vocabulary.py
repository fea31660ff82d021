"""The open-vocabulary protocol on the task side: which vocabulary each sample's model receives,
settled once when the split is opened, and the record result.json keeps of it.

Precedence and sources are described in :mod:`rpx_tasks.contracts.vocabulary`. The record
(result.json ``vocabulary``) always has ``source`` and ``comparable``; a vocabulary shared by
its samples (``user``, ``split-file``, ``split-union``) also ``size`` and ``terms``, one that
differs per sample (``sample``, ``frame-labels``) ``size_min`` and ``size_max``. ``samples``
counts the samples that received it; when only some samples have their own vocabulary, the
record is the ``sample`` one with the shared vocabulary the others received under ``fallback``.

This module's name starts with "_" so the task registry does not take it for a task.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from rpx_tasks.contracts.boxes import label_text
from rpx_tasks.contracts.spec import PathResolver
from rpx_tasks.contracts.vocabulary import (
    FRAME_LABELS,
    SOURCE_FRAME_LABELS,
    SOURCE_SAMPLE,
    SOURCE_SPLIT_FILE,
    SOURCE_SPLIT_UNION,
    SOURCE_USER,
    SettledVocabulary,
    SplitEntries,
    VocabularyOverride,
)
from rpx_tasks.errors import ManifestError
from rpx_tasks.tasks._boxes import load_string_list

# Stands for the sample id when the split's vocabulary file path is checked against the root.
SPLIT_VOCABULARY_ID = "(split vocabulary)"

FRAME_LABELS_NOTE = (
    "each frame's own ground-truth labels (--vocabulary frame-labels): the model is told which classes "
    "are in the image, so scores are an upper bound, not comparable with other runs"
)

_SPLIT_FILE_HINT = (
    "the manifest's top-level 'vocabulary' is an inline list of strings or the path (relative to the "
    "dataset root) of a JSON file holding a non-empty list of strings"
)

# labels_of(entry, resolve) -> the ground-truth labels of one manifest entry.
LabelsOf = Callable[[dict[str, Any], PathResolver], list[str]]


def _given(entries: list[dict[str, Any]], vocabularies: list[list[str]]) -> list[dict[str, Any]]:
    return [{**entry, "vocabulary": vocabulary} for entry, vocabulary in zip(entries, vocabularies)]


def _shared_record(source: str, terms: list[str], samples: int, **extra: Any) -> dict[str, Any]:
    return {"source": source, "comparable": True, "size": len(terms), "terms": list(terms), "samples": samples, **extra}


def _per_sample_record(source: str, vocabularies: list[list[str]], *, comparable: bool) -> dict[str, Any]:
    sizes = [len(vocabulary) for vocabulary in vocabularies]
    return {
        "source": source,
        "comparable": comparable,
        "size_min": min(sizes, default=0),
        "size_max": max(sizes, default=0),
        "samples": len(vocabularies),
    }


def _split_file_terms(split: SplitEntries) -> tuple[list[str], str | None] | None:
    """The split's vocabulary (manifest top-level ``vocabulary``) and its file (None inline); None without one.

    Raises ManifestError naming the manifest (and file) when it is missing, not JSON, or not a
    non-empty list of strings.
    """
    value = split.manifest.get("vocabulary")
    if value is None:
        return None
    where = f"Manifest {split.source}: the split's 'vocabulary'"
    details = {"manifest": split.source, "key": "vocabulary"}
    data, file = value, None
    if isinstance(value, str):
        path = split.resolve(value, SPLIT_VOCABULARY_ID, "vocabulary")
        file = str(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ManifestError(f"{where} file {path} is not found.", hint=_SPLIT_FILE_HINT, details=details) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ManifestError(
                f"{where} file {path} is not valid JSON ({exc}).", hint=_SPLIT_FILE_HINT, details=details
            ) from exc
    terms = [label_text(item) for item in data] if isinstance(data, list) else None
    if not terms or any(not term for term in terms):
        raise ManifestError(
            f"{where} must be a non-empty list of strings, got {data!r:.200}.", hint=_SPLIT_FILE_HINT, details=details
        )
    return list(dict.fromkeys(terms)), file  # type: ignore[arg-type]


def _split_vocabulary(split: SplitEntries, labels_of: LabelsOf, samples: int) -> tuple[list[str], dict[str, Any]]:
    """The split's shared vocabulary (its file, else the sorted union of its labels) and its record."""
    from_file = _split_file_terms(split)
    if from_file is not None:
        terms, file = from_file
        return terms, _shared_record(SOURCE_SPLIT_FILE, terms, samples, file=file)
    union = sorted({label for entry in split.entries for label in labels_of(entry, split.resolve)})
    return union, _shared_record(SOURCE_SPLIT_UNION, union, samples, over_samples=len(split.entries))


def settle_split_vocabulary(
    split: SplitEntries, override: VocabularyOverride | None, *, labels_of: LabelsOf
) -> SettledVocabulary:
    """Give every entry of ``split`` the vocabulary its model receives; returns the entries and the record.

    ``override`` (``--vocabulary``): a phrase list every sample gets, or FRAME_LABELS (each
    entry's own labels, recorded as not comparable). Without it: the entry's own
    ``vocabulary``, else the split's vocabulary file, else the sorted union of the labels of
    every entry. Raises ManifestError naming the sample (or manifest), field and file for a
    vocabulary or label file that is missing or malformed.
    """
    entries = split.entries
    if override == FRAME_LABELS:
        labels = [sorted(set(labels_of(entry, split.resolve))) for entry in entries]
        record = {**_per_sample_record(SOURCE_FRAME_LABELS, labels, comparable=False), "note": FRAME_LABELS_NOTE}
        return SettledVocabulary(_given(entries, labels), record)
    if override is not None:
        terms = list(override)
        return SettledVocabulary(
            _given(entries, [terms] * len(entries)), _shared_record(SOURCE_USER, terms, len(entries))
        )
    own = [
        None
        if entry.get("vocabulary") is None
        else load_string_list(entry["vocabulary"], split.resolve, entry["id"], "vocabulary")
        for entry in entries
    ]
    with_own = [vocabulary for vocabulary in own if vocabulary is not None]
    if len(with_own) == len(entries):
        return SettledVocabulary(
            _given(entries, with_own), _per_sample_record(SOURCE_SAMPLE, with_own, comparable=True)
        )
    terms, fallback = _split_vocabulary(split, labels_of, samples=len(entries) - len(with_own))
    vocabularies = [terms if vocabulary is None else vocabulary for vocabulary in own]
    if not with_own:
        return SettledVocabulary(_given(entries, vocabularies), fallback)
    record = {**_per_sample_record(SOURCE_SAMPLE, with_own, comparable=True), "fallback": fallback}
    return SettledVocabulary(_given(entries, vocabularies), record)
