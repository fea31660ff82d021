"""The pipeline steps as Prefect tasks (Prefect only: the benchmark logic is :mod:`rpx_tasks.bench`).

- :mod:`.pipeline`: the seven steps, validate config -> resolve device -> download split (cached) ->
  open split (every sample checked, never cached) -> resolve model -> run benchmark -> write report;
- :mod:`.cache_policies`: the download step's cache key, cache policy and retry condition;
- :mod:`.gpu_slots`: the ``gpu-<host>-<i>`` concurrency limits, the slot a run holds and its lease keeper, the
  per-GPU work queue names;
- :mod:`.run_limits`: the run's timeouts and the Hub retry delays (flow parameters);
- :mod:`.artifacts`: run labels (tags), artifact keys, the report's tables and the run summary;
- :mod:`.flow_run_tags`: tags added to the running flow run;
- :mod:`.progress_artifact`: the progress artifact of the benchmark loop;
- :mod:`.compare_previous`: the ``compare-previous`` step (comparison with the previous run, regression event);
- :mod:`.merge_shards`: the ``merge-shards`` step (the shard runs of ``shards=K`` merged into one report);
- :mod:`.logs`: the run logger and progress lines for the run log.
"""

from .artifacts import RunLabels, artifact_key, metrics_table, phase_table, run_labels, run_summary
from .cache_policies import (
    STEP_VERSION,
    SplitCachePolicy,
    download_cache_key,
    download_needs_refresh,
    results_dir,
    retry_transient_only,
    split_files_present,
)
from .compare_previous import REGRESSION_EVENT, compare_previous_step
from .flow_run_tags import REGRESSION_TAG, add_flow_run_tags
from .gpu_slots import ensure_concurrency_limit, gpu_slot, gpu_slot_name
from .merge_shards import merge_shards_step
from .pipeline import (
    download_split_step,
    open_split_step,
    resolve_device_step,
    resolve_model_step,
    run_benchmark_step,
    run_download_split_step,
    validate_config_step,
    write_report_step,
)

__all__ = [
    "REGRESSION_EVENT",
    "REGRESSION_TAG",
    "compare_previous_step",
    "RunLabels",
    "STEP_VERSION",
    "add_flow_run_tags",
    "phase_table",
    "run_labels",
    "SplitCachePolicy",
    "artifact_key",
    "download_cache_key",
    "download_needs_refresh",
    "run_download_split_step",
    "download_split_step",
    "open_split_step",
    "ensure_concurrency_limit",
    "gpu_slot",
    "gpu_slot_name",
    "merge_shards_step",
    "metrics_table",
    "resolve_device_step",
    "resolve_model_step",
    "results_dir",
    "retry_transient_only",
    "run_benchmark_step",
    "run_summary",
    "split_files_present",
    "validate_config_step",
    "write_report_step",
]
