"""Step ``compare-previous``: this run against the previous comparable run, and the regression event.

After ``write-report``, the step looks for the previous *complete* run with the same task, model, split,
data source (``data_source_label``: Hub revision, manifest hash or ``sample``) and device class among the
run folders **beside this run's folder**: with the default layout (``rpx_results/<model>/<split>/<run id>/``)
those are the other runs of the model and split; with an explicit ``output_dir`` they are the folders next
to it (a run that reuses one ``output_dir`` replaces its previous report, so it has nothing to compare
with: give each run its own folder, or keep the default layout). Among the comparable runs the one made
by the previous completed flow run of the same deployment wins (the tie-breaker under Prefect); otherwise
the newest (by the time it finished).

It compares the two (``rpx_tasks.comparison.compare_runs``: previous = A, this run = B) and publishes the
comparison as the markdown artifact ``rpx-...-comparison``. When the primary metric regressed it emits the
Prefect event ``rpx.benchmark.regressed`` (resource ``rpx.benchmark.<task>.<model>.<split>``; payload: metric,
delta, CI, both run ids and the flow-run URL) and tags the flow run ``regression``. The flow run still
completes: a comparison problem is logged as a warning and never fails the run.

The search for the previous run and the comparison themselves are Prefect-free
(``rpx_tasks.comparison.previous_run``; ``rpx bench`` without Prefect uses them too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from rpx_tasks.comparison.previous_run import (
    RunFolder,
    choose_previous,
    comparable_runs,
    holds_report_of,
    outcome,
)
from rpx_tasks.config import RunConfig
from rpx_tasks.run_record import RUN_FILE, read_json_object

from .artifacts import COMPARISON_KIND, RunLabels, run_labels
from .flow_run_tags import REGRESSION_TAG, add_flow_run_tags
from .logs import run_logger

__all__ = [
    "REGRESSION_EVENT",
    "RunFolder",
    "choose_previous",
    "comparable_runs",
    "compare_previous_step",
    "compare_with_previous",
    "holds_report_of",
]

REGRESSION_EVENT = "rpx.benchmark.regressed"
# How many earlier flow runs of the deployment are read to find the previous completed one.
_DEPLOYMENT_RUNS_READ = 50


def regression_resource_id(labels: RunLabels) -> str:
    """Return the resource id of the regression event: ``rpx.benchmark.<task>.<model>.<split>``."""
    return f"rpx.benchmark.{labels.task}.{labels.model}.{labels.split}"


def previous_deployment_flow_run_ids(deployment_id: Any, current_flow_run_id: Any) -> list[str]:
    """Return the ids of the completed flow runs of deployment ``deployment_id`` other than the current one,
    newest first; empty without a deployment. Raises Prefect's errors when the API does not answer."""
    if deployment_id is None:
        return []
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        flow_runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.COMPLETED]))
            ),
            sort=FlowRunSort.START_TIME_DESC,
            limit=_DEPLOYMENT_RUNS_READ,
        )
    return [str(run.id) for run in flow_runs if str(run.id) != str(current_flow_run_id)]


def regression_payload(comparison: dict[str, Any], labels: RunLabels, flow_run_url: str | None) -> dict[str, Any]:
    """Return the payload of the regression event: metric, delta, CI, verdict, both run ids (``previous_run_id``,
    ``run_id``), the flow-run URL and the run's labels."""
    primary = comparison.get("primary") or {}
    runs = comparison.get("runs") or {}
    return {
        "metric": primary.get("metric"),
        "delta": primary.get("delta"),
        "ci": primary.get("ci"),
        "verdict": primary.get("verdict"),
        "previous_run_id": (runs.get("a") or {}).get("id"),
        "run_id": (runs.get("b") or {}).get("id"),
        "flow_run_url": flow_run_url,
        "task": labels.task,
        "model": labels.model,
        "split": labels.split,
        "data": labels.data,
        "device": labels.device,
    }


