"""How ``rpx bench`` runs: as flow ``rpx-bench`` in Prefect, or in this process through the core.

- A Prefect server is configured (``PREFECT_API_URL`` in the environment, in ``.env``, ``prefect.toml``,
  ``pyproject.toml`` ``[tool.prefect]`` or the active Prefect profile: what ``prefect config set`` writes)
  and answers: the flow runs and the server records it (flow run, task runs, artifacts, tags, events).
  Configured but not answering: ConfigError, before any work.
- ``--prefect`` without a configured server: the flow runs on Prefect's temporary server (started and
  stopped by this process, ~8 s).
- Otherwise the same steps run in this process (``bench.run_bench``) without importing Prefect at all:
  the same run folder, reports, ``latest``, run.json, journal and resume, the same download cache (a split
  resolved before and still on disk is used without any request, transient download errors are retried
  as the flow's step does), the same typed errors, and the comparison with the previous run. What needs a
  server is left out: artifacts, flow-run tags, the regression event, GPU concurrency slots and the
  automatic retry of a crashed benchmark step (run the same command again: it resumes).

Nothing here imports Prefect (an import-linter contract): deciding costs a few file reads and, with a
server configured, one health request.
"""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rpx_tasks.bench import run_bench
from rpx_tasks.comparison.previous_run import compare_with_previous_run
from rpx_tasks.comparison.render import format_ci
from rpx_tasks.config import RunConfig
from rpx_tasks.errors import ConfigError
from rpx_tasks.reports import format_signed
from rpx_tasks.runner import Progress

try:
    import tomllib
except ImportError:  # Python 3.10: Prefect settings in TOML files are not read here (environment and .env are)
    tomllib = None

logger = logging.getLogger("rpx_tasks.run")

FLOW_ON_SERVER = "server"
FLOW_ON_TEMPORARY_SERVER = "temporary server"
IN_PROCESS = "in-process"

RECORD_HINT = (
    "not recorded in Prefect; to record runs: `prefect server start --background` and "
    "`prefect config set PREFECT_API_URL=http://127.0.0.1:4200/api` (or --prefect: a temporary server, ~8 s)"
)
HEALTH_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class RunPath:
    """How a run goes: ``kind`` (FLOW_ON_SERVER, FLOW_ON_TEMPORARY_SERVER or IN_PROCESS) and the API URL."""

    kind: str
    api_url: str | None = None

    @property
    def uses_prefect(self) -> bool:
        return self.kind != IN_PROCESS

    def describe(self) -> str:
        """One line for the run's header."""
        if self.kind == FLOW_ON_SERVER:
            return f"flow run on {self.api_url}"
        if self.kind == FLOW_ON_TEMPORARY_SERVER:
            return "flow run on a temporary server (--prefect)"
        return "in-process"


def _read_toml(path: Path) -> dict[str, Any]:
    if tomllib is None:
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _dotenv_value(name: str) -> str | None:
    """``name``'s value in ``./.env`` (KEY=VALUE lines), or None."""
    try:
        lines = Path(".env").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        key, sep, value = line.strip().removeprefix("export ").partition("=")
        if sep and key.strip() == name:
            return value.strip().strip("'\"")
    return None


