"""Device selection (CUDA with CPU fallback), synchronisation and peak-memory readings (host and GPU)."""

from __future__ import annotations

import gc
import logging
import re
import resource
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
                f"The GPU is required (require_cuda) but the device is {requested!r}.",
                hint="use --device cuda (or cuda:N), or drop require_cuda / --require-cuda",
            )
        return requested
    import torch

    if not torch.cuda.is_available():
        if require_cuda:
            raise ConfigError(
                "The GPU is required (require_cuda) but CUDA is not available on this machine "
                "(torch.cuda.is_available() is False).",
                hint="run on a GPU machine with a CUDA build of torch, or drop require_cuda (--require-cuda) "
                "to fall back to the CPU",
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


# How the host peak is measured: VmHWM reset by /proc/self/clear_refs (this run), else ru_maxrss
# (the process's lifetime, so it includes whatever ran earlier in the process).
HOST_PEAK_RUN = "vmhwm"
HOST_PEAK_PROCESS = "ru_maxrss"

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")
_VMHWM = re.compile(r"^VmHWM:\s+(\d+)\s+kB", re.MULTILINE)


def reset_peak_host_memory() -> str:
    """Start a fresh peak-RSS window for this process, where the OS allows it.

    On Linux, writing ``5`` to ``/proc/self/clear_refs`` resets ``VmHWM`` (the resident-set
    high-water mark) to the current RSS. Returns ``HOST_PEAK_RUN`` when that worked, else
    ``HOST_PEAK_PROCESS`` (the peak will be ``ru_maxrss``, the process's lifetime maximum).
    Raises nothing.
    """
    try:
        _CLEAR_REFS.write_text("5")
        if _read_vmhwm_kb() is not None:
            return HOST_PEAK_RUN
    except OSError as exc:
        logger.debug("Cannot reset the peak RSS (%s); host peak memory is the process-lifetime maximum.", exc)
    return HOST_PEAK_PROCESS


def peak_host_memory_mb(method: str) -> float:
    """Peak resident memory of this process in MiB, by the ``method`` ``reset_peak_host_memory`` returned:
    ``VmHWM`` since the reset, or ``ru_maxrss`` over the process's lifetime. Raises nothing."""
    if method == HOST_PEAK_RUN:
        vmhwm_kb = _read_vmhwm_kb()
        if vmhwm_kb is not None:
            return vmhwm_kb / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _read_vmhwm_kb() -> int | None:
    """``VmHWM`` of ``/proc/self/status`` in kB, or None where there is no such file or line."""
    try:
        found = _VMHWM.search(_STATUS.read_text())
    except OSError:
        return None
    return int(found.group(1)) if found else None


def reset_peak_gpu_memory(device: str) -> None:
    """Start a fresh CUDA peak-memory window on ``device``; no-op on CPU. Raises nothing on CPU."""
    if is_cuda(device):
        import torch

        torch.cuda.reset_peak_memory_stats(device)


def peak_gpu_memory_mb(device: str) -> float | None:
    """The most CUDA memory allocated on ``device`` since the last reset, in MiB; None on CPU."""
    if not is_cuda(device):
        return None
    import torch

    return torch.cuda.max_memory_allocated(device) / 2**20


@dataclass(frozen=True)
class PeakMemoryWindow:
    """The window the peak-memory figures of a run cover: from ``start`` to ``read``."""

    device: str
    host_method: str

    @classmethod
    def start(cls, device: str) -> "PeakMemoryWindow":
        """Collect garbage (so what earlier runs left behind leaves the resident set), then reset the
        host and, on CUDA, the GPU high-water marks; returns the open window. Raises nothing on CPU."""
        gc.collect()
        reset_peak_gpu_memory(device)
        return cls(device=device, host_method=reset_peak_host_memory())

    def read(self) -> dict[str, Any]:
        """Return ``peak_host_memory_mb`` (resident set of this process), ``peak_host_memory_method``
        (``vmhwm`` or ``ru_maxrss``), ``peak_host_memory_scope`` (``run``, or ``process_lifetime``
        where the high-water mark could not be reset) and ``peak_gpu_memory_mb`` (None on CPU)."""
        return {
            "peak_host_memory_mb": peak_host_memory_mb(self.host_method),
            "peak_host_memory_method": self.host_method,
            "peak_host_memory_scope": "run" if self.host_method == HOST_PEAK_RUN else "process_lifetime",
            "peak_gpu_memory_mb": peak_gpu_memory_mb(self.device),
        }


def device_name(device: str) -> str:
    """A human-readable name of the device, e.g. the GPU model."""
    if is_cuda(device):
        import torch

        return torch.cuda.get_device_name(device)
    import platform

    return platform.processor() or platform.machine() or "cpu"
