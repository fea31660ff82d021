"""Step ``merge-shards``: the shard runs of flow ``rpx-bench`` with ``shards=K`` merged into one report.

Wraps ``rpx_tasks.run_merge.merge_runs`` (the report equals the unsharded run's, timings excepted), then
publishes the artifacts of the unsharded run (its keys: the merged run stands for it) and returns its run
summary, as write-report does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from rpx_tasks import bench
from rpx_tasks.config import RunConfig
from rpx_tasks.run_merge import merge_runs

from .artifacts import publish_artifacts, run_labels, run_summary
from .logs import run_logger
from .pipeline import flow_run_record


@task(name="merge-shards", cache_policy=NO_CACHE, persist_result=False)
def merge_shards_step(config: RunConfig, shard_folders: list[str], output_dir: str | None) -> dict[str, Any]:
    """Merge the shard runs in ``shard_folders`` into ``output_dir`` (None: a new run folder of the model and
    split, made ``latest``); returns the merged run's summary (``run_summary``, device: the first shard's).

    ``config`` is the unsharded run's. Raises MergeError when the runs cannot be merged, OSError when a file
    cannot be written.
    """
    merged = merge_runs([Path(folder) for folder in shard_folders], output_dir, orchestration=flow_run_record())
    record = merged.payload["run"]
    device = str(record.get("device"))
    paths = bench.ReportPaths(
        output_dir=merged.folder,
        result_json=merged.result_json,
        summary_md=merged.summary_md,
        per_sample=merged.per_sample,
        cells=merged.cells,
        phase_scores=merged.phase_scores,
    )
    keys = publish_artifacts(run_labels(config, device, record.get("data")), paths, merged.payload)
    run_logger().info("Merged %d shard runs into %s", len(shard_folders), merged.folder.resolve())
    return run_summary(config, merged.payload, paths, device, keys)
