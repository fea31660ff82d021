"""Caching and retries of the download step.

A Hub download is keyed by what selects its files (``download_cache_key``, ``SplitCachePolicy``)
and its record, a small ``PreparedSplit``, is persisted under ``results_dir()``. The record is
trusted only while every file its resolved manifest names is on disk (``split_files_present``, a
stat walk); otherwise the step runs with Prefect's ``refresh_cache`` (``download_needs_refresh``)
and its new record replaces the old one.
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
from rpx_tasks.hub.retries import DOWNLOAD_RETRIES, DOWNLOAD_RETRY_JITTER, download_backoff_seconds

from .logs import run_logger

__all__ = [
    "DOWNLOAD_RETRIES",
    "DOWNLOAD_RETRY_JITTER",
    "STEP_VERSION",
    "SplitCachePolicy",
    "download_backoff_seconds",
    "download_cache_key",
    "download_needs_refresh",
    "failure_of",
    "resolved_manifest_of",
    "results_dir",
    "retry_transient_only",
    "split_files_present",
]

# Bump when download_split_step's cached PreparedSplit changes meaning: old records are then ignored.
STEP_VERSION = "download-split/1"


def results_dir() -> Path:
    """Return where persisted step results (the download cache records) live.

    ``RPX_PREFECT_RESULTS`` if set, else ``<PREFECT_HOME>/rpx-results``. The download step reads
    it when its module is imported (the task is configured then). Raises nothing.
    """
    configured = os.environ.get("RPX_PREFECT_RESULTS")
    if configured:
        return Path(configured).expanduser()
    return Path(get_current_settings().home).expanduser() / "rpx-results"


def resolved_manifest_of(config: RunConfig) -> Path:
    """Return where the Hub download of ``config`` writes its resolved manifest. Raises ConfigError
    for an unknown task (the config was validated, so in practice nothing)."""
    return hub.resolved_manifest_path(
        config.effective_repo_id,
        config.task,
        config.split,
        config.max_samples,
        modalities=bench.download_modalities(config),
    )


def split_files_present(config: RunConfig) -> bool:
    """Return True when the resolved manifest of ``config``'s Hub download exists and every file it
    names is on disk (``hub.resolved_files_present``); False otherwise. Raises nothing."""
    return hub.resolved_files_present(resolved_manifest_of(config))


def download_needs_refresh(config: RunConfig) -> bool:
    """Return True when the download step must not use a cached record: a Hub download whose files are
    not all on disk (never for a local manifest or the built-in sample data, which are not cached).

    The caller passes it as the step's ``refresh_cache`` option. Raises nothing.
    """
    if config.manifest or split_files_present(config):
        return False
    run_logger().info("%s/%s is not (or no longer) fully on disk; the download step runs.", config.task, config.split)
    return True


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
        str(resolved_manifest_of(config)),
        hub.mirror_manifest_stamp(repo_id, config.task, config.split),
    )
    return f"rpx-split-{config.task}-{config.split}-{digest}"


@dataclass
class SplitCachePolicy(CachePolicy):
    """Key Hub downloads by what selects their files (``download_cache_key``).

    Local manifests and the built-in sample data (any ``manifest``) get no key: nothing to cache.
    Whether a record may be used is decided before the step is submitted (``download_needs_refresh``).
    """

    def compute_key(
        self, task_ctx: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any
    ) -> str | None:
        """Return the download's cache key, or None for local data. Raises nothing."""
        config: RunConfig = inputs["config"]
        return None if config.manifest else download_cache_key(config)


def failure_of(state: Any) -> BaseException | None:
    """Return the exception a failed task-run state holds, or None when it cannot be read. Raises nothing."""
    try:
        error = state.result(raise_on_failure=False)
    except Exception:
        return None
    return error if isinstance(error, BaseException) else None


def retry_transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """Return True (retry) only when the failed download raised a TransientDownloadError."""
    return isinstance(failure_of(state), TransientDownloadError)
