"""GPU slots: one Prefect global concurrency limit ``gpu-<host>-<i>`` per GPU of each host, held while a
benchmark runs.

So at most one benchmark runs per GPU across every flow run and worker sharing the Prefect server, and two
hosts that share the server never wait for each other. The slot is the GPU the run actually uses: the host
(``slot_host``) and the physical index of its CUDA device (``physical_gpu``: ``cuda:1`` under
``CUDA_VISIBLE_DEVICES=4,5`` is GPU 5); a run that fell back to the CPU takes none.
``deployments/setup_prefect.py`` creates the limits up front with ``ensure_concurrency_limit``; a run creates
a missing one itself.
"""

from __future__ import annotations

import contextvars
import os
import re
import socket
import threading
import time
from contextlib import contextmanager
from typing import Iterator
from uuid import UUID

from prefect.context import TaskRunContext

from rpx_tasks.device import gpu_index

from .logs import run_logger

# While waiting for a GPU slot, say so (and how to free a leaked one) this often.
SLOT_WAIT_WARNING_S = 120.0

# The lease of a held slot: renewed while the run lives, so a run killed outright (SIGKILL, the OOM
# killer) frees its slot within this many seconds plus the server's repossessor loop (15 s). 60 s is
# the shortest lease the Prefect API accepts. ``RPX_GPU_SLOT_LEASE_S`` overrides it (60 to 86400).
GPU_SLOT_LEASE_S = 60.0


def gpu_slot_renew_seconds(lease_seconds: float) -> float:
    """Return how often the slot's keeper renews its lease: ``RPX_GPU_SLOT_RENEW_S``, default a quarter of the
    lease (15 s for 60 s). Raises ValueError when the variable is not a number."""
    return float(os.environ.get("RPX_GPU_SLOT_RENEW_S") or lease_seconds / 4)


def gpu_slot_lease_seconds() -> float:
    """Return the lease of a held GPU slot: ``RPX_GPU_SLOT_LEASE_S``, default ``GPU_SLOT_LEASE_S``.
    Raises ValueError when the variable is not a number."""
    return float(os.environ.get("RPX_GPU_SLOT_LEASE_S") or GPU_SLOT_LEASE_S)


def _slot_word(text: str) -> str:
    """``text`` lower-cased with every run of characters outside ``[a-z0-9]`` turned into one ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def slot_host() -> str:
    """Return the host part of GPU slot names: ``RPX_GPU_SLOT_HOST`` if set (e.g. a Kubernetes node name), else
    this machine's short host name (up to the first dot), lower-cased, other characters than ``a-z0-9`` as
    ``-``. Raises nothing."""
    configured = os.environ.get("RPX_GPU_SLOT_HOST", "").strip()
    return _slot_word(configured or socket.gethostname().split(".", 1)[0]) or "localhost"


def visible_gpus() -> list[str]:
    """Return the GPUs this process sees, in CUDA's order: the entries of ``CUDA_VISIBLE_DEVICES``, else of
    ``NVIDIA_VISIBLE_DEVICES`` (what a container runtime or the Kubernetes device plugin sets: the container sees
    those GPUs as ``cuda:0``, ...) unless it says ``all``, ``none`` or ``void``; empty when neither says which."""
    cuda = os.environ.get("CUDA_VISIBLE_DEVICES")
    listed = cuda if cuda is not None else os.environ.get("NVIDIA_VISIBLE_DEVICES", "")
    if cuda is None and listed.strip().lower() in ("all", "none", "void"):
        return []
    return [entry.strip() for entry in listed.split(",") if entry.strip()]


def physical_gpu(device: str) -> str | None:
    """Return the physical GPU of a CUDA device string, as it appears in slot names; None for CPU.

    CUDA numbers the visible GPUs (``visible_gpus``) from 0, so ``cuda:N`` is the N-th entry: a physical index
    (``"5"``), or a GPU or MIG UUID (lower-cased, e.g. ``gpu-8f2c...``). When nothing says which GPUs are
    visible (or for an index beyond them) the index is the physical one. Raises nothing.
    """
    index = gpu_index(device)
    if index is None:
        return None
    visible = visible_gpus()
    if index >= len(visible):
        return str(index)
    return visible[index] if visible[index].isdigit() else _slot_word(visible[index])


def gpu_slot_name(device: str, host: str | None = None) -> str | None:
    """Return the concurrency limit guarding ``device``: ``gpu-<host>-<physical GPU>`` for CUDA (``cuda`` is
    ``cuda:0``; ``host`` defaults to ``slot_host()``), None for CPU. Raises nothing."""
    physical = physical_gpu(device)
    return None if physical is None else f"gpu-{_slot_word(host) if host else slot_host()}-{physical}"


# The work queues of the per-GPU workers: ``gpu-<i>`` (one host) or ``gpu-<host>-<i>`` (several hosts on one
# server), each with concurrency 1 (deployments/setup_prefect.py); rpx-bench-matrix fans out over them.
GPU_QUEUE_PREFIX = "gpu-"


def gpu_queue_name(index: int, host: str | None = None) -> str:
    """Return the work queue of the worker of GPU ``index``: ``gpu-<index>``, or ``gpu-<host>-<index>`` when
    ``host`` is given (several hosts sharing one server, so each GPU of each host has its own queue)."""
    return f"{GPU_QUEUE_PREFIX}{_slot_word(host)}-{index}" if host else f"{GPU_QUEUE_PREFIX}{index}"


def ensure_concurrency_limit(name: str, limit: int = 1, *, reset: bool = False) -> str:
    """Make sure the global concurrency limit ``name`` exists on the configured Prefect API.

    Creates it with ``limit`` slots unless it exists; an existing limit is left as it is (a
    limit someone raised stays raised) unless ``reset``, which sets it back to ``limit`` slots
    and active. Returns what happened: ``"created"``, ``"reset"`` or ``"exists"``. Raises
    Prefect's HTTP errors when the API does not answer.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            existing = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            existing = None
        if existing is None:
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
            except ObjectAlreadyExists:
                return "exists"
            return "created"
        if reset and (existing.limit != limit or not existing.active):
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=limit, active=True))
            return "reset"
    return "exists"


