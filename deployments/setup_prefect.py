"""Create what the rpx-bench deployments need on a Prefect server; safe to run again and again.

- the process work pool named in ``prefect.yaml`` (``rpx-process``);
- per GPU of this host (``--gpus N``, default the visible GPUs): a work queue ``gpu-<i>`` on that pool with
  concurrency 1, polled by that GPU's worker (``CUDA_VISIBLE_DEVICES=i prefect worker start --pool rpx-process
  --work-queue gpu-<i>``), and a global concurrency limit ``gpu-<host>-<i>`` with one slot, so at most one
  benchmark runs per GPU across all flow runs and workers sharing this server. With several hosts on one
  server, ``--host-queues`` names the queues ``gpu-<host>-<i>`` instead (run the set-up once per host);
- a warning when the server keeps concurrency leases in memory (a restart would forget the leases of
  killed runs; docs/orchestration.md, GPU slots);
- with a notification target, two automations (:mod:`alerting`): ``rpx-benchmark-regressed`` notifies
  on the event ``rpx.benchmark.regressed`` (a nightly run's primary metric got worse), and
  ``rpx-bench-failed`` notifies when an ``rpx-bench`` flow run fails or crashes. The target is a webhook
  (``--webhook-url URL`` or ``RPX_ALERT_WEBHOOK_URL``: the custom-webhook block ``rpx-alerts`` is created or
  updated) or any notification block you saved yourself (``--notification-block slack-webhook/NAME``,
  ``ms-teams-webhook/NAME``, ``sendgrid-email/NAME``, ...).

Existing objects are left as they are (a limit you raised stays raised); ``--reset-limits``
sets every ``gpu-<host>-<i>`` limit and ``gpu-<i>`` queue of this host back to one slot. Automations and the
webhook block are updated in place (matched by name), never duplicated. The server is the one Prefect is configured
for (``PREFECT_API_URL``)::

    PREFECT_API_URL=http://127.0.0.1:4200/api python deployments/setup_prefect.py [--gpus N] [--host-queues]
        [--host NAME] [--webhook-url URL]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import yaml

from rpx_tasks.errors import RPXError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from alerting import ALERT_BLOCK_NAME, WEBHOOK_URL_VARIABLE, ensure_alerting  # noqa: E402

PREFECT_YAML = Path(__file__).resolve().parent.parent / "prefect.yaml"

# The server setting that keeps concurrency leases on disk, so they survive a restart.
LEASE_STORAGE_VARIABLE = "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE"
FILESYSTEM_LEASE_STORAGE = "prefect.server.concurrency.lease_storage.filesystem"


def work_pool_names(prefect_yaml: Path = PREFECT_YAML) -> list[str]:
    """Return the work pool names the deployments of ``prefect_yaml`` use, in order of first use."""
    config = yaml.safe_load(prefect_yaml.read_text(encoding="utf-8"))
    names: list[str] = []
    for deployment in config.get("deployments") or []:
        name = (deployment.get("work_pool") or {}).get("name")
        if name and name not in names:
            names.append(name)
    return names


def visible_gpu_count() -> int:
    """Return the GPUs this machine shows: ``nvidia-smi -L`` lines (respecting CUDA_VISIBLE_DEVICES), 0 without a
    driver. Raises nothing."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([part for part in visible.split(",") if part.strip() and part.strip() != "-1"])
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    if listing.returncode != 0:
        return 0
    return sum(1 for line in listing.stdout.splitlines() if line.startswith("GPU "))


def ensure_work_pool(client, name: str) -> str:
    """Create the process work pool ``name`` unless it exists; returns what happened.

    Raises Prefect's errors when the API does not answer.
    """
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    try:
        pool = client.read_work_pool(name)
        return f"work pool {name}: exists (type {pool.type})"
    except ObjectNotFound:
        pass
    try:
        client.create_work_pool(WorkPoolCreate(name=name, type="process"))
    except ObjectAlreadyExists:
        return f"work pool {name}: exists"
    return f"work pool {name}: created (type process)"


def ensure_gpu_queue(client, pool: str, name: str, *, reset: bool) -> str:
    """Create the work queue ``name`` of one GPU's worker on ``pool`` with concurrency 1 unless it exists (or
    set it back to 1 with ``reset``); returns what happened. Raises Prefect's errors when the API does not
    answer."""
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    try:
        queue = client.read_work_queue_by_name(name, work_pool_name=pool)
    except ObjectNotFound:
        queue = None
    if queue is None:
        try:
            client.create_work_queue(
                name=name,
                work_pool_name=pool,
                concurrency_limit=1,
                description="One GPU's worker: CUDA_VISIBLE_DEVICES=<i> prefect worker start --work-queue " + name,
            )
        except ObjectAlreadyExists:
            return f"work queue {pool}/{name}: exists"
        return f"work queue {pool}/{name}: created (concurrency 1)"
    if reset and queue.concurrency_limit != 1:
        client.update_work_queue(queue.id, concurrency_limit=1)
        return f"work queue {pool}/{name}: reset to concurrency 1"
    return f"work queue {pool}/{name}: exists (concurrency {queue.concurrency_limit})"


