"""Fan a matrix out through a deployment: each entry its own flow run of an ``rpx-bench`` deployment.

Each entry becomes a flow run of the deployment (``run_deployment``, linked to the calling flow run as a subflow
run), so it runs in its own process on whichever worker polls its work queue: one worker per GPU, each on its
work queue ``gpu-<i>`` (concurrency 1), runs one entry at a time on its GPU. No scheduling happens here: at most
``max_parallel`` entries are in flight, and each new entry goes to the GPU queue with the fewest of this
matrix's entries in flight (ties: the first in order), so a free GPU gets the next entry. Prefect's queues,
their concurrency limits and the GPU slots do the rest.

The GPU queues are ``work_queues`` when given, else the queues ``gpu-*`` of the deployment's work pool that a
worker polls (status READY); without any, every entry goes to the deployment's own queue.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, WorkQueueStatus
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound

from rpx_tasks.errors import ConfigError
from rpx_tasks.steps.gpu_slots import GPU_QUEUE_PREFIX


@dataclass
class FanOut:
    """The entries of one fan-out and where each stands."""

    deployment: str
    queues: list[str]
    max_parallel: int
    poll_seconds: float = 5.0
    in_flight: dict[UUID, tuple[int, str | None]] = field(default_factory=dict)
    finished: dict[int, FlowRun] = field(default_factory=dict)

    def next_queue(self) -> str | None:
        """The GPU queue with the fewest in-flight entries (the first on a tie); None without GPU queues."""
        if not self.queues:
            return None
        load = {queue: 0 for queue in self.queues}
        for _, queue in self.in_flight.values():
            if queue in load:
                load[queue] += 1
        return min(self.queues, key=lambda queue: load[queue])


def _natural(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def check_deployment(client: Any, deployment: str) -> Any:
    """Return the deployment named ``flow/deployment``. Raises ConfigError when the server does not have it."""
    try:
        return client.read_deployment_by_name(deployment)
    except (ObjectNotFound, ValueError) as error:
        raise ConfigError(
            f"Deployment {deployment!r} was not found on the Prefect server.",
            hint="deploy it (`prefect deploy --all --no-prompt` from the checkout; prefect.yaml has "
            "rpx-bench/matrix-entry), or leave `deployment` out to run the entries in this process",
            details={"deployment": deployment},
        ) from error


def gpu_queues(client: Any, work_pool: str | None) -> list[str]:
    """Return the ready (a worker polls them), unpaused queues ``gpu-*`` of ``work_pool``, in natural order."""
    if not work_pool:
        return []
    queues = client.read_work_queues(work_pool_name=work_pool)
    ready = [
        queue.name
        for queue in queues
        if queue.name.startswith(GPU_QUEUE_PREFIX) and not queue.is_paused and queue.status == WorkQueueStatus.READY
    ]
    return sorted(ready, key=_natural)


def plan_fan_out(
    deployment: str, work_queues: list[str] | None, max_parallel: int | None, entries: int, poll_seconds: float = 5.0
) -> FanOut:
    """Check ``deployment`` and choose the queues and the bound of a fan-out of ``entries`` entries, whose states
    are read every ``poll_seconds``.

    ``max_parallel`` defaults to the number of GPU queues (every GPU busy), or every entry at once without
    GPU queues (the workers' limits bound them). Raises ConfigError for a missing deployment, a
    ``max_parallel`` below 1 or a ``poll_seconds`` that is not a positive number.
    """
    if max_parallel is not None and (isinstance(max_parallel, bool) or max_parallel < 1):
        raise ConfigError(
            f"max_parallel must be 1 or more, not {max_parallel!r}.",
            hint="leave it out to keep every GPU queue busy, or give the number of entries to run at once",
        )
    if not (isinstance(poll_seconds, (int, float)) and 0 < poll_seconds < float("inf")):
        raise ConfigError(
            f"poll_seconds must be a positive number of seconds, not {poll_seconds!r}.",
            hint="leave it out (5 s) or give how often the matrix looks at its entries, e.g. 10",
        )
    with get_client(sync_client=True) as client:
        found = check_deployment(client, deployment)
        queues = list(work_queues) if work_queues else gpu_queues(client, found.work_pool_name)
    bound = max_parallel or len(queues) or max(entries, 1)
    return FanOut(deployment=deployment, queues=queues, max_parallel=bound, poll_seconds=float(poll_seconds))


def cancel_in_flight(plan: FanOut) -> None:
    """Cancel the entries still in flight (the matrix run was interrupted or timed out). Raises nothing."""
    from prefect.states import Cancelling

    with get_client(sync_client=True) as client:
        for flow_run_id in plan.in_flight:
            try:
                client.set_flow_run_state(flow_run_id, Cancelling(message="the matrix run stopped"), force=True)
            except Exception:  # noqa: BLE001 - best effort; the entry's own timeout still applies
                pass


def run_fanned_out(plan: FanOut, entries: list[dict[str, Any]]) -> list[FlowRun]:
    """Run every entry (rpx-bench parameters) as a flow run of ``plan.deployment``; returns the finished flow
    runs in entry order (their states final).

    Submits while fewer than ``plan.max_parallel`` are in flight, polls their states every ``plan.poll_seconds``.
    When interrupted (the matrix cancelled or timed out) the entries still in flight are cancelled too.
    Raises Prefect's errors when the API does not answer.
    """
    logger = get_run_logger()
    pending = list(enumerate(entries))
    try:
        while pending or plan.in_flight:
            while pending and len(plan.in_flight) < plan.max_parallel:
                index, params = pending.pop(0)
                queue = plan.next_queue()
                flow_run = run_deployment(
                    plan.deployment, parameters=params, timeout=0, work_queue_name=queue, as_subflow=True
                )
                plan.in_flight[flow_run.id] = (index, queue)
                logger.info(
                    "Entry %d (%s / %s / %s): flow run %s on queue %s",
                    index + 1,
                    params.get("task"),
                    params.get("model") or params.get("hf_checkpoint"),
                    params.get("split", "hard"),
                    flow_run.name,
                    queue or "(the deployment's)",
                )
            time.sleep(plan.poll_seconds)
            _collect_finished(plan)
    except BaseException:
        cancel_in_flight(plan)
        raise
    return [plan.finished[index] for index in range(len(entries))]


def _collect_finished(plan: FanOut) -> None:
    """Move the in-flight entries whose flow runs reached a final state to ``plan.finished``."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(plan.in_flight))))
    for flow_run in runs:
        if flow_run.state is not None and flow_run.state.is_final():
            index, _ = plan.in_flight.pop(flow_run.id)
            plan.finished[index] = flow_run
