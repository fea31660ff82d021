"""How a run shares the CPU cores it may use between the model (torch) and the pipeline around it.

The cores a run may use are ``os.sched_getaffinity(0)`` (a container's or ``taskset``'s limit), not the
machine's. The model gets them all: torch's intra-op pool (OpenMP) sizes itself from them, or from
``RPX_TORCH_THREADS`` when set (:func:`apply_torch_threads`, called by the entry points: it is a
process-wide setting). The pipeline's helpers (decoding threads or the decoding worker process, the
scoring and temporal-stability threads) are few (:func:`decode_threads`) and, around a torch model, run at a
lower CPU priority (:func:`run_in_background`: niceness +``BACKGROUND_NICENESS`` for their own thread, or
``RPX_HELPER_PRIORITY``: ``idle`` for Linux's ``SCHED_IDLE``, or another niceness), so that the kernel hands
a core to a torch thread first and the helpers fill the gaps: an OpenMP parallel region waits for its
slowest thread, and a helper preempting one of them stalls the whole forward pass. Measured on 2 cores with
a small Depth Anything at 518 px, two threads decoding PNGs non-stop beside its forward pass took it from
~90 ms to 700-1200 ms at niceness 0, ~110-230 ms at 10, ~95-170 ms at 19 and ~95-150 ms in ``SCHED_IDLE``.
The default stays at 10 because a lower priority also loses to every other busy process on a saturated
machine, where the loop would then wait for starved helpers (``SCHED_IDLE`` helpers get nothing there).

``--num-workers N`` (``RunConfig.num_workers``) sets the decoding threads of the threads engine; 0 decodes
on the loop's own thread (no helper at all). The processes engine decodes in one worker process.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from rpx_tasks.errors import ConfigError

logger = logging.getLogger(__name__)

TORCH_THREADS_ENV = "RPX_TORCH_THREADS"
HELPER_PRIORITY_ENV = "RPX_HELPER_PRIORITY"
BACKGROUND_NICENESS = 10
_MIN_DECODE_THREADS, _MAX_DECODE_THREADS = 2, 4

Result = TypeVar("Result")
_lowered = threading.local()


def available_cores() -> int:
    """The CPU cores this process may run on (``os.sched_getaffinity``; ``os.cpu_count()`` where unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def torch_threads() -> int | None:
    """The intra-op threads ``RPX_TORCH_THREADS`` asks for, or None when unset (torch sizes its pool from the
    available cores). Raises ConfigError for a value that is not an integer >= 1."""
    text = os.environ.get(TORCH_THREADS_ENV, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(
            f"{TORCH_THREADS_ENV}={text!r} is not a thread count.",
            hint=f"set {TORCH_THREADS_ENV} to an integer >= 1 (e.g. {available_cores()}), or unset it",
        )
    return int(text)


def apply_torch_threads() -> int | None:
    """Set torch's intra-op threads to ``RPX_TORCH_THREADS`` when it is set (imports torch only then); returns
    the count set, or None. Process-wide: entry points call it. Raises ConfigError for a bad value."""
    wanted = torch_threads()
    if wanted is None:
        return None
    import torch

    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return wanted


def check_environment() -> None:
    """Check ``RPX_TORCH_THREADS`` and ``RPX_HELPER_PRIORITY`` before a run starts; raises ConfigError."""
    torch_threads()
    helper_priority()


def decode_threads(num_workers: int | None) -> int:
    """Decoding threads of the threads engine: ``num_workers`` when given (0 means none: decode on the loop's
    thread), else a quarter of the available cores, at least 2 (as before this option) and at most 4; they run
    at a lower priority around a torch model, which keeps the cores it needs."""
    if num_workers is not None:
        return num_workers
    return max(_MIN_DECODE_THREADS, min(_MAX_DECODE_THREADS, available_cores() // 4))


def helper_priority() -> str:
    """The helpers' priority: ``RPX_HELPER_PRIORITY`` (``idle`` for ``SCHED_IDLE``, or a niceness 0-19), default
    ``BACKGROUND_NICENESS``. Raises ConfigError for another value."""
    text = os.environ.get(HELPER_PRIORITY_ENV, "").strip() or str(BACKGROUND_NICENESS)
    if text != "idle" and not (text.isdigit() and int(text) <= 19):
        raise ConfigError(
            f"{HELPER_PRIORITY_ENV}={text!r} is neither 'idle' nor a niceness 0-19.",
            hint=f"e.g. {HELPER_PRIORITY_ENV}=idle (SCHED_IDLE: helpers only use idle cores) or 19; default "
            f"{BACKGROUND_NICENESS}",
        )
    return text


def lower_thread_priority() -> str | None:
    """Lower the calling thread's CPU priority (only its own, on Linux) as :func:`helper_priority` says: raise
    its niceness by that much, or move it to ``SCHED_IDLE``. Once per thread; returns what was applied
    (``"idle"``, ``"nice+N"``) or None where nothing could be. Raises ConfigError for a bad
    ``RPX_HELPER_PRIORITY``."""
    if getattr(_lowered, "done", False):
        return _lowered.how
    wanted = helper_priority()
    _lowered.done, _lowered.how = True, None
    native = threading.get_native_id()
    try:
        if wanted == "idle":
            os.sched_setscheduler(native, os.SCHED_IDLE, os.sched_param(0))
            _lowered.how = "idle"
        elif int(wanted) > 0:
            os.setpriority(os.PRIO_PROCESS, native, min(19, os.getpriority(os.PRIO_PROCESS, native) + int(wanted)))
            _lowered.how = f"nice+{wanted}"
    except (AttributeError, OSError) as exc:
        logger.debug("Could not lower the priority of a pipeline thread: %s", exc)
    return _lowered.how


def run_in_background(function: Callable[..., Result]) -> Callable[..., Result]:
    """``function`` run at the pipeline helpers' lower CPU priority: its thread's niceness is raised the first
    time it runs there (:func:`lower_thread_priority`). Raises what ``function`` raises."""

    def run(*args: Any, **kwargs: Any) -> Result:
        lower_thread_priority()
        return function(*args, **kwargs)

    return run


__all__ = [
    "BACKGROUND_NICENESS",
    "HELPER_PRIORITY_ENV",
    "TORCH_THREADS_ENV",
    "apply_torch_threads",
    "available_cores",
    "check_environment",
    "decode_threads",
    "helper_priority",
    "lower_thread_priority",
    "run_in_background",
    "torch_threads",
]
