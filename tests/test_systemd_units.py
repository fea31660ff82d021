"""The systemd unit templates of deployments/systemd/ say what docs/orchestration.md says: one worker per GPU on
the GPU's own queue, seeing only that GPU; a default-queue worker; a server keeping its leases on disk."""

from __future__ import annotations

import shlex
from pathlib import Path

from deployments.setup_prefect import FILESYSTEM_LEASE_STORAGE, LEASE_STORAGE_VARIABLE

SYSTEMD = Path(__file__).resolve().parent.parent / "deployments" / "systemd"


def service(name: str) -> tuple[dict[str, str], list[str]]:
    """The ``Environment=`` variables of a unit's [Service] section and its ExecStart as arguments."""
    environment: dict[str, str] = {}
    command: list[str] = []
    for line in (SYSTEMD / name).read_text().splitlines():
        if line.startswith("Environment="):
            key, value = line.removeprefix("Environment=").split("=", 1)
            environment[key] = value
        elif line.startswith("ExecStart="):
            command = shlex.split(line.removeprefix("ExecStart="))
    return environment, command


def option(command: list[str], name: str) -> list[str]:
    return [command[i + 1] for i, word in enumerate(command) if word == name]


def test_the_gpu_worker_unit_serves_its_gpus_queue_and_sees_only_that_gpu():
    environment, command = service("rpx-worker@.service")
    assert environment["CUDA_VISIBLE_DEVICES"] == "%i" and environment["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert command[1:3] == ["worker", "start"]
    assert option(command, "--pool") == ["rpx-process"] and option(command, "--work-queue") == ["gpu-%i"]


def test_the_default_worker_unit_serves_the_default_queue_with_every_gpu():
    environment, command = service("rpx-worker-default.service")
    assert "CUDA_VISIBLE_DEVICES" not in environment and command[1:3] == ["worker", "start"]
    assert option(command, "--pool") == ["rpx-process"] and option(command, "--work-queue") == ["default"]


def test_the_server_unit_keeps_concurrency_leases_on_disk():
    environment, command = service("rpx-prefect-server.service")
    assert environment[LEASE_STORAGE_VARIABLE] == FILESYSTEM_LEASE_STORAGE
    assert command[1:3] == ["server", "start"] and environment["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
