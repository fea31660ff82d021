"""The pipeline steps as Prefect tasks (layer 2): cache keys, retries, GPU slots and artifacts.

Each step wraps one function of :mod:`rpx_tasks.bench`; no benchmark logic lives here.

- ``validate_config_step``: flow parameters -> RunConfig (ConfigError, never retried).
- ``resolve_device_step``: the device the run will use (CUDA falls back to CPU).
- ``download_split_step``: the split's manifest on disk. Cached across flow runs by repo,
  revision, task, split, modalities, max_samples, the HF and RPX cache folders and
  ``STEP_VERSION``; the
  record (a small ``PreparedSplit``) is persisted under ``results_dir()``; a record whose
  manifest or snapshot folder is gone is dropped, so the split is fetched again. Retried with
  exponential backoff and jitter on ``TransientDownloadError`` only.
- ``resolve_model_step``: the Model object; never cached or persisted (not picklable).
- ``run_benchmark_step``: the benchmark loop, holding the ``gpu-<i>`` concurrency slot of the
  requested GPU for the whole run (none for CPU).
- ``write_report_step``: the four report files, then a markdown, a table and a link artifact.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE, CachePolicy
from prefect.context import TaskRunContext
from prefect.exceptions import MissingContextError
from prefect.settings import get_current_settings
from prefect.tasks import exponential_backoff
from prefect.utilities.hashing import hash_objects

import rpx_tasks
from rpx_tasks import bench
from rpx_tasks.config import RunConfig
from rpx_tasks.device import gpu_index
from rpx_tasks.errors import ConfigError, TransientDownloadError
from rpx_tasks.runner import Progress
from rpx_tasks.tasks import get_task, iter_tasks

# Bump when download_split_step's cached PreparedSplit changes meaning: old records are then ignored.
STEP_VERSION = "download-split/1"

# The flow's `manifest` value that asks for the built-in procedural dataset instead of a file.
BUILTIN_SAMPLE = "builtin:sample"

DOWNLOAD_RETRIES = 3
DOWNLOAD_RETRY_JITTER = 0.5

_TEMPLATE = re.compile(r"\{\{.*?\}\}")


def _logger() -> logging.Logger | logging.LoggerAdapter:
    """The run logger inside a flow or task run (logs reach the UI), else this module's logger."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


def results_dir() -> Path:
    """Where persisted step results (the download cache records) live.

    ``RPX_PREFECT_RESULTS`` if set, else ``<PREFECT_HOME>/rpx-results``. Read when this module
    is imported (the task is configured then).
    """
    configured = os.environ.get("RPX_PREFECT_RESULTS")
    if configured:
        return Path(configured).expanduser()
    return Path(get_current_settings().home).expanduser() / "rpx-results"


def download_backoff_seconds() -> float:
    """First retry delay of the download step (doubling after): ``RPX_DOWNLOAD_BACKOFF_S``, default 2 s."""
    return float(os.environ.get("RPX_DOWNLOAD_BACKOFF_S") or 2.0)


def sample_tasks() -> list[str]:
    """The registered tasks the built-in sample data covers (those with a ``sample_entry``)."""
    return [spec.name for spec in iter_tasks() if spec.sample_entry is not None]


def sample_data_dir() -> Path:
    """Where ``manifest="builtin:sample"`` writes the built-in dataset once: under RPX_CACHE_DIR,
    in a folder named by the package version and the covered tasks (a new task means new data)."""
    cache = Path(os.environ.get("RPX_CACHE_DIR") or "~/.cache/rpx_benchmark").expanduser()
    tasks = hashlib.sha256(",".join(sample_tasks()).encode()).hexdigest()[:8]
    return cache / f"sample-data-{rpx_tasks.__version__}-{tasks}"


# -- validate config -------------------------------------------------------------------------


