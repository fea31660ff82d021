"""The environment record of a run: library versions, hardware, code and data revisions."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from rpx_tasks.device import device_name

_PACKAGES = ("rpx-tasks", "torch", "transformers", "huggingface_hub", "numpy", "pyarrow", "pillow", "prefect")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def code_revision() -> str | None:
    """The git commit of the rpx-bench checkout, or None when it is not a git checkout."""
    source = Path(__file__).resolve().parent.parent
    if not (source / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment_record(device: str, *, dataset_revision: str | None) -> dict[str, Any]:
    """Versions, platform, device, code revision and dataset revision of a run."""
    return {
        "versions": {"python": platform.python_version(), **{name: _version(name) for name in _PACKAGES}},
        "platform": platform.platform(),
        "executable": sys.executable,
        "device": device,
        "device_name": device_name(device),
        "code_revision": code_revision(),
        "dataset_revision": dataset_revision,
    }
