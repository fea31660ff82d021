"""Pytest fixtures for flow tests: one Prefect test API for the whole session.

Load with ``pytest_plugins = ["tests.conftest_prefect"]`` in ``tests/conftest.py``.

- ``prefect_api``: session-scoped ``prefect_test_harness`` (a temporary SQLite API server in a
  subprocess, ~5 s to start once). Every flow run of the session goes to it.
- ``prefect_client``: a sync client of that API.
- ``prefect_api_url``: its URL, for subprocesses (``PREFECT_API_URL=...``): a CLI run against it
  skips starting a temporary server of its own (~2.5 s instead of ~9 s per ``rpx bench``).

The download step's retry backoff is shortened here (``RPX_DOWNLOAD_BACKOFF_S``), before
``rpx_tasks.steps`` is imported, so retry tests take milliseconds.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("RPX_DOWNLOAD_BACKOFF_S", "0.05")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")


@pytest.fixture(scope="session")
def prefect_api():
    """A Prefect API for the session's flow runs (temporary database, stopped at the end)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture
def prefect_client(prefect_api):
    """A sync client of the session's test API."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        yield client


@pytest.fixture
def prefect_api_url(prefect_api) -> str:
    """The session's test API URL, to pass to subprocesses as PREFECT_API_URL."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()
