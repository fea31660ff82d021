"""A Hub split that an earlier ``download_split`` already resolved and that is still complete on disk.

``rpx bench`` without Prefect reuses it as the Prefect download step reuses its cached record: no
request to the Hub at all (no revision lookup, no manifest HEAD). The match is on what selects the
files, as the step's cache key: repo, requested revision (as given: a branch name is not looked up
again, as with the Prefect cache), task, split, modalities, ``max_samples`` and the Hugging Face cache
folder; then every file the resolved manifest names must still be there (``resolved_files_present``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from rpx_tasks.constants import default_repo_id, default_revision
from rpx_tasks.manifest import scene_phase_pairs

from .modalities import check_modalities
from .presence import resolved_files_present
from .sources import looks_like_path
from .split import DownloadedSplit, resolved_manifest_path


def _hf_cache(cache_dir: str | None) -> Path:
    if cache_dir:
        return Path(cache_dir).expanduser().resolve()
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE).expanduser().resolve()


def _read_object(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def warm_split(
    task: str,
    split: str,
    *,
    modalities: Sequence[str],
    repo_id: str | None = None,
    revision: str | None = None,
    cache_dir: str | None = None,
    max_samples: int | None = None,
) -> DownloadedSplit | None:
    """Return the DownloadedSplit of the resolved manifest of these arguments (``download_split``'s), when it
    was resolved for the same repo, revision, modalities and ``max_samples``, its root lies in the Hugging
    Face cache folder of ``cache_dir``, and every file it names is on disk; None otherwise (and always for a
    local mirror folder, which ``download_split`` reads without the network).

    Makes no network request. Raises ConfigError for an unknown modality.
    """
    repo = repo_id or default_repo_id()
    if looks_like_path(repo):
        return None
    names = check_modalities(modalities)
    target = resolved_manifest_path(repo, task, split, max_samples, modalities=names)
    manifest = _read_object(target)
    source = (manifest or {}).get("source")
    if not isinstance(source, dict) or not isinstance(manifest.get("samples"), list):
        return None
    same = (
        source.get("repo_id") == repo
        and source.get("revision") == (revision or default_revision())
        and source.get("max_samples") == max_samples
        and sorted(source.get("modalities") or []) == sorted(names)
        and isinstance(source.get("commit"), str)
    )
    root = Path(str(manifest.get("root")))
    if not same or _hf_cache(cache_dir) not in root.resolve().parents or not resolved_files_present(target):
        return None
    return DownloadedSplit(
        manifest_path=target,
        root=root,
        num_samples=len(manifest["samples"]),
        pairs=scene_phase_pairs(manifest),
        repo_id=repo,
        revision=source["commit"],
        modalities=names,
    )
