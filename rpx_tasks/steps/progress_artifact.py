"""A Prefect progress artifact that follows the benchmark loop (samples done / total), so a long run shows
its progress in the UI, not only in log lines."""

from __future__ import annotations

import time
from collections.abc import Callable

from rpx_tasks.runner import Progress

from .logs import run_logger

# An update is sent when the run advanced by this many percent, or this many seconds passed since the last one;
# never sooner than UPDATE_MIN_SECONDS after the last one (each is a blocking API call of ~10-40 ms in the
# benchmark loop: a short run would otherwise send one per sample), except the last.
UPDATE_EVERY_PERCENT = 2.0
UPDATE_EVERY_SECONDS = 5.0
UPDATE_MIN_SECONDS = 1.0


def update_due(percent: float, sent: float | None, seconds_since_sent: float, done: bool) -> bool:
    """Return whether the progress artifact should get ``percent`` now: the first update, the last sample
    (``done``) not yet sent, or, at least ``UPDATE_MIN_SECONDS`` after the last one sent (``sent``), an advance
    of ``UPDATE_EVERY_PERCENT`` since it or ``UPDATE_EVERY_SECONDS`` with some advance."""
    if sent is None:
        return True
    if percent == sent:
        return False
    if done:
        return True
    if seconds_since_sent < UPDATE_MIN_SECONDS:
        return False
    return percent - sent >= UPDATE_EVERY_PERCENT or seconds_since_sent >= UPDATE_EVERY_SECONDS


def progress_artifact(
    key: str, description: str, *, clock: Callable[[], float] = time.monotonic, also: Progress | None = None
) -> Progress:
    """Return a progress callback that keeps the progress artifact ``key`` up to date for the predict stage.

    The artifact is created at the first predict update (its percentage of samples done), then updated
    when the run advanced by ``UPDATE_EVERY_PERCENT`` or ``UPDATE_EVERY_SECONDS`` passed (never within
    ``UPDATE_MIN_SECONDS`` of the last update), and at the last sample. Must be called inside a flow or
    task run. A failing API call is logged once as a warning and turns the artifact off for the rest of
    the run: progress is never worth failing a run for. Every update is passed on to ``also`` when given.
    Raises nothing itself; ``also`` may raise.
    """
    state: dict = {"id": None, "sent": None, "at": 0.0, "off": False}

    def send(percent: float) -> None:
        from prefect.artifacts import create_progress_artifact, update_progress_artifact

        if state["id"] is None:
            state["id"] = create_progress_artifact(percent, key=key, description=description)
        else:
            update_progress_artifact(state["id"], percent)
        state["sent"], state["at"] = percent, clock()

    def update(done: int, total: int | None, stage: str) -> None:
        if stage == "predict" and total and not state["off"]:
            percent = round(100.0 * min(done, total) / total, 2)
            if update_due(percent, state["sent"], clock() - state["at"], done >= total):
                try:
                    send(percent)
                except Exception as error:  # noqa: BLE001 - progress is best effort
                    state["off"] = True
                    run_logger().warning("Progress artifact %s not updated (%s); the run goes on.", key, error)
        if also is not None:
            also(done, total, stage)

    return update
