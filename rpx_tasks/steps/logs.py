"""Where the steps log: the Prefect run logger, and progress lines for the run log."""

from __future__ import annotations

import logging

from prefect import get_run_logger
from prefect.exceptions import MissingContextError

from rpx_tasks.runner import Progress


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    """Return the run logger inside a flow or task run (its logs reach the UI), else this package's logger.

    Raises nothing.
    """
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("rpx_tasks.steps")


def logging_progress(also: Progress | None = None, every_fraction: float = 0.25) -> Progress:
    """Return a progress callback that logs the predict stage every ``every_fraction`` of the samples.

    Every update is also passed on to ``also`` (e.g. the CLI's progress bar) when given.
    Raises nothing itself; ``also`` may raise.
    """
    logger = run_logger()
    state = {"next": every_fraction}

    def update(done: int, total: int | None, stage: str) -> None:
        if stage == "predict" and total and (done / total >= state["next"] or done == total):
            logger.info("%s %d/%d samples", stage, done, total)
            state["next"] = done / total + every_fraction
        if also is not None:
            also(done, total, stage)

    return update
