"""Keep freed frame-sized buffers in the heap instead of returning them to the OS.

Every frame allocates and frees several megabyte-sized numpy arrays. With glibc's defaults
those are mmapped or trimmed back to the kernel and each new one pays page faults; on a
2-core machine that costs about as much as the arithmetic itself. Raising the mmap and trim
thresholds keeps the pages mapped (peak memory is unchanged: the same buffers are reused).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 32 * 2**20  # glibc's maximum on 64-bit
_TRIM_THRESHOLD_BYTES = 512 * 2**20

_tuned = False


def keep_frame_buffers_mapped() -> bool:
    """Tune glibc malloc for frame-sized buffers once per process; True if it was applied.

    A no-op (False) on non-glibc platforms.
    """
    global _tuned
    if _tuned:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    _tuned = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES))
    return _tuned
