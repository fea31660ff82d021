"""Test-wide settings: fully offline, temp caches, one shared sample dataset."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_SESSION_TMP = Path(tempfile.mkdtemp(prefix="rpx-tests-"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["DO_NOT_TRACK"] = "1"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_HOME"] = str(_SESSION_TMP / "prefect")
os.environ["RPX_CACHE_DIR"] = str(_SESSION_TMP / "rpx-cache")
os.environ["HF_HOME"] = str(_SESSION_TMP / "hf-home")
os.environ["RPX_NO_BANNER"] = "1"
os.environ["RPX_BENCHMARK_RETRY_DELAY_S"] = "0"  # read when rpx_tasks.steps is imported
os.environ.pop("RPX_HF_REPO", None)
os.environ.pop("RPX_HF_REVISION", None)

pytest_plugins = ["tests.conftest_hub", "tests.conftest_prefect", "tests.support.bad_inputs"]


@pytest.fixture(scope="session")
def sample_dataset() -> Path:
    """The built-in sample dataset (``builtin:sample``), written once under the session's RPX_CACHE_DIR
    (set above, before anything reads it)."""
    from rpx_tasks.sample_data.builtin import ensure_sample_data

    return ensure_sample_data()


@pytest.fixture(scope="session")
def depth_manifest(sample_dataset) -> Path:
    """The hard-split monocular_depth manifest of the built-in sample dataset."""
    from rpx_tasks.sample_data.builtin import builtin_manifest_path

    return builtin_manifest_path("monocular_depth", "hard", root=sample_dataset)


@pytest.fixture(scope="session", autouse=True)
def prefect_for_every_test(prefect_api):
    """`rpx bench` runs the rpx-bench flow: point every in-process and subprocess run at the
    session's test API (a run without one would start and stop its own temporary server)."""
    from prefect.settings import PREFECT_API_URL

    os.environ["PREFECT_API_URL"] = PREFECT_API_URL.value()
    yield
    os.environ.pop("PREFECT_API_URL", None)


@pytest.fixture
def offline(monkeypatch):
    """HF offline mode for one test: checkpoints must come from the seeded cache."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def no_samples_task():
    """A task registered for one test only: monocular_depth without sample data or models (model
    names are unique across tasks), named ``no_samples``.

    Uses the public registry calls (``register_task`` / ``unregister_task``), so it is removed
    after the test even when the test fails.
    """
    import dataclasses

    from rpx_tasks.tasks import get_task, register_task, unregister_task

    spec = register_task(
        dataclasses.replace(get_task("monocular_depth"), name="no_samples", sample_entry=None, models=())
    )
    yield spec.name
    unregister_task(spec.name)
