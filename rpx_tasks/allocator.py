"""Process-wide glibc malloc tuning for frame-sized buffers; entry points opt in explicitly.

Every frame allocates and frees several megabyte-sized numpy arrays. With glibc's defaults
those are mmapped or trimmed back to the kernel and each new one pays page faults; on a
2-core machine that costs about as much as the arithmetic itself. Raising the mmap and trim
thresholds keeps the pages mapped (peak memory is unchanged: the same buffers are reused).

Library code never calls this: it changes the allocator of the whole process, so only entry
points (the CLI, the flows, the decoding worker process) decide to apply it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 32 * 2**20  # glibc's maximum on 64-bit
_TRIM_THRESHOLD_BYTES = 512 * 2**20


def tune_allocator_for_frames() -> bool:
    """Keep freed frame-sized buffers in this process's heap instead of returning them to the OS.

    Sets glibc's ``M_MMAP_THRESHOLD`` to 32 MiB and ``M_TRIM_THRESHOLD`` to 512 MiB with
    ``mallopt``, for the whole process and for good (every thread, every later allocation).
    Calling it again is harmless. Returns True when both settings were applied, False where
    it does not apply (not Linux, no glibc ``mallopt``) or glibc refused a value. Raises nothing.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES)
    )
