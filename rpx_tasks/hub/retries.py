"""How often and how late a download that failed on a transient error is tried again.

The Prefect download step (``rpx_tasks.steps``) hands these numbers to Prefect's task retries;
``rpx bench`` without Prefect retries with ``retry_transient`` (same count, same backoff, with jitter).
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable
from typing import TypeVar

from rpx_tasks.errors import TransientDownloadError

DOWNLOAD_RETRIES = 3
DOWNLOAD_RETRY_JITTER = 0.5

T = TypeVar("T")
log = logging.getLogger(__name__)


def download_backoff_seconds() -> float:
    """Return the first retry delay of a download (doubling after): ``RPX_DOWNLOAD_BACKOFF_S``, default 2 s.

    Raises ValueError when the variable is not a number.
    """
    return float(os.environ.get("RPX_DOWNLOAD_BACKOFF_S") or 2.0)


def retry_transient(fn: Callable[[], T], *, retries: int = DOWNLOAD_RETRIES) -> T:
    """Return ``fn()``, calling it again up to ``retries`` times after a TransientDownloadError, waiting
    ``download_backoff_seconds() * 2**attempt`` (plus up to ``DOWNLOAD_RETRY_JITTER`` of it) in between.
    Re-raises the last TransientDownloadError, and any other error at once."""
    attempt = 0
    while True:
        try:
            return fn()
        except TransientDownloadError as error:
            if attempt >= retries:
                raise
            delay = download_backoff_seconds() * 2**attempt
            delay *= 1 + random.uniform(0, DOWNLOAD_RETRY_JITTER)
            attempt += 1
            log.warning("%s; trying again in %.1f s (%d of %d).", error.message, delay, attempt, retries)
            time.sleep(delay)
