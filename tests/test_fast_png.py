"""libspng decoding of RGB frames (rpx_tasks.fast_png): the same pixels as Pillow, the same errors, Pillow for
the rest."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from rpx_tasks import fast_png
from rpx_tasks.decoding import decode_rgb
from rpx_tasks.errors import ManifestError
from rpx_tasks.sample_data.encoders import png_bytes

pytest.importorskip("pyspng")


def pil_rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def pil_png(array: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", **options)
    return buffer.getvalue()


def camera_like(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth gradient plus sensor noise: what an RPX frame's bytes look like to a PNG decoder."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 / max(width - 1, 1), yy * 255 / max(height - 1, 1), (xx + yy) % 256], axis=-1)
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    "image",
    [
        camera_like(480, 640, 0),
        camera_like(7, 5, 1),
        camera_like(1, 1, 2),
        np.zeros((33, 17, 3), np.uint8),
        np.random.default_rng(3).integers(0, 256, (64, 48, 3), dtype=np.uint8),
    ],
    ids=["vga-camera", "7x5", "1x1", "black", "uniform-noise"],
)
@pytest.mark.parametrize(
    "encode",
    [
        lambda a: pil_png(a),  # zlib 6, adaptive filters (sub, up, average, paeth)
        lambda a: pil_png(a, compress_level=0),
        lambda a: pil_png(a, compress_level=9),
        png_bytes,  # the sample data's writer: filter 0, zlib 1
    ],
    ids=["pil", "pil-level0", "pil-level9", "sample-writer"],
)
def test_libspng_gives_exactly_pillows_pixels(image, encode, tmp_path):
    data = encode(image)
    fast = fast_png.decode_rgb8(data, Image.MAX_IMAGE_PIXELS)
    assert fast is not None and fast.dtype == np.uint8 and fast.shape == image.shape
    np.testing.assert_array_equal(fast, pil_rgb(data))
    np.testing.assert_array_equal(fast, image)
    path = tmp_path / "frame.png"
    path.write_bytes(data)
    np.testing.assert_array_equal(decode_rgb(path, "s"), image)


@pytest.mark.parametrize(
    "array, mode",
    [
        (np.arange(48, dtype=np.uint8).reshape(6, 8), "L"),
        (np.arange(6 * 8 * 4, dtype=np.uint8).reshape(6, 8, 4) % 251, "RGBA"),
        (np.arange(48, dtype=np.uint8).reshape(6, 8) % 7, "P"),
    ],
)
def test_other_pngs_go_to_pillow_with_the_same_result(array, mode, tmp_path):
    image = Image.fromarray(array)
    if mode == "P":
        image = image.convert("P")
    data = pil_png(np.asarray(image)) if mode != "P" else _save(image)
    assert fast_png.decode_rgb8(data, Image.MAX_IMAGE_PIXELS) is None
    path = tmp_path / "frame.png"
    path.write_bytes(data)
    np.testing.assert_array_equal(decode_rgb(path, "s"), pil_rgb(data))


def _save(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_only_plain_8_bit_rgb_headers_within_the_pixel_limit_qualify():
    def header(width=4, height=3, depth=8, colour=2, interlace=0, kind=b"IHDR") -> bytes:
        body = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)
        return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    assert fast_png.plain_rgb8(header(), None)
    assert not fast_png.plain_rgb8(header(interlace=1), None)  # Adam7: Pillow
    assert not fast_png.plain_rgb8(header(depth=16), None)
    assert not fast_png.plain_rgb8(header(colour=6), None)
    assert not fast_png.plain_rgb8(header(kind=b"IDAT"), None)
    assert not fast_png.plain_rgb8(b"GIF89a" + bytes(40), None)
    assert fast_png.plain_rgb8(header(width=100, height=100), 10_000)
    assert not fast_png.plain_rgb8(header(width=100, height=101), 10_000)  # Pillow's bomb check decides


@pytest.mark.parametrize("decoder", ["spng", "pil"])
def test_a_broken_frame_is_the_same_manifest_error_with_either_decoder(decoder, tmp_path, monkeypatch):
    if decoder == "pil":
        monkeypatch.setenv("RPX_PNG_DECODER", "pil")
    assert fast_png.available() == (decoder == "spng")
    data = pil_png(camera_like(48, 64, 4))
    path = tmp_path / "frame.png"
    for broken in (data[: len(data) // 2], data[:5000] + bytes([data[5000] ^ 0xFF]) + data[5001:]):
        path.write_bytes(broken)
        assert fast_png.decode_rgb8(broken, None) is None
        with pytest.raises(ManifestError, match="not a decodable image") as info:
            decode_rgb(path, "s-1")
        assert info.value.details["sample"] == "s-1"
    with pytest.raises(ManifestError, match="not found"):
        decode_rgb(tmp_path / "missing.png", "s-1")
