"""Process set-up that must happen before Prefect is imported or a flow is loaded.

Nothing here imports Prefect: ``configure_quiet_prefect`` only works if it runs first, and
``enter_checkout`` runs as a deployment pull step before the flow's module is loaded.
"""

from __future__ import annotations

import os
from pathlib import Path

# Defaults for running a flow from the `rpx` CLI; a variable the user set is never changed.
QUIET_DEFAULTS = {
    # No telemetry: neither the client SDK events nor the embedded server's analytics.
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # Prefect's console handler stays silent: the CLI prints progress, results and errors itself.
    # Run logs still go to the API, so the flow run's page in the UI shows them.
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
    # Warnings and info of the rpx core also reach the flow-run logs in the UI.
    "PREFECT_LOGGING_EXTRA_LOGGERS": "rpx_tasks",
    # Logs emitted outside a flow run (before it starts) are dropped instead of warned about.
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
}


def configure_quiet_prefect(verbose: bool = False) -> dict[str, str]:
    """Set quiet, offline Prefect defaults in ``os.environ`` unless the user set them already.

    Call it before the first ``import prefect`` (Prefect reads its settings and starts
    telemetry at import). ``verbose`` keeps Prefect's console logs (INFO and up). Returns the
    variables it set.
    """
    defaults = dict(QUIET_DEFAULTS)
    if verbose:
        defaults["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "INFO"
    applied = {}
    for name, value in defaults.items():
        if name not in os.environ:
            os.environ[name] = value
            applied[name] = value
    return applied


def checkout_root() -> Path:
    """The folder that holds the ``flows`` package: the repository checkout for an editable install."""
    return Path(__file__).resolve().parent.parent


def enter_checkout() -> dict[str, str]:
    """Deployment pull step: make the checkout the working directory of the flow run.

    Works from any checkout path because it asks the installed ``flows`` package where it
    lives, on the worker. Relative entrypoints (``flows/rpx_bench.py``) and relative output
    folders (``rpx_results/...``) then resolve inside the checkout. Returns ``{"directory": ...}``.
    """
    root = checkout_root()
    os.chdir(root)
    return {"directory": str(root)}