@task(name="validate-config", cache_policy=NO_CACHE, persist_result=False)
def validate_config_step(params: dict[str, Any], builtin_sample: bool = False) -> RunConfig:
    """Build the RunConfig from plain flow parameters (``model_name``, not ``model``).

    Raises ConfigError for any invalid value, for a parameter that still holds an unresolved
    ``{{ ... }}`` deployment template, and for built-in sample data asked for another task.
    """
    for name, value in params.items():
        if isinstance(value, str) and _TEMPLATE.search(value):
            raise ConfigError(
                f"Parameter {name!r} holds an unresolved template variable: {value!r}.",
                hint="set that environment variable where you run `prefect deploy` and deploy again, "
                "or pass the parameter explicitly with --param",
                details={"parameter": name},
            )
    if builtin_sample:
        if get_task(params.get("task")).sample_entry is None:
            raise ConfigError(
                f"The built-in sample data does not cover {params.get('task')!r}.",
                hint=f"it covers {', '.join(sample_tasks())}; or pass a real manifest",
            )
        params = {key: value for key, value in params.items() if key != "manifest"}
    return bench.validate_config(params)


# -- resolve device --------------------------------------------------------------------------


@task(name="resolve-device", cache_policy=NO_CACHE, persist_result=False)
def resolve_device_step(requested: str, require_cuda: bool = False) -> str:
    """The device the run uses: ``requested``, or ``cpu`` when CUDA is unavailable. Raises ConfigError."""
    return bench.resolve_device(requested, require_cuda=require_cuda)


# -- download split --------------------------------------------------------------------------


def split_is_on_disk(prepared: Any) -> bool:
    """True when a cached PreparedSplit's manifest (and snapshot folder, if any) still exist."""
    if not isinstance(prepared, bench.PreparedSplit):
        return False
    if not Path(prepared.manifest_path).is_file():
        return False
    return prepared.root is None or Path(prepared.root).is_dir()


def _default_hf_cache() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _mirror_manifest_stamp(config: RunConfig) -> int | None:
    """For a local mirror folder, the modification time of its manifest (a changed mirror is a new key)."""
    from rpx_tasks.hub.sources import looks_like_path

    if not looks_like_path(config.effective_repo_id):
        return None
    manifest = Path(config.effective_repo_id).expanduser() / "manifests" / config.task / f"{config.split}.json"
    return manifest.stat().st_mtime_ns if manifest.is_file() else None


