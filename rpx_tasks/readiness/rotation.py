"""In-plane rotation of depth and label maps about the image centre, as OpenCV's ``warpAffine``.

Temporal stability (§8.3) aligns the next frame of a clip to the previous one with these. The
maps are rotated from inside a one-pixel ring of the border value (``ringed``), which lets
Pillow's affine transform reproduce OpenCV's constant border; the temporal accumulators keep
their frames in such ringed buffers so that no copy is needed before a rotation.

The maps cross into Pillow and back through Arrow (``Image.fromarrow`` and Pillow's Arrow export, Pillow
>= 11.2 with pyarrow), which shares the memory: ``Image.fromarray`` copies float32 and int32 maps in and
``np.asarray`` copies the result out, together ~1.5 ms of the ~4.5 ms a VGA rotation took. Where that is not
available (an older Pillow) or the buffer is not contiguous, the copying path gives the same pixels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

from rpx_tasks.errors import MetricError


def rotate_about_centre(depth: np.ndarray, angle_deg: float) -> np.ndarray:
    """Return ``depth`` rotated by ``angle_deg`` about (w/2, h/2), as float32 (H, W).

    Same mapping as OpenCV's ``warpAffine(depth, getRotationMatrix2D((w/2, h/2), angle, 1),
    (w, h))`` with bilinear interpolation and a constant 0 border: a positive angle turns
    the content counter-clockwise on screen, and neighbours outside the image count as 0
    (OpenCV's 1/32-pixel quantisation of sample positions is not reproduced). Raises
    MetricError when ``depth`` is not 2-D.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise MetricError(f"Depth map must have 2 dims; got {depth.ndim}.", hint="Pass an (H, W) depth map.")
    padded = ringed(depth.shape, np.float32, 0.0)
    padded[1:-1, 1:-1] = depth
    return rotate_ringed(padded, angle_deg, Image.Resampling.BILINEAR, 0.0)


def rotate_labels_about_centre(labels: np.ndarray, angle_deg: float) -> np.ndarray:
    """Return the label map ``labels`` rotated by ``angle_deg`` about (w/2, h/2), as int32 (H, W).

    Same mapping as ``rotate_about_centre`` but nearest-neighbour with a constant -1 border,
    like OpenCV's ``warpAffine(..., flags=INTER_NEAREST, borderValue=-1)`` (up to OpenCV's
    1/1024-pixel quantisation of sample positions). Raises MetricError when ``labels`` is not 2-D.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise MetricError(f"Label map must have 2 dims; got {labels.ndim}.", hint="Pass an (H, W) mask.")
    padded = ringed(labels.shape, np.int32, -1)
    padded[1:-1, 1:-1] = labels
    return np.array(rotate_ringed(padded, angle_deg, Image.Resampling.NEAREST, -1))  # writable


def ringed(shape: tuple[int, ...], dtype: Any, ring_value: float) -> np.ndarray:
    """Return a new (H + 2, W + 2) array of ``dtype`` filled with ``ring_value``, for an (H, W)
    ``shape``: the image goes in ``[1:-1, 1:-1]`` and the one-pixel ring stays the warp's border.
    Raises ValueError when ``shape`` is not 2-D."""
    h, w = shape
    return np.full((h + 2, w + 2), ring_value, dtype)


def rotate_ringed(padded: np.ndarray, angle_deg: float, resample: Image.Resampling, border: float) -> np.ndarray:
    """Return the image inside ``padded``'s one-pixel ring of ``border`` rotated by ``angle_deg``
    about its centre, as an (H, W) array of ``padded``'s dtype (it may be read-only); see
    ``rotate_about_centre``. Raises what Pillow raises for a dtype it cannot hold.

    Pillow clamps to the edge pixel within half a pixel of the border and fills beyond it;
    reading from inside a ring of the border value makes both of those OpenCV's constant border
    (for nearest sampling too: Pillow floors the position, so the ring stands for the half
    pixel OpenCV rounds out of the image).
    """
    h, w = padded.shape[0] - 2, padded.shape[1] - 2
    # OpenCV: forward M = [[c, s, (1-c)cx - s cy], [-s, c, s cx + (1-c)cy]]; warpAffine
    # samples the source at inv(M) applied to integer output pixel centres.
    radians = math.radians(angle_deg)
    c, s = math.cos(radians), math.sin(radians)
    cx, cy = w / 2.0, h / 2.0
    tx, ty = (1 - c) * cx - s * cy, s * cx + (1 - c) * cy
    inverse = ((c, -s, -(c * tx - s * ty)), (s, c, -(s * tx + c * ty)))
    # Pillow maps output pixel (x, y) through (x + 0.5, y + 0.5) and reads the input at a
    # continuous coordinate whose pixel centres sit at i + 0.5; the ring shifts by 1 more.
    coeffs: list[float] = []
    for a, b, t in inverse:
        coeffs += [a, b, t + 1.5 - 0.5 * (a + b)]
    warped = _pillow_view(padded).transform(
        (w, h), Image.Transform.AFFINE, tuple(coeffs), resample=resample, fillcolor=border
    )
    return _numpy_view(warped, padded.dtype)


_ARROW_MODES = {np.dtype(np.float32): "F", np.dtype(np.int32): "I"}


def _pillow_view(array: np.ndarray) -> Image.Image:
    """A Pillow image of the 2-D ``array``: over its memory through Arrow where possible, else a copy."""
    mode = _ARROW_MODES.get(array.dtype)
    if mode is not None and array.flags.c_contiguous and hasattr(Image, "fromarrow"):
        import pyarrow

        try:
            return Image.fromarrow(pyarrow.array(array.reshape(-1)), mode, (array.shape[1], array.shape[0]))
        except (ValueError, TypeError, NotImplementedError, pyarrow.ArrowException):
            pass
    return Image.fromarray(array)


def _numpy_view(image: Image.Image, dtype: Any) -> np.ndarray:
    """The (H, W) pixels of ``image`` as ``dtype`` (read-only): Pillow's memory through Arrow where possible,
    else a copy."""
    if _ARROW_MODES.get(np.dtype(dtype)) == image.mode and hasattr(image, "__arrow_c_array__"):
        import pyarrow

        try:
            pixels = pyarrow.array(image).to_numpy(zero_copy_only=True)
            if pixels.dtype == dtype and pixels.size == image.width * image.height:
                return pixels.reshape(image.height, image.width)
        except (ValueError, TypeError, NotImplementedError, pyarrow.ArrowException):
            pass
    return np.asarray(image, dtype=dtype)