def _nested(data: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _profiles_path() -> Path:
    """Where Prefect reads its profiles: ``PREFECT_PROFILES_PATH``, ``.env``, ``prefect.toml``,
    ``pyproject.toml``, else ``<PREFECT_HOME or ~/.prefect>/profiles.toml`` (Prefect's own order)."""
    configured = (
        os.environ.get("PREFECT_PROFILES_PATH")
        or _dotenv_value("PREFECT_PROFILES_PATH")
        or _nested(_read_toml(Path("prefect.toml")), "profiles_path")
        or _nested(_read_toml(Path("pyproject.toml")), "tool", "prefect", "profiles_path")
    )
    if configured:
        return Path(str(configured)).expanduser()
    return Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser() / "profiles.toml"


def configured_api_url() -> str | None:
    """Return the Prefect API URL this process would use, read as Prefect reads it (environment, ``.env``,
    ``prefect.toml``, ``pyproject.toml`` ``[tool.prefect]``, then the active profile: ``PREFECT_PROFILE`` or
    the profiles file's ``active``), without importing Prefect; None when none is set. Raises nothing."""
    candidates = (
        os.environ.get("PREFECT_API_URL"),
        _dotenv_value("PREFECT_API_URL"),
        _nested(_read_toml(Path("prefect.toml")), "api", "url"),
        _nested(_read_toml(Path("pyproject.toml")), "tool", "prefect", "api", "url"),
    )
    for value in candidates:
        if value:
            return str(value)
    profiles = _read_toml(_profiles_path())
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active")
    value = _nested(profiles, "profiles", str(active), "PREFECT_API_URL") if active else None
    return str(value) if value else None


def check_server(api_url: str) -> None:
    """Ask the Prefect API at ``api_url`` for its health (one request). Raises ConfigError when it does not
    answer, as ``flows.rpx_bench.check_prefect_api`` does."""
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=HEALTH_TIMEOUT_S) as response:
            if response.status == 200:
                return
            problem = f"HTTP {response.status}"
    except (urllib.error.URLError, OSError, ValueError) as error:
        problem = str(getattr(error, "reason", error))
    raise ConfigError(
        f"The Prefect server at {api_url} does not answer ({problem}).",
        hint="start it with `prefect server start --background`, correct PREFECT_API_URL (`prefect config set "
        "PREFECT_API_URL=...`), or unset it (`prefect config unset PREFECT_API_URL`) to run without Prefect",
        details={"api_url": api_url},
    )


def choose_run_path(prefect: bool = False) -> RunPath:
    """Return how ``rpx bench`` runs (module doc); ``prefect``: the ``--prefect`` option.

    Raises ConfigError when a configured server does not answer.
    """
    api_url = configured_api_url()
    if api_url:
        check_server(api_url)
        return RunPath(FLOW_ON_SERVER, api_url)
    return RunPath(FLOW_ON_TEMPORARY_SERVER) if prefect else RunPath(IN_PROCESS)


def run_in_process(config: RunConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Run the benchmark steps in this process (``bench.run_bench``), then compare with the previous run.

    Returns the run summary the CLI prints: ``output_dir``, ``result_json``, ``summary_md`` and
    ``comparison`` (``compare_with_previous_run``'s outcome; a comparison problem is a warning, never a
    failure). Raises the RPXError of the first step that fails.
    """
    paths, payload = run_bench(config, progress)
    try:
        comparison = compare_with_previous_run(paths.output_dir)
    except Exception as error:  # noqa: BLE001 - the report is published; a comparison problem must not fail the run
        reason = f"{type(error).__name__}: {error}"
        logger.warning("No comparison with the previous run (%s); the run is not affected.", reason)
        comparison = {"status": "error", "error": reason}
    return {
        "output_dir": str(paths.output_dir.resolve()),
        "result_json": str(paths.result_json.resolve()),
        "summary_md": str(paths.summary_md.resolve()),
        "run_id": (payload.get("run") or {}).get("id"),
        "comparison": comparison,
    }


def comparison_line(comparison: dict[str, Any] | None) -> str | None:
    """One line for the terminal about the comparison with the previous run, or None when there was none:
    ``absrel unchanged against run <id> (delta +0.0000, 95% CI [-0.0100, +0.0100])``."""
    if not comparison or comparison.get("status") != "compared":
        return None
    ci = comparison.get("ci")
    interval = format_ci(ci) if isinstance(ci, list) and len(ci) == 2 else "–"
    return (
        f"{comparison.get('metric')} {comparison.get('verdict')} against run {comparison.get('previous_run_id')} "
        f"(delta {format_signed(comparison.get('delta'))}, 95% CI {interval})"
    )
