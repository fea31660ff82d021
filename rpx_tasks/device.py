"""Device selection (CUDA with CPU fallback), synchronisation and peak-memory readings."""

from __future__ import annotations

import logging
import re
import resource
import sys

from rpx_tasks.errors import ConfigError

logger = logging.getLogger("rpx_tasks.device")

_DEVICE_PATTERN = re.compile(r"^(cpu|cuda(:\d+)?)$")


def check_device_string(requested: str) -> str:
    """Return ``requested`` if it is ``cpu``, ``cuda`` or ``cuda:N``; else raise ConfigError."""
    if not isinstance(requested, str) or not _DEVICE_PATTERN.match(requested):
        raise ConfigError(
            f"Unknown device {requested!r}.",
            hint="use --device cpu, cuda or cuda:N (N = GPU index)",
        )
    return requested


def is_cuda(device: str) -> bool:
    """True for ``cuda`` and ``cuda:N``."""
    return device.startswith("cuda")


def gpu_index(device: str) -> int | None:
    """The GPU index of a CUDA device string (``cuda`` means 0), None for CPU."""
    if not is_cuda(device):
        return None
    return int(device.split(":", 1)[1]) if ":" in device else 0


def resolve_device(requested: str, *, require_cuda: bool = False) -> str:
    """Pick the device a run will use.

    Returns ``requested`` when it is usable. A CUDA request on a machine without CUDA falls
    back to ``cpu`` with one WARNING, unless ``require_cuda`` is set, which raises ConfigError
    instead. A GPU index beyond the visible GPUs raises ConfigError.
    """
    check_device_string(requested)
    if not is_cuda(requested):
        if require_cuda:
            raise ConfigError(
                f"require_cuda is set but the device is {requested!r}.",
                hint="use --device cuda (or cuda:N), or drop require_cuda",
            )
        return requested
    import torch

    if not torch.cuda.is_available():
        if require_cuda:
            raise ConfigError(
                "CUDA was required but torch.cuda.is_available() is False.",
                hint="install a CUDA build of torch on a GPU machine, or run with --device cpu",
            )
        logger.warning("CUDA requested but torch.cuda.is_available() is False; falling back to device='cpu'.")
        return "cpu"
    index = gpu_index(requested)
    count = torch.cuda.device_count()
    if index is not None and index >= count:
        raise ConfigError(
            f"Device {requested!r} does not exist: {count} GPU(s) visible.",
            hint=f"use cuda:0 .. cuda:{count - 1}, or check CUDA_VISIBLE_DEVICES",
        )
    return requested


def synchronize(device: str) -> None:
    """Wait for queued CUDA work on ``device`` so a timer measures it; no-op on CPU."""
    if is_cuda(device):
        import torch

        torch.cuda.synchronize(device)


def reset_peak_memory(device: str) -> None:
    """Start a fresh CUDA peak-memory window on ``device``; no-op on CPU."""
    if is_cuda(device):
        import torch

        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: str) -> float:
    """Peak memory in MB: CUDA max allocated on a GPU, else the process's peak RSS."""
    if is_cuda(device):
        import torch

        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def device_name(device: str) -> str:
    """A human-readable name of the device, e.g. the GPU model."""
    if is_cuda(device):
        import torch

        return torch.cuda.get_device_name(device)
    import platform

    return platform.processor() or platform.machine() or "cpu"
