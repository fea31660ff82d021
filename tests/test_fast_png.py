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
from rpx_tasks.decoding import decode_depth_m, decode_rgb
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


def depth_like(height: int, width: int, seed: int) -> np.ndarray:
    """Millimetre depth: a slanted plane with noise, holes (0) and the extreme values 1 and 65535."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    depth = 800 + 6 * yy + 2 * xx + rng.normal(0, 15, (height, width))
    depth[rng.random((height, width)) < 0.1] = 0
    depth.reshape(-1)[:2] = (1, 65535)
    return np.clip(depth, 0, 65535).astype(np.uint16)


def pil_grey16(array: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", **options)  # uint16 -> mode I;16
    return buffer.getvalue()


@pytest.mark.parametrize(
    "depth",
    [depth_like(480, 640, 0), depth_like(7, 5, 1), depth_like(1, 2, 2), np.zeros((9, 4), np.uint16)],
    ids=["vga", "7x5", "1x2", "all-holes"],
)
@pytest.mark.parametrize(
    "encode",
    [lambda a: pil_grey16(a), lambda a: pil_grey16(a, compress_level=9), png_bytes],
    ids=["pil", "pil-level9", "sample-writer"],
)
def test_libspng_gives_exactly_pillows_depth(depth, encode, tmp_path, monkeypatch):
    data = encode(depth)
    fast = fast_png.decode_grey16(data, Image.MAX_IMAGE_PIXELS)
    assert fast is not None and fast.dtype == np.uint16 and fast.shape == depth.shape
    np.testing.assert_array_equal(fast, np.asarray(Image.open(io.BytesIO(data))))
    np.testing.assert_array_equal(fast, depth)
    path = tmp_path / "depth.png"
    path.write_bytes(data)
    np.testing.assert_array_equal(fast_png.read_grey16(path, Image.MAX_IMAGE_PIXELS), depth)  # libspng's path
    metres = decode_depth_m(path, "s")
    monkeypatch.setenv("RPX_PNG_DECODER", "pil")
    by_pillow = decode_depth_m(path, "s")
    assert metres.dtype == by_pillow.dtype == np.float32
    np.testing.assert_array_equal(metres, by_pillow)  # bit for bit


def test_only_plain_16_bit_grey_depth_takes_libspng(tmp_path):
    eight_bit = pil_png(np.arange(48, dtype=np.uint8).reshape(6, 8))
    assert fast_png.decode_grey16(eight_bit, None) is None  # 8-bit grey: Pillow
    path = tmp_path / "depth8.png"
    path.write_bytes(eight_bit)
    expected = np.divide(np.arange(48).reshape(6, 8), 1000.0, dtype=np.float32)
    np.testing.assert_array_equal(decode_depth_m(path, "s"), expected)
    assert fast_png.decode_grey16(pil_png(camera_like(4, 4, 0)), None) is None  # RGB
    data = pil_grey16(depth_like(100, 101, 3))
    assert fast_png.decode_grey16(data, 10_100) is not None
    assert fast_png.decode_grey16(data, 10_000) is None  # Pillow's bomb check decides
    with pytest.raises(ManifestError, match="not 2-D"):
        path.write_bytes(pil_png(camera_like(4, 4, 0)))
        decode_depth_m(path, "s")


# kind -> (a valid file's bytes, libspng's decoder, rpx's decoder, the byte flipped to corrupt it)
BROKEN = {
    "rgb": (lambda: pil_png(camera_like(48, 64, 4)), fast_png.decode_rgb8, decode_rgb, 5000),
    "depth": (lambda: pil_grey16(depth_like(48, 64, 4)), fast_png.decode_grey16, decode_depth_m, 3000),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
@pytest.mark.parametrize("decoder", ["spng", "pil"])
def test_a_broken_file_is_the_same_manifest_error_with_either_decoder(kind, decoder, tmp_path, monkeypatch):
    if decoder == "pil":
        monkeypatch.setenv("RPX_PNG_DECODER", "pil")
    assert fast_png.available() == (decoder == "spng")
    make, spng_decode, decode, flip = BROKEN[kind]
    data = make()
    path = tmp_path / f"{kind}.png"
    for broken in (data[: len(data) // 2], data[:flip] + bytes([data[flip] ^ 0xFF]) + data[flip + 1 :]):
        path.write_bytes(broken)
        assert spng_decode(broken, None) is None
        with pytest.raises(ManifestError, match="not a decodable image") as info:
            decode(path, "s-1")
        assert info.value.details["sample"] == "s-1"
    with pytest.raises(ManifestError, match="not found"):
        decode(tmp_path / "missing.png", "s-1")
