"""Caching and retries of the download step.

A Hub download is keyed by what selects its files (``download_cache_key``) and its record, a
small ``PreparedSplit``, is persisted under ``results_dir()``; a record whose manifest or
snapshot folder is gone is dropped, so the split is fetched again (``SplitCachePolicy``).
Only ``TransientDownloadError`` is retried, with exponential backoff and jitter.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from prefect.settings import get_current_settings
from prefect.utilities.hashing import hash_objects

import rpx_tasks
from rpx_tasks import bench, hub
from rpx_tasks.config import RunConfig
from rpx_tasks.errors import TransientDownloadError

from .logs import run_logger

# Bump when download_split_step's cached PreparedSplit changes meaning: old records are then ignored.
STEP_VERSION = "download-split/1"

DOWNLOAD_RETRIES = 3
DOWNLOAD_RETRY_JITTER = 0.5


def results_dir() -> Path:
    """Return where persisted step results (the download cache records) live.

    ``RPX_PREFECT_RESULTS`` if set, else ``<PREFECT_HOME>/rpx-results``. The download step reads
    it when its module is imported (the task is configured then). Raises nothing.
    """
    configured = os.environ.get("RPX_PREFECT_RESULTS")
    if configured:
        return Path(configured).expanduser()
    return Path(get_current_settings().home).expanduser() / "rpx-results"


def download_backoff_seconds() -> float:
    """Return the first retry delay of the download step (doubling after): ``RPX_DOWNLOAD_BACKOFF_S``, default 2 s.

    Raises ValueError when the variable is not a number.
    """
    return float(os.environ.get("RPX_DOWNLOAD_BACKOFF_S") or 2.0)


def split_is_on_disk(prepared: object) -> bool:
    """Return True when ``prepared`` (a cached value of any type) is a PreparedSplit whose manifest (and
    snapshot folder, if any) still exist. Raises nothing."""
    if not isinstance(prepared, bench.PreparedSplit):
        return False
    if not Path(prepared.manifest_path).is_file():
        return False
    return prepared.root is None or Path(prepared.root).is_dir()


def _default_hf_cache() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def download_cache_key(config: RunConfig) -> str:
    """Return the cache key of a Hub download: a readable prefix and a hash of everything that selects the files.

    That is the repo, revision, task, split, modalities, ``max_samples``, the HF cache folder,
    the resolved manifest's path (so the RPX cache folder), a local mirror's manifest stamp,
    the package version and ``STEP_VERSION``. Raises nothing.
    """
    repo_id = config.effective_repo_id
    digest = hash_objects(
        STEP_VERSION,
        rpx_tasks.__version__,
        repo_id,
        config.effective_revision,
        config.task,
        config.split,
        bench.download_modalities(config),
        config.max_samples,
        str(Path(config.cache_dir).expanduser()) if config.cache_dir else _default_hf_cache(),
        str(hub.resolved_manifest_path(repo_id, config.task, config.split, config.max_samples)),
        hub.mirror_manifest_stamp(repo_id, config.task, config.split),
    )
    return f"rpx-split-{config.task}-{config.split}-{digest}"


def _drop_record(store: Any, key: str) -> None:
    """Delete the persisted record ``key`` from a local result store (and its in-memory copy)."""
    basepath = getattr(store.result_storage, "basepath", None)
    if basepath is None:
        return
    Path(basepath).expanduser().joinpath(key).unlink(missing_ok=True)
    for cached in [k for k in store.cache if str(k).endswith(key)]:
        store.cache.pop(cached, None)


@dataclass
class SplitCachePolicy(CachePolicy):
    """Key Hub downloads by what selects their files; drop a record whose files are gone.

    Local manifests and the built-in sample data (any ``manifest``) get no key: nothing to cache.
    """

    def compute_key(
        self, task_ctx: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any
    ) -> str | None:
        """Return the download's cache key, or None for local data. Raises nothing."""
        config: RunConfig = inputs["config"]
        if config.manifest:
            return None
        key = download_cache_key(config)
        store = task_ctx.result_store
        if store.exists(key):
            try:
                prepared = store.read(key).result
            except Exception:  # an unreadable record is as good as a missing one
                prepared = None
            if not split_is_on_disk(prepared):
                run_logger().info("Cached split %s is no longer on disk; downloading it again.", key)
                _drop_record(store, key)
        return key


def retry_transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """Return True (retry) only when the failed download raised a TransientDownloadError."""
    try:
        error = state.result(raise_on_failure=False)
    except Exception:
        return False
    return isinstance(error, TransientDownloadError)