def download_cache_key(config: RunConfig) -> str:
    """The cache key of a Hub download: a readable prefix and a hash of everything that selects the files."""
    from rpx_tasks.hub import resolved_manifest_path

    digest = hash_objects(
        STEP_VERSION,
        rpx_tasks.__version__,
        config.effective_repo_id,
        config.effective_revision,
        config.task,
        config.split,
        bench.download_modalities(config),
        config.max_samples,
        str(Path(config.cache_dir).expanduser()) if config.cache_dir else _default_hf_cache(),
        str(resolved_manifest_path(config.effective_repo_id, config.task, config.split, config.max_samples)),
        _mirror_manifest_stamp(config),
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

    Local manifests and the built-in sample data get no key: nothing to cache.
    """

    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any) -> str | None:
        config: RunConfig = inputs["config"]
        if config.manifest or inputs.get("builtin_sample"):
            return None
        key = download_cache_key(config)
        store = task_ctx.result_store
        if store.exists(key):
            try:
                prepared = store.read(key).result
            except Exception:  # an unreadable record is as good as a missing one
                prepared = None
            if not split_is_on_disk(prepared):
                _logger().info("Cached split %s is no longer on disk; downloading it again.", key)
                _drop_record(store, key)
        return key


def retry_transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """Retry condition of the download step: only a TransientDownloadError is worth another try."""
    try:
        error = state.result(raise_on_failure=False)
    except Exception:
        return False
    return isinstance(error, TransientDownloadError)


def ensure_sample_data(root: Path | None = None) -> Path:
    """Write the built-in sample dataset to ``root`` (default ``sample_data_dir()``) unless it is there.

    Written to a temporary sibling and renamed into place, so concurrent runs never see half
    a dataset. Returns the dataset root.
    """
    from rpx_tasks.sample_data import write_sample_dataset

    root = Path(root or sample_data_dir())
    if (root / "manifests").is_dir():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    write_sample_dataset(staging)
    try:
        staging.rename(root)
    except OSError:  # another run finished first; its copy is identical
        shutil.rmtree(staging, ignore_errors=True)
    return root


@task(
    name="download-split",
    cache_policy=SplitCachePolicy(),
    result_storage=results_dir(),
    retries=DOWNLOAD_RETRIES,
    retry_delay_seconds=exponential_backoff(backoff_factor=download_backoff_seconds()),
    retry_jitter_factor=DOWNLOAD_RETRY_JITTER,
    retry_condition_fn=retry_transient_only,
)
def download_split_step(config: RunConfig, builtin_sample: bool = False) -> bench.PreparedSplit:
    """The split's manifest on disk: a Hub download, a local manifest, or the built-in sample data.

    Raises TransientDownloadError (retried), DownloadError, ManifestError, DatasetError.
    """
    if builtin_sample:
        root = ensure_sample_data()
        manifest = root / "manifests" / config.task / f"{config.split}.json"
        return bench.PreparedSplit(manifest_path=manifest, root=None, num_samples=None, source="local")
    prepared = bench.prepare_split(config)
    _logger().info("Split ready: %s (%s)", prepared.manifest_path, prepared.source)
    return prepared


# -- resolve model ---------------------------------------------------------------------------


@task(name="resolve-model", cache_policy=NO_CACHE, persist_result=False)
def resolve_model_step(config: RunConfig, device: str) -> Any:
    """The Model named by the config, on ``device``. Raises ConfigError / ModelError."""
    return bench.load_model(config, device)


# -- run benchmark ---------------------------------------------------------------------------

_progress_lock = threading.Lock()
_progress_callback: Progress | None = None


@contextmanager
def report_progress(callback: Progress | None) -> Iterator[None]:
    """Send the progress of benchmark runs in this process to ``callback`` while inside the block.

    The CLI uses it for its live progress bar; flow parameters stay plain JSON.
    """
    global _progress_callback
    with _progress_lock:
        previous, _progress_callback = _progress_callback, callback
    try:
        yield
    finally:
        with _progress_lock:
            _progress_callback = previous


def gpu_slot_name(device: str) -> str | None:
    """The concurrency limit guarding ``device``: ``gpu-<index>`` for CUDA (``cuda`` is 0), None for CPU."""
    index = gpu_index(device)
    return None if index is None else f"gpu-{index}"


def ensure_concurrency_limit(name: str, limit: int = 1) -> bool:
    """Create the global concurrency limit ``name`` with ``limit`` slots unless it exists; True if created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
            return False
        except ObjectNotFound:
            pass
        try:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
        except ObjectAlreadyExists:
            return False
    return True


# While waiting for a GPU slot, say so (and how to free a leaked one) this often.
SLOT_WAIT_WARNING_S = 120.0


@contextmanager
def gpu_slot(requested_device: str) -> Iterator[None]:
    """Hold the ``gpu-<i>`` slot of ``requested_device`` while inside the block (no-op for CPU).

    A missing limit is created with one slot first. Waits as long as it takes, with a warning
    every ``SLOT_WAIT_WARNING_S`` (no acquisition timeout: a timed-out request could still take
    a slot on the server and leak it). The slot is released when the block exits, by return, exception
    or cancellation.
    """
    name = gpu_slot_name(requested_device)
    if name is None:
        yield
        return
    from prefect.client.schemas.objects import ConcurrencyLeaseHolder
    from prefect.concurrency.sync import concurrency

    logger = _logger()
    context = TaskRunContext.get()
    holder = ConcurrencyLeaseHolder(type="task_run", id=context.task_run.id) if context else None
    if ensure_concurrency_limit(name):
        logger.warning("Created concurrency limit %s with 1 slot (deployments/setup_prefect.py manages them).", name)
    start = time.perf_counter()
    acquired = threading.Event()

    def warn_while_waiting() -> None:
        while not acquired.wait(SLOT_WAIT_WARNING_S):
            logger.warning(
                "Still waiting for GPU slot %s after %.0f s: another benchmark holds it. If none runs, a killed "
                "run leaked it: free it with `prefect gcl update %s --active-slots 0`.",
                name, time.perf_counter() - start, name,
            )

    threading.Thread(target=warn_while_waiting, name=f"wait-{name}", daemon=True).start()
    try:
        with concurrency(name, occupy=1, strict=True, holder=holder):
            acquired.set()
            logger.info("Holding GPU slot %s (waited %.1f s).", name, time.perf_counter() - start)
            yield
    finally:
        acquired.set()


def _logging_progress(every_fraction: float = 0.25) -> Progress:
    logger = _logger()
    state = {"next": every_fraction}

    def update(done: int, total: int | None, stage: str) -> None:
        if stage != "predict" or not total:
            return
        if done / total >= state["next"] or done == total:
            logger.info("%s %d/%d samples", stage, done, total)
            state["next"] = done / total + every_fraction

    return update


@task(name="run-benchmark", cache_policy=NO_CACHE, persist_result=False)
def run_benchmark_step(config: RunConfig, model: Any, prepared: bench.PreparedSplit, device: str) -> bench.StagedRun:
    """Run the benchmark loop; rows are staged in the output folder, not yet published.

    Holds the ``gpu-<i>`` slot of the requested device (``config.device``) for the whole run.
    Raises ManifestError / ModelError.
    """
    outside = _progress_callback
    logged = _logging_progress()

    def progress(done: int, total: int | None, stage: str) -> None:
        logged(done, total, stage)
        if outside is not None:
            outside(done, total, stage)

    with gpu_slot(config.device):
        return bench.run_split(config, model, prepared, device, progress)


# -- write report ----------------------------------------------------------------------------


def artifact_key(task_name: str, model: str, split: str, kind: str) -> str:
    """A stable artifact key from task, model and split: lowercase letters, digits and dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", f"rpx-{task_name}-{model}-{split}-{kind}".lower()).strip("-")
    return re.sub(r"-{2,}", "-", slug)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) or math.isinf(value) else round(float(value), 6)


def metrics_table(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of the table artifact: every aggregated metric, then the phase scores."""
    rows = [
        {"section": "metric", "name": name, "value": _number(stats.get("mean")),
         "higher_is_better": stats.get("higher_is_better")}
        for name, stats in payload["aggregated"].items()
    ]
    wps = payload["readiness"].get("wps") or {}
    for name in ("s_clutter", "s_interaction", "s_clean", "s_overall", "delta_int", "delta_rec"):
        if name in wps:
            rows.append({"section": "phase score", "name": name, "value": _number(wps[name]), "higher_is_better": None})
    return rows


def run_summary(config: RunConfig, payload: dict[str, Any], paths: bench.ReportPaths, device: str, keys: dict[str, str]) -> dict[str, Any]:
    """The small JSON dict a flow run returns."""
    primary = payload["primary_metric"]
    return {
        "task": config.task,
        "model": config.display_name,
        "split": config.split,
        "device": device,
        "num_samples": payload["num_samples"],
        "primary_metric": primary,
        "primary_value": _number(payload["aggregated"].get(primary, {}).get("mean")),
        "s_overall": _number((payload["readiness"].get("wps") or {}).get("s_overall")),
        "output_dir": str(paths.output_dir.resolve()),
        "result_json": str(paths.result_json.resolve()),
        "summary_md": str(paths.summary_md.resolve()),
        "artifacts": keys,
    }


@task(name="write-report", cache_policy=NO_CACHE, persist_result=False)
def write_report_step(config: RunConfig, prepared: bench.PreparedSplit, staged: bench.StagedRun, device: str) -> dict[str, Any]:
    """Publish the four report files, then the markdown, table and link artifacts.

    Returns the run summary (``run_summary``).
    """
    paths, payload = bench.write_report(config, prepared, staged, device)
    model = config.display_name
    keys = {kind: artifact_key(config.task, model, config.split, kind) for kind in ("summary", "metrics", "output")}
    title = f"{config.task} / {model} / {config.split}"
    create_markdown_artifact(paths.summary_md.read_text(encoding="utf-8"), key=keys["summary"], description=f"RPX summary: {title}")
    create_table_artifact(metrics_table(payload), key=keys["metrics"], description=f"RPX metrics and phase scores: {title}")
    output = paths.output_dir.resolve()
    create_link_artifact(output.as_uri(), link_text=str(output), key=keys["output"], description=f"RPX report folder: {title}")
    _logger().info("Report written to %s", output)
    return run_summary(config, payload, paths, device, keys)


__all__ = [
    "BUILTIN_SAMPLE",
    "STEP_VERSION",
    "SplitCachePolicy",
    "artifact_key",
    "download_cache_key",
    "download_split_step",
    "ensure_concurrency_limit",
    "ensure_sample_data",
    "gpu_slot",
    "gpu_slot_name",
    "metrics_table",
    "report_progress",
    "resolve_device_step",
    "resolve_model_step",
    "results_dir",
    "retry_transient_only",
    "run_benchmark_step",
    "run_summary",
    "split_is_on_disk",
    "validate_config_step",
    "write_report_step",
]