def _warn_while_waiting(name: str, acquired: threading.Event) -> None:
    """Start a thread that warns every ``SLOT_WAIT_WARNING_S`` until ``acquired`` is set."""
    logger = run_logger()
    start = time.perf_counter()

    def warn() -> None:
        while not acquired.wait(SLOT_WAIT_WARNING_S):
            logger.warning(
                "Still waiting for GPU slot %s after %.0f s: another benchmark holds it. If none runs, a killed "
                "run leaked it: free it with `prefect gcl update %s --active-slots 0`.",
                name,
                time.perf_counter() - start,
                name,
            )

    threading.Thread(target=warn, name=f"wait-{name}", daemon=True).start()


def _is_gone(error: BaseException) -> bool:
    """True when a renewal failed because the server no longer has the lease (HTTP 404 or 410)."""
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None) in (404, 410)


@contextmanager
def _lease_keeper(name: str, lease_id: UUID | None, lease_seconds: float) -> Iterator[None]:
    """Renew ``lease_id`` every ``gpu_slot_renew_seconds`` while inside the block, whatever happens to the API.

    Prefect renews the lease itself, but gives up after three failed attempts in a row (a few seconds): after a
    longer outage the lease would run out while the benchmark goes on, and another run could take the GPU. The
    keeper keeps trying (a warning when renewals start failing, an info line when they work again) until the
    block exits, or until the server says the lease is gone. No-op without a lease id. Raises nothing.
    """
    if lease_id is None:
        yield
        return
    from prefect.client.orchestration import get_client

    logger = run_logger()
    stop = threading.Event()
    interval = gpu_slot_renew_seconds(lease_seconds)

    def keep() -> None:
        failing_since: float | None = None
        with get_client(sync_client=True) as client:
            while not stop.wait(interval):
                try:
                    client.renew_concurrency_lease(lease_id=lease_id, lease_duration=lease_seconds)
                except Exception as error:  # noqa: BLE001 - an outage must never end the benchmark
                    if _is_gone(error):
                        logger.warning(
                            "The lease of GPU slot %s ran out during an API outage: another run may "
                            "now use this GPU. The benchmark goes on.",
                            name,
                        )
                        return
                    if failing_since is None:
                        failing_since = time.monotonic()
                        logger.warning(
                            "Cannot renew the lease of GPU slot %s (%s); the benchmark goes on and the "
                            "renewal is retried every %.1f s.",
                            name,
                            error,
                            interval,
                        )
                    continue
                if failing_since is not None:
                    logger.info(
                        "The lease of GPU slot %s is renewed again, after %.0f s of failures.",
                        name,
                        time.monotonic() - failing_since,
                    )
                    failing_since = None

    # In a copy of this context: the thread talks to the same API and logs to the same run.
    thread = threading.Thread(target=contextvars.copy_context().run, args=(keep,), name=f"keep-{name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()


@contextmanager
def gpu_slot(device: str) -> Iterator[None]:
    """Hold the slot of ``device``, the device the run uses (after the CPU fallback), while inside the block:
    ``gpu_slot_name(device)``; no-op for CPU.

    A missing limit is created with one slot first. Waits as long as it takes, with a warning
    every ``SLOT_WAIT_WARNING_S`` (no acquisition timeout: a timed-out request could still take
    a slot on the server and leak it). The slot is released when the block exits, by return,
    exception or cancellation; a process killed outright loses it when its lease expires
    (``gpu_slot_lease_seconds``). A lease renewal that fails (the API down for a while) is a warning in the
    run log, never the end of the benchmark, and the lease is renewed again as soon as the API answers
    (``_lease_keeper``). Raises Prefect's errors when the API does not answer while the slot is taken.
    """
    name = gpu_slot_name(device)
    if name is None:
        yield
        return
    from prefect.client.schemas.objects import ConcurrencyLeaseHolder
    from prefect.concurrency.context import ConcurrencyContext
    from prefect.concurrency.sync import concurrency

    logger = run_logger()
    context = TaskRunContext.get()
    holder = ConcurrencyLeaseHolder(type="task_run", id=context.task_run.id) if context else None
    if ensure_concurrency_limit(name) == "created":
        logger.warning("Created concurrency limit %s with 1 slot (deployments/setup_prefect.py manages them).", name)
    start = time.perf_counter()
    acquired = threading.Event()
    _warn_while_waiting(name, acquired)
    lease_seconds = gpu_slot_lease_seconds()
    try:
        # Prefect records the lease it grants on the innermost ConcurrencyContext (and releases it there if the
        # block is cancelled before it could): this one, so the keeper learns the lease id.
        # raise_on_lease_renewal_failure=False: with strict=True Prefect would otherwise cancel the benchmark when
        # its lease renewal fails three times in a row (a server restart, a brief network outage).
        with (
            ConcurrencyContext() as leases,
            concurrency(
                name,
                occupy=1,
                strict=True,
                holder=holder,
                lease_duration=lease_seconds,
                raise_on_lease_renewal_failure=False,
            ),
        ):
            acquired.set()
            logger.info("Holding GPU slot %s (waited %.1f s).", name, time.perf_counter() - start)
            lease_id = leases.cleanup_lease_ids[-1] if leases.cleanup_lease_ids else None
            with _lease_keeper(name, lease_id, lease_seconds):
                yield
    finally:
        acquired.set()