def lease_storage_warning(client) -> str | None:
    """Return a warning when the server keeps concurrency leases in memory (its default), else None: a
    restart would forget the lease of a killed run and its GPU slot would stay taken. None too when the
    server does not say (an older server, or one that hides its settings). Raises nothing."""
    try:
        settings = client._client.get("/admin/settings").json()
        storage = settings["server"]["concurrency"]["lease_storage"]
    except Exception:  # noqa: BLE001 - a server that does not tell is not an error of the set-up
        return None
    if "memory" not in str(storage):
        return None
    return (
        f"warning: the server keeps concurrency leases in memory ({storage}): a GPU slot of a run killed "
        "outright stays taken across a server restart. Start the server with "
        f"{LEASE_STORAGE_VARIABLE}={FILESYSTEM_LEASE_STORAGE}"
    )


def ensure_gpu_limit(index: int, *, reset: bool, host: str | None = None) -> str:
    """Create the slot limit of GPU ``index`` of ``host`` (default this host) with one slot unless it exists
    (or set it back to one with ``reset``); returns what happened. Raises Prefect's errors when the API does
    not answer."""
    from prefect.client.orchestration import get_client

    from rpx_tasks.steps.gpu_slots import ensure_concurrency_limit, gpu_slot_name

    name = gpu_slot_name(f"cuda:{index}", host=host)
    outcome = ensure_concurrency_limit(name, 1, reset=reset)
    if outcome == "created":
        return f"concurrency limit {name}: created (1 slot)"
    if outcome == "reset":
        return f"concurrency limit {name}: reset to 1 slot"
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(name)
    return f"concurrency limit {name}: exists ({limit.limit} slot(s), {'active' if limit.active else 'inactive'})"


def main(argv: list[str] | None = None) -> int:
    """Create the work pool(s) and GPU limits; returns the exit code (2 without PREFECT_API_URL)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--gpus",
        type=int,
        default=None,
        help="GPUs of this host: one gpu-<i> work queue and one gpu-<host>-<i> limit each (default: the visible GPUs)",
    )
    parser.add_argument(
        "--host",
        default=None,
        help="the host name in the limit (and queue) names (default: RPX_GPU_SLOT_HOST, else this host's name)",
    )
    parser.add_argument(
        "--host-queues",
        action="store_true",
        help="name the work queues gpu-<host>-<i> (several hosts on one server: each GPU of each host its queue)",
    )
    parser.add_argument("--reset-limits", action="store_true", help="set existing GPU limits and queues back to 1 slot")
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--webhook-url",
        default=None,
        help=f"alerts go to this URL (JSON POST) through the webhook block {ALERT_BLOCK_NAME!r} "
        f"(default: ${WEBHOOK_URL_VARIABLE})",
    )
    target.add_argument(
        "--notification-block",
        default=None,
        metavar="TYPE/NAME",
        help="alerts go through this saved notification block, e.g. slack-webhook/team-alerts",
    )
    args = parser.parse_args(argv)

    os.environ.setdefault("DO_NOT_TRACK", "1")
    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    from rpx_tasks.steps.gpu_slots import gpu_queue_name, slot_host

    gpus = visible_gpu_count() if args.gpus is None else args.gpus
    if gpus < 0:
        print(f"--gpus must be 0 or more, not {gpus}", file=sys.stderr)
        return 2
    host = args.host or slot_host()
    api = get_current_settings().api.url
    if not api:
        print("PREFECT_API_URL is not set: these objects would go to a temporary server and vanish.", file=sys.stderr)
        print("  start one (`prefect server start`) and set PREFECT_API_URL=http://127.0.0.1:4200/api", file=sys.stderr)
        return 2
    print(f"Prefect API: {api}")
    with get_client(sync_client=True) as client:
        pools = work_pool_names()
        for name in pools:
            print(ensure_work_pool(client, name))
        for index in range(gpus):
            queue = gpu_queue_name(index, host if args.host_queues else None)
            print(ensure_gpu_queue(client, pools[0], queue, reset=args.reset_limits))
            print(ensure_gpu_limit(index, reset=args.reset_limits, host=host))
        warning = lease_storage_warning(client)
    if warning:
        print(warning)
    if gpus == 0:
        print("no GPU visible: no GPU queue or limit created (CPU runs take no GPU slot)")
    webhook_url = args.webhook_url or os.environ.get(WEBHOOK_URL_VARIABLE) or None
    if args.notification_block is None and webhook_url is None:
        print(
            f"no alert target (--webhook-url, ${WEBHOOK_URL_VARIABLE} or --notification-block): automations not created"
        )
        return 0
    try:
        for line in ensure_alerting(webhook_url=webhook_url, notification_block=args.notification_block):
            print(line)
    except RPXError as error:
        print(f"{error.message}\n  hint: {error.hint}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
