"""Create what the rpx-bench deployments need on a Prefect server; safe to run again and again.

- the process work pool named in ``prefect.yaml`` (``rpx-process``);
- one global concurrency limit ``gpu-<i>`` with one slot per visible GPU, so at most one
  benchmark runs per GPU across all flow runs and workers sharing this server.

Existing objects are left as they are (a limit you raised stays raised); ``--reset-limits``
sets every ``gpu-<i>`` limit back to one slot. The server is the one Prefect is configured
for (``PREFECT_API_URL``)::

    PREFECT_API_URL=http://127.0.0.1:4200/api python deployments/setup_prefect.py [--gpus N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import yaml

PREFECT_YAML = Path(__file__).resolve().parent.parent / "prefect.yaml"


def work_pool_names(prefect_yaml: Path = PREFECT_YAML) -> list[str]:
    """The work pool names the deployments of ``prefect_yaml`` use, in order of first use."""
    config = yaml.safe_load(prefect_yaml.read_text(encoding="utf-8"))
    names: list[str] = []
    for deployment in config.get("deployments") or []:
        name = (deployment.get("work_pool") or {}).get("name")
        if name and name not in names:
            names.append(name)
    return names


def visible_gpu_count() -> int:
    """GPUs this machine shows: ``nvidia-smi -L`` lines (respecting CUDA_VISIBLE_DEVICES), 0 without a driver."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([part for part in visible.split(",") if part.strip() and part.strip() != "-1"])
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    if listing.returncode != 0:
        return 0
    return sum(1 for line in listing.stdout.splitlines() if line.startswith("GPU "))


def ensure_work_pool(client, name: str) -> str:
    """Create the process work pool ``name`` unless it exists; returns what happened."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    try:
        pool = client.read_work_pool(name)
        return f"work pool {name}: exists (type {pool.type})"
    except ObjectNotFound:
        pass
    try:
        client.create_work_pool(WorkPoolCreate(name=name, type="process"))
    except ObjectAlreadyExists:
        return f"work pool {name}: exists"
    return f"work pool {name}: created (type process)"


def ensure_gpu_limit(client, index: int, *, reset: bool) -> str:
    """Create ``gpu-<index>`` with one slot unless it exists (or set it back to one with ``reset``)."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    name = f"gpu-{index}"
    try:
        limit = client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        limit = None
    if limit is None:
        try:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
        except ObjectAlreadyExists:
            return f"concurrency limit {name}: exists"
        return f"concurrency limit {name}: created (1 slot)"
    if reset and (limit.limit != 1 or not limit.active):
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=1, active=True))
        return f"concurrency limit {name}: reset to 1 slot"
    return f"concurrency limit {name}: exists ({limit.limit} slot(s), {'active' if limit.active else 'inactive'})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--gpus", type=int, default=None, help="number of gpu-<i> limits (default: the visible GPUs)")
    parser.add_argument("--reset-limits", action="store_true", help="set existing gpu-<i> limits back to 1 slot")
    args = parser.parse_args(argv)

    os.environ.setdefault("DO_NOT_TRACK", "1")
    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    gpus = visible_gpu_count() if args.gpus is None else args.gpus
    api = get_current_settings().api.url
    if not api:
        print("PREFECT_API_URL is not set: these objects would go to a temporary server and vanish.", file=sys.stderr)
        print("  start one (`prefect server start`) and set PREFECT_API_URL=http://127.0.0.1:4200/api", file=sys.stderr)
        return 2
    print(f"Prefect API: {api}")
    with get_client(sync_client=True) as client:
        for name in work_pool_names():
            print(ensure_work_pool(client, name))
        for index in range(gpus):
            print(ensure_gpu_limit(client, index, reset=args.reset_limits))
    if gpus == 0:
        print("no GPU visible: no gpu-<i> limit created (CPU runs take no GPU slot)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
