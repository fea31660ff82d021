"""8-bit RGB and 16-bit grey PNGs decoded by libspng (the ``pyspng-seunglab`` binding), when it is installed.

RPX's RGB frames are 8-bit RGB PNGs of camera images that barely compress (~650 KB at 640x480);
Pillow decodes one in ~6.5 ms, libspng in ~3.8 ms (it writes RGB straight into the array, where
Pillow unpacks to its 4-byte internal format and converts back). Its depth maps are 16-bit grey PNGs
(millimetres): libspng decodes them as grey + alpha (the binding's only 16-bit grey format) and the grey
channel is returned, ~0.7 ms faster per VGA frame than Pillow. Only plain files take this path: 8-bit RGB
(colour type 2) or 16-bit grey (colour type 0), not interlaced, no more pixels than Pillow's
decompression-bomb limit. Anything else, and any file libspng refuses, returns None: the caller decodes it
with Pillow, which then gives the same pixels or the same error as without libspng
(``tests/test_fast_png.py`` checks the pixels are identical). ``RPX_PNG_DECODER=pil`` turns this path off.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

try:  # an optional dependency: a wheel exists for the common platforms only
    import pyspng
except ImportError:  # pragma: no cover - depends on the platform
    pyspng = None

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IHDR = struct.Struct(">I4sIIBBBBB")  # length, type, width, height, depth, colour, compression, filter, interlace
_RGB, _GREY = 2, 0


def available() -> bool:
    """Return whether libspng decodes RGB PNGs here (installed, not turned off by ``RPX_PNG_DECODER=pil``)."""
    return pyspng is not None and os.environ.get("RPX_PNG_DECODER", "").lower() != "pil"


def _plain(header: bytes, bit_depth: int, colour_type: int, max_pixels: int | None) -> bool:
    if len(header) < 8 + _IHDR.size or not header.startswith(_SIGNATURE):
        return False
    length, kind, width, height, depth, colour, _, _, interlace = _IHDR.unpack_from(header, 8)
    if length != 13 or kind != b"IHDR" or depth != bit_depth or colour != colour_type or interlace != 0:
        return False
    return max_pixels is None or width * height <= max_pixels


def plain_rgb8(header: bytes, max_pixels: int | None) -> bool:
    """Return whether the first 33 bytes of a file are a PNG signature and the IHDR of a non-interlaced 8-bit
    RGB image of at most ``max_pixels`` pixels (None: no limit). Raises nothing."""
    return _plain(header, 8, _RGB, max_pixels)


def plain_grey16(header: bytes, max_pixels: int | None) -> bool:
    """As ``plain_rgb8`` for a non-interlaced 16-bit greyscale image (a depth map). Raises nothing."""
    return _plain(header, 16, _GREY, max_pixels)


def decode_rgb8(data: bytes, max_pixels: int | None) -> np.ndarray | None:
    """Return the (H, W, 3) uint8 pixels of PNG ``data`` when it is a plain 8-bit RGB PNG that libspng
    decodes; None otherwise (not available, another kind of PNG, a file libspng refuses). Raises nothing."""
    if not available() or not plain_rgb8(data[:33], max_pixels):
        return None
    try:
        return pyspng.load(data, format="RGB")
    except (RuntimeError, ValueError):
        return None


def decode_grey16(data: bytes, max_pixels: int | None) -> np.ndarray | None:
    """Return the (H, W) uint16 pixels (a strided view) of PNG ``data`` when it is a plain 16-bit greyscale PNG
    that libspng decodes; None otherwise (as ``decode_rgb8``). Raises nothing."""
    if not available() or not plain_grey16(data[:33], max_pixels):
        return None
    try:
        grey_alpha = pyspng.c.spng_decode_image_bytes(data, pyspng.c.SPNG_FMT_GA16)
    except (RuntimeError, ValueError):
        return None
    return grey_alpha[:, :, 0]


def _read_plain(path: Path, plain, max_pixels: int | None) -> bytes | None:
    """The bytes of the file at ``path`` when its header passes ``plain``; None otherwise or when it cannot
    be read (the caller's decoder then reports it). Reads the header first, so other files are not read
    twice. Raises nothing."""
    try:
        with open(path, "rb") as handle:
            if not plain(handle.read(33), max_pixels):
                return None
            handle.seek(0)
            return handle.read()
    except OSError:
        return None


def read_rgb8(path: Path, max_pixels: int | None) -> np.ndarray | None:
    """``decode_rgb8`` of the file at ``path``; None also when it cannot be read. Raises nothing."""
    if not available():
        return None
    data = _read_plain(path, plain_rgb8, max_pixels)
    return None if data is None else decode_rgb8(data, max_pixels)


def read_grey16(path: Path, max_pixels: int | None) -> np.ndarray | None:
    """``decode_grey16`` of the file at ``path``; None also when it cannot be read. Raises nothing."""
    if not available():
        return None
    data = _read_plain(path, plain_grey16, max_pixels)
    return None if data is None else decode_grey16(data, max_pixels)
