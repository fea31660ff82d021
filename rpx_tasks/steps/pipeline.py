"""The pipeline steps as Prefect tasks; each wraps one function of :mod:`rpx_tasks.bench`.

- ``validate_config_step``: flow parameters -> RunConfig, the model checked too (ConfigError, never retried).
- ``resolve_device_step``: the device the run will use (CUDA falls back to CPU).
- ``download_split_step``: the split's manifest on disk; Hub downloads cached across flow runs
  and retried on transient errors (:mod:`.cache_policies`). Submit it through ``run_download_split_step``,
  which bypasses the cached record when the split's files are no longer all on disk.
- ``resolve_model_step``: the Model object; never cached or persisted (not picklable); retried like the
  download on a transient Hub error while it fetches a checkpoint.
- ``run_benchmark_step``: the benchmark loop, holding the ``gpu-<host>-<i>`` slot of the GPU it runs on
  for the whole run (:mod:`.gpu_slots`); retried once on an error that is not an RPX error nor a timeout, and
  the retry resumes the run where its last commit left off.
- ``write_report_step``: the four report files, then the artifacts (:mod:`.artifacts`).

``compare-previous`` (after write-report) is in :mod:`.compare_previous`; the run's timeouts and the Hub retry
delays of scheduled runs (flow parameters, applied with ``with_options``) in :mod:`.run_limits`.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from rpx_tasks import bench
from rpx_tasks.config import RunConfig
from rpx_tasks.contracts.model import Model
from rpx_tasks.dataset import SplitDataset
from rpx_tasks.errors import ConfigError, RPXError
from rpx_tasks.hub.failures import is_transient
from rpx_tasks.runner import Progress

from .artifacts import PROGRESS_KIND, RunLabels, publish_artifacts, run_labels, run_summary
from .cache_policies import (
    DOWNLOAD_RETRIES,
    DOWNLOAD_RETRY_JITTER,
    SplitCachePolicy,
    download_backoff_seconds,
    download_needs_refresh,
    failure_of,
    results_dir,
    retry_transient_only,
)
from .gpu_slots import gpu_slot
from .logs import logging_progress, run_logger
from .progress_artifact import progress_artifact
from .run_limits import RunLimits

_TEMPLATE = re.compile(r"\{\{.*?\}\}")


@task(name="validate-config", cache_policy=NO_CACHE, persist_result=False)
def validate_config_step(params: dict[str, Any]) -> RunConfig:
    """Return the RunConfig of plain flow parameters (RunConfig field names: ``model_name``, not ``model``).

    Raises ConfigError for any invalid value (the model included: ``bench.validate_config``;
    this step runs before download-split and before any GPU slot is taken) and for a parameter
    that still holds an unresolved ``{{ ... }}`` deployment template.
    """
    for name, value in params.items():
        if isinstance(value, str) and _TEMPLATE.search(value):
            raise ConfigError(
                f"Parameter {name!r} holds an unresolved template variable: {value!r}.",
                hint="set that environment variable where you run `prefect deploy` and deploy again, "
                "or pass the parameter explicitly with --param",
                details={"parameter": name},
            )
    return bench.validate_config(params)


@task(name="resolve-device", cache_policy=NO_CACHE, persist_result=False)
def resolve_device_step(requested: str, require_cuda: bool = False) -> str:
    """Return the device the run uses: ``requested``, or ``cpu`` when CUDA is unavailable. Raises ConfigError."""
    return bench.resolve_device(requested, require_cuda=require_cuda)


@task(
    name="download-split",
    cache_policy=SplitCachePolicy(),
    result_storage=results_dir(),
    retries=DOWNLOAD_RETRIES,
    retry_delay_seconds=exponential_backoff(backoff_factor=download_backoff_seconds()),
    retry_jitter_factor=DOWNLOAD_RETRY_JITTER,
    retry_condition_fn=retry_transient_only,
)
def download_split_step(config: RunConfig) -> bench.PreparedSplit:
    """Return the split's manifest on disk: a Hub download, a local manifest, or the built-in sample data.

    Raises TransientDownloadError (retried), DownloadError, ManifestError, DatasetError, ConfigError.
    """
    prepared = bench.prepare_split(config)
    run_logger().info("Split ready: %s (%s)", prepared.manifest_path, prepared.source)
    return prepared


def run_download_split_step(config: RunConfig, limits: RunLimits | None = None) -> bench.PreparedSplit:
    """Run ``download_split_step`` (inside a flow run), with ``refresh_cache`` when the Hub split's files are
    not all on disk (``download_needs_refresh``, a stat walk), so a stale cached record is never used:
    the step fetches again and its new record replaces the old one. ``limits.hub_retry_delays``, when set,
    replace the step's retry delays (a scheduled run waits out a Hub incident).

    Returns the PreparedSplit. Raises what ``download_split_step`` raises.
    """
    options = (limits or RunLimits()).hub_retry_options()
    if download_needs_refresh(config):
        options["refresh_cache"] = True
    return (download_split_step.with_options(**options) if options else download_split_step)(config)


@task(name="open-split", cache_policy=NO_CACHE, persist_result=False)
def open_split_step(config: RunConfig, prepared: bench.PreparedSplit) -> SplitDataset:
    """Open the split and check every field of every sample (not cached: it runs on every run, also when
    the download step's result comes from the cache), before the model is loaded.

    Returns the SplitDataset. Raises ManifestError naming the first bad sample, field and value.
    """
    dataset = bench.open_prepared(config, prepared)
    run_logger().info("Split opened: %d samples checked", len(dataset))
    return dataset


def retry_transient_hub_error(task: Any, task_run: Any, state: Any) -> bool:
    """Return True (retry) when the failed step's error was caused by network or Hub trouble (connection
    error, timeout, HTTP 408/429/5xx: ``hub.failures.is_transient`` on the error and its causes); a missing or
    gated checkpoint, a bad model or a bad config fail at once."""
    error = failure_of(state)
    return error is not None and is_transient(error)


@task(
    name="resolve-model",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=DOWNLOAD_RETRIES,
    retry_delay_seconds=exponential_backoff(backoff_factor=download_backoff_seconds()),
    retry_jitter_factor=DOWNLOAD_RETRY_JITTER,
    retry_condition_fn=retry_transient_hub_error,
)
def resolve_model_step(config: RunConfig, device: str) -> Model:
    """Return the Model named by the config, on ``device``. Raises ConfigError / ModelError (retried when the
    Hub could not be reached while fetching a checkpoint)."""
    return bench.load_model(config, device)


# A run-benchmark attempt that failed on something other than an RPX error (a crash of the model, a
# transient device or I/O error) is retried this many times, after this many seconds; the retry
# resumes the run from its last commit (``bench.run_split``), so finished samples are not predicted again.
BENCHMARK_RETRIES = 1


def benchmark_retry_delay_seconds() -> float:
    """Return the delay before run-benchmark is retried: ``RPX_BENCHMARK_RETRY_DELAY_S``, default 10 s.
    Read when this module is imported. Raises ValueError when the variable is not a number."""
    return float(os.environ.get("RPX_BENCHMARK_RETRY_DELAY_S") or 10.0)


def retry_unless_rpx_error(task: Any, task_run: Any, state: Any) -> bool:
    """Return True (retry) when the failed benchmark raised an error that is not an RPX error: an RPX error
    (a bad sample or prediction, a full disk, a locked folder) would fail the same way again, and a run that
    exceeded its ``timeout_seconds`` (a hang) would hang again."""
    error = failure_of(state)
    return error is not None and not isinstance(error, (RPXError, TimeoutError))


@task(
    name="run-benchmark",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=BENCHMARK_RETRIES,
    retry_delay_seconds=benchmark_retry_delay_seconds(),
    retry_condition_fn=retry_unless_rpx_error,
)
def run_benchmark_step(
    config: RunConfig,
    model: Model,
    dataset: SplitDataset,
    device: str,
    progress: Progress | None = None,
    labels: RunLabels | None = None,
) -> bench.StagedRun:
    """Run the benchmark loop; returns the StagedRun (rows in the run's journal, not yet published).

    Holds the slot of the GPU it runs on (``device``: ``gpu-<host>-<physical index>``) for the whole run; a
    run on the CPU (asked for, or the CUDA fallback) holds none. The run
    record (``run.json``, result.json's ``run``) names the flow run and deployment (``flow_run_record``).
    An incomplete run of the same configuration (a killed flow run, or this step's previous try) is
    resumed, and the run log says so. Progress goes to the run log, to the progress artifact
    ``rpx-...-progress`` (samples done / total, :mod:`.progress_artifact`) and, when given, to
    ``progress(done, total, stage)``. ``labels``: the run's RunLabels when the caller has them (else
    computed here: ``run_labels`` hashes a local manifest). Raises ManifestError / ModelError /
    MetricError / OutputError / RunLockedError.
    """
    labels = labels or run_labels(config, device)
    to_ui = progress_artifact(
        labels.key(PROGRESS_KIND),
        f"RPX benchmark progress (% of samples): {labels.task} / {labels.model} / {labels.split}",
        also=progress,
    )
    with gpu_slot(device):
        return bench.run_split(
            config,
            model,
            dataset,
            device,
            logging_progress(also=to_ui),
            orchestration=flow_run_record(),
            announce=announce,
        )


def announce(message: str) -> None:
    """Say ``message`` in the run log (the Prefect UI) and on the ``rpx_tasks.run`` logger (the terminal of
    ``rpx bench``). Raises nothing."""
    run_logger().info(message)
    logging.getLogger("rpx_tasks.run").info(message)


def flow_run_record() -> dict[str, Any] | None:
    """Return the Prefect flow run this step runs in, for the run record: flow-run id and name and the
    deployment's name (None without one); None outside a flow run. Raises nothing.

    The flow run in this thread's run context answers without an API call (``prefect.runtime`` asks the API
    for the flow run to find a deployment: ~50 ms of every CLI run); the deployment's name is asked for only
    when there is one."""
    from prefect.context import FlowRunContext
    from prefect.runtime import deployment, flow_run

    context = FlowRunContext.get()
    run = context.flow_run if context is not None else None
    if run is None:
        if flow_run.id is None:
            return None
        return {"flow_run_id": str(flow_run.id), "flow_run_name": flow_run.name, "deployment": deployment.name}
    name = deployment.name if run.deployment_id is not None else None
    return {"flow_run_id": str(run.id), "flow_run_name": run.name, "deployment": name}


@task(name="write-report", cache_policy=NO_CACHE, persist_result=False)
def write_report_step(
    config: RunConfig, prepared: bench.PreparedSplit, staged: bench.StagedRun, device: str
) -> dict[str, Any]:
    """Publish the four report files, then the markdown summary (with the run folder's path) and the
    metrics and phase-scores table artifacts, keyed by task, model, split, data source and device class.

    Returns the run summary (``run_summary``). Raises OSError when a file cannot be written.
    """
    paths, payload = bench.write_report(config, prepared, staged, device)
    keys = publish_artifacts(run_labels(config, device, (payload.get("run") or {}).get("data")), paths, payload)
    run_logger().info("Report written to %s", paths.output_dir.resolve())
    return run_summary(config, payload, paths, device, keys)
