"""Pytest fixtures for anything that downloads: a Hub-API server on loopback and a clean HF setup.

Load with ``pytest_plugins = ["tests.conftest_hub"]`` in ``tests/conftest.py``.

- ``hub_server``: a running ``tests/support/hub_server.HubServer`` holding ``rpx-test/loose`` and
  ``rpx-test/sharded`` (refs ``main`` and ``v1``, or the commit sha); stopped afterwards.
- ``hub_env``: ``hub_server`` plus an isolated environment: ``HF_ENDPOINT`` = the server,
  temp ``RPX_CACHE_DIR`` and HF cache, no token, online, telemetry off, retries without sleeps.
  Returns a ``HubEnv`` with ``server``, ``hf_cache``, ``rpx_cache``, ``go_offline()`` and
  ``mirror(layout)``.

Why some ``huggingface_hub.constants`` are patched as well as the environment: the library reads
``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_HUB_CACHE`` and the token path once, at import time, and
it is usually imported before a fixture runs. ``rpx_tasks.hub`` reads ``HF_ENDPOINT`` and
``HF_HUB_OFFLINE`` itself at call time, but other code calling huggingface_hub directly would
not. Subprocesses (CLI tests) simply inherit the environment variables.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.hub_dataset import build_repo_files, write_repo_files
from tests.support.hub_server import HubServer, serve_dataset


class _NoSleepTime:
    """Stands in for the ``time`` module inside huggingface_hub: backoff sleeps become ~0 s."""

    def __getattr__(self, name):
        return getattr(_time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        _time.sleep(min(seconds, 0.01))


@dataclass
class HubEnv:
    server: HubServer
    hf_cache: Path
    rpx_cache: Path
    tmp_path: Path
    monkeypatch: pytest.MonkeyPatch

    @property
    def endpoint(self) -> str:
        return self.server.url

    def go_offline(self) -> None:
        """HF_HUB_OFFLINE=1 from now on (environment and huggingface_hub's import-time constant)."""
        from huggingface_hub import constants

        self.monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        self.monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    def mirror(self, layout: str, name: str | None = None) -> Path:
        """A local folder laid out like the Hub repo of ``layout``."""
        return write_repo_files(build_repo_files(layout), self.tmp_path / (name or f"mirror-{layout}"))


@pytest.fixture
def hub_server():
    server = serve_dataset()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def hub_env(hub_server, tmp_path, monkeypatch) -> HubEnv:
    import huggingface_hub.file_download as file_download
    import huggingface_hub.utils._http as hf_http
    from huggingface_hub import constants

    hf_cache = tmp_path / "hf-cache"
    rpx_cache = tmp_path / "rpx-cache"
    for name in (
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "RPX_HF_REPO",
        "RPX_HF_REVISION",
        "HF_HUB_ETAG_TIMEOUT",
        "HF_HUB_DOWNLOAD_TIMEOUT",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", hub_server.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_cache))
    monkeypatch.setenv("RPX_CACHE_DIR", str(rpx_cache))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # Both or neither: hf_hub_url() builds from the template, then swaps a leading ENDPOINT.
    monkeypatch.setattr(constants, "ENDPOINT", hub_server.url)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub_server.url + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_cache))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf-home" / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "hf-home" / "stored_tokens"), raising=False)
    monkeypatch.setattr(hf_http, "time", _NoSleepTime())
    monkeypatch.setattr(file_download, "time", _NoSleepTime())
    return HubEnv(hub_server, hf_cache, rpx_cache, tmp_path, monkeypatch)
