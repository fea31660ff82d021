"""Task-scoped, cached, verified dataset download from the Hugging Face Hub (or a local mirror).

Public API (what the CLI and the Prefect steps call):

- ``MODALITY_FILES``: modality -> (loose-file globs, tar shard) inside a clip folder.
- ``fetch_manifest(task, split, ...) -> dict``: the Hub manifest only.
- ``describe_split(task, split, modalities=...) -> SplitDescription``: for ``rpx info``.
- ``download_split(task, split, modalities=...) -> DownloadedSplit``: for ``rpx download``
  and ``rpx bench`` without ``--manifest``.
- ``resolved_manifest_path(repo_id, task, split, max_samples, modalities=...)``: where the resolved
  manifest goes (one per modality set and size).
- ``resolved_files_present(manifest_path)``: whether every file a resolved manifest names is on disk.
- ``mirror_manifest_stamp(repo_id, task, split)``: a local mirror's manifest modification time
  (None for a Hub repo), for cache keys.

Errors: ManifestError / DatasetError / DownloadError with hints; ``TransientDownloadError``
(a DownloadError) marks failures worth retrying (network trouble, HTTP 408/429/5xx).
"""

from .modalities import MODALITY_FILES, ModalityFiles, allow_patterns, check_modalities, shard_paths
from .presence import resolved_files_present
from .shards import extract_shards, read_checksums
from .sources import hub_offline, mirror_manifest_stamp
from .split import (
    DownloadedSplit,
    SplitDescription,
    describe_split,
    download_split,
    fetch_manifest,
    repo_cache_key,
    resolved_manifest_path,
)
from .warm_split import warm_split

__all__ = [
    "MODALITY_FILES",
    "ModalityFiles",
    "DownloadedSplit",
    "SplitDescription",
    "allow_patterns",
    "check_modalities",
    "describe_split",
    "download_split",
    "extract_shards",
    "fetch_manifest",
    "hub_offline",
    "mirror_manifest_stamp",
    "read_checksums",
    "repo_cache_key",
    "resolved_files_present",
    "resolved_manifest_path",
    "shard_paths",
    "warm_split",
]
