"""Whether a resolved manifest's files are all still on disk: a stat walk, no hashing, no network.

The Prefect download step asks this before it trusts its cached record: a cache folder
cleaned by hand (or by ``huggingface-cli delete-cache``) must lead to a fresh fetch, not to a
run that fails half-way on a missing frame. Only the sample keys of the modalities the manifest
was resolved for (its ``source.modalities``) are checked, as ``download_split`` does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .modalities import MODALITY_SAMPLE_KEYS


def _checked_keys(manifest: dict[str, Any]) -> tuple[str, ...]:
    """The sample keys that name a file of one of the manifest's downloaded modalities."""
    source = manifest.get("source")
    modalities = source.get("modalities") if isinstance(source, dict) else None
    if not isinstance(modalities, list):
        return ()
    return tuple(key for name in modalities if isinstance(name, str) for key in MODALITY_SAMPLE_KEYS.get(name, ()))


def _all_files_present(root: str, samples: list[Any], keys: tuple[str, ...]) -> bool:
    """True when every distinct path under ``keys`` of ``samples`` is a file (relative paths against ``root``)."""
    seen: set[str] = set()
    for entry in samples:
        if not isinstance(entry, dict):
            return False
        for key in keys:
            value = entry.get(key)
            if isinstance(value, str) and value and value not in seen:
                seen.add(value)
                if not os.path.isfile(os.path.join(root, value)):
                    return False
    return True


def resolved_files_present(manifest_path: str | os.PathLike[str]) -> bool:
    """Return True when the resolved manifest at ``manifest_path`` exists and every file it names is present.

    "Names" means the paths under the sample keys of its ``source.modalities`` (``rgb``, ``depth``,
    ...), resolved against its ``root``. A missing, unreadable or malformed manifest, or one without
    ``root`` or ``source.modalities``, counts as not present. Measured at a few ms per 10,000 files
    (``benchmarks/manifest_stat_walk.py``). Raises nothing.
    """
    try:
        manifest = json.loads(Path(manifest_path).read_bytes())
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict):
        return False
    root, samples, keys = manifest.get("root"), manifest.get("samples"), _checked_keys(manifest)
    if not isinstance(root, str) or not isinstance(samples, list) or not keys:
        return False
    return os.path.isdir(root) and _all_files_present(root, samples, keys)