def emit_regression(comparison: dict[str, Any], labels: RunLabels) -> dict[str, Any]:
    """Emit ``rpx.benchmark.regressed`` for this flow run (its flow run as a related resource) and tag the flow
    run ``regression``; returns the event's payload. Raises Prefect's errors when the event cannot be built."""
    from prefect.events import emit_event
    from prefect.runtime import flow_run

    payload = regression_payload(comparison, labels, flow_run.ui_url)
    related = []
    if flow_run.id is not None:
        related.append(
            {
                "prefect.resource.id": f"prefect.flow-run.{flow_run.id}",
                "prefect.resource.role": "flow-run",
                "prefect.resource.name": str(flow_run.name),
            }
        )
    emit_event(
        event=REGRESSION_EVENT,
        resource={
            "prefect.resource.id": regression_resource_id(labels),
            "prefect.resource.name": f"{labels.task} / {labels.model} / {labels.split}",
        },
        related=related,
        payload=payload,
    )
    add_flow_run_tags([REGRESSION_TAG])
    return payload


def compare_with_previous(labels: RunLabels, run_folder: Path, run_id: str | None) -> dict[str, Any]:
    """Find the previous comparable run, compare, publish the comparison artifact and, on a regression of the
    primary metric, emit the event and tag the flow run. Must run inside a flow or task run.

    Returns the outcome: ``status`` (``no previous run`` or ``compared``), the previous run's id and folder,
    the primary metric's ``verdict``, ``delta`` and ``ci``, the artifact key and whether the event was emitted.
    Raises ConfigError (the runs cannot be compared) and Prefect's errors; ``compare_previous_step`` turns
    them into a warning.
    """
    from prefect.artifacts import create_markdown_artifact
    from prefect.runtime import deployment, flow_run

    from rpx_tasks.comparison import compare_runs, comparison_markdown

    logger = run_logger()
    candidates = comparable_runs(run_folder, labels, run_id)
    previous = choose_previous(candidates, previous_deployment_flow_run_ids(deployment.id, flow_run.id))
    if previous is None:
        logger.info(
            "No previous complete run of %s / %s / %s (data %s, %s) beside %s: nothing to compare.",
            labels.task,
            labels.model,
            labels.split,
            labels.data,
            labels.device,
            run_folder,
        )
        return {"status": "no previous run"}
    comparison = compare_runs(previous.folder, run_folder)
    primary = comparison.get("primary") or {}
    key = labels.key(COMPARISON_KIND)
    create_markdown_artifact(
        comparison_markdown(comparison),
        key=key,
        description=f"RPX comparison with the previous run {previous.id}: "
        f"{labels.task} / {labels.model} / {labels.split}",
    )
    logger.info(
        "Compared with the previous run %s: %s %s (delta %s, 95%% CI %s).",
        previous.id,
        primary.get("metric"),
        primary.get("verdict"),
        primary.get("delta"),
        primary.get("ci"),
    )
    regressed = primary.get("verdict") == "regressed"
    if regressed:
        emit_regression(comparison, labels)
        logger.warning(
            "Regression of %s against run %s: event %s emitted.", primary.get("metric"), previous.id, REGRESSION_EVENT
        )
    return {**outcome(previous, comparison), "artifact": key, "regression_event": regressed}


@task(name="compare-previous", cache_policy=NO_CACHE, persist_result=False)
def compare_previous_step(config: RunConfig, device: str, summary: dict[str, Any]) -> dict[str, Any]:
    """Compare this run (``summary``: write-report's run summary) with the previous comparable run (module doc).

    Returns the outcome of ``compare_with_previous``, or ``{"status": "error", "error": ...}`` after logging a
    warning: this step never fails the flow run. Raises nothing.
    """
    try:
        run_folder = Path(summary["output_dir"])
        record = read_json_object(run_folder / RUN_FILE) or {}
        labels = run_labels(config, device, record.get("data"))
        return compare_with_previous(labels, run_folder, summary.get("run_id") or record.get("id"))
    except Exception as error:  # noqa: BLE001 - a comparison problem must never fail the run
        run_logger().warning(
            "compare-previous: no comparison (%s: %s); the run is not affected.", type(error).__name__, error
        )
        return {"status": "error", "error": f"{type(error).__name__}: {error}"}
