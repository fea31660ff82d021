"""The device-side data path of the HF fast paths: the image processor's resize, rescale, normalise and pad
as torch ops on the run's device.

Decoded uint8 frames are staged in one host tensor (page-locked when the device is not the CPU) and copied
to the device with ``non_blocking=True``; everything after that runs on the device, and the model's inputs
never come back to the host. The same code runs with ``device="cpu"`` (the staging tensor is then plain
memory and the copy a no-op).

Matching the processor: transformers' PIL image processors resize uint8 frames with Pillow, which
resamples in two separable passes (horizontal, then vertical) with fixed-point filter coefficients
(22 fractional bits) and rounds and clips to uint8 after each pass. :func:`resize_like_pil` does exactly
that with integer torch ops (Pillow's coefficients, int32 accumulators, the same rounding), so the resized
frame equals Pillow's and the normalised input differs from the processor's only by float rounding.

Geometry (output size, resized region, padding, ``pixel_mask``) is read off the processor itself: it is
run once per frame size on a white probe frame. Then a second probe, a synthetic frame with noise, is
run through both paths: if the largest absolute difference of the normalised input exceeds
``MAX_ABS_DIFF`` (a processor with steps this module does not know), :class:`DevicePreprocessor` falls
back to the processor for good and says so in ``record()``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from rpx_tasks.errors import AdapterError

logger = logging.getLogger(__name__)

MAX_ABS_DIFF = 1e-2
_PRECISION_BITS = 22  # Pillow's Resample.c: 32 - 8 - 2

# Pillow's resampling filters (Resample.c): support and kernel.


def _bicubic(x: float) -> float:
    a = -0.5
    x = abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    if x < 2.0:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


def _bilinear(x: float) -> float:
    x = abs(x)
    return 1.0 - x if x < 1.0 else 0.0


def _box(x: float) -> float:
    return 1.0 if -0.5 < x <= 0.5 else 0.0


def _hamming(x: float) -> float:
    x = abs(x)
    if x == 0.0:
        return 1.0
    if x >= 1.0:
        return 0.0
    x *= math.pi
    return math.sin(x) / x * (0.54 + 0.46 * math.cos(x))


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x *= math.pi
    return math.sin(x) / x


def _lanczos(x: float) -> float:
    return _sinc(x) * _sinc(x / 3) if -3.0 <= x < 3.0 else 0.0


# PIL resample code -> (support, filter); 0 (NEAREST) is handled apart.
_FILTERS: dict[int, tuple[float, Callable[[float], float]]] = {
    1: (3.0, _lanczos),
    2: (1.0, _bilinear),
    3: (2.0, _bicubic),
    4: (0.5, _box),
    5: (1.0, _hamming),
}
NEAREST = 0


def pil_taps(in_size: int, out_size: int, resample: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's resampling taps from ``in_size`` to ``out_size`` pixels: (indices (out, K) int64,
    fixed-point weights (out, K) int32), as Resample.c's ``precompute_coeffs`` + ``normalize_coeffs_8bpc``.
    Unused taps point at a valid pixel with weight 0. Raises KeyError for a filter not in ``_FILTERS``."""
    support, kernel = _FILTERS[resample]
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support *= filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    indices = np.zeros((out_size, ksize), np.int64)
    weights = np.zeros((out_size, ksize), np.int32)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        taps = [kernel((x + xmin - center + 0.5) / filterscale) for x in range(xmax)]
        total = sum(taps)
        for x, value in enumerate(taps):
            value = value / total if total != 0.0 else value
            weights[xx, x] = int(value * (1 << _PRECISION_BITS) + (0.5 if value >= 0 else -0.5))
            indices[xx, x] = xmin + x
        indices[xx, xmax:] = xmin
    return indices, weights


def _nearest_indices(in_size: int, out_size: int) -> np.ndarray:
    """Pillow's NEAREST source index of every output pixel: its affine transform starts at scale / 2 and adds
    ``scale`` per pixel in double precision (the running sum, not (x + 0.5) * scale), truncated."""
    scale = in_size / out_size
    positions = np.cumsum(np.full(out_size, scale)) - scale + scale * 0.5
    return np.minimum(positions.astype(np.int64), in_size - 1)


class _Taps:
    """The device tensors of the taps of one (in, out, filter), built once."""

    def __init__(self, in_size: int, out_size: int, resample: int, device: Any):
        import torch

        if resample == NEAREST:
            self.indices = torch.from_numpy(_nearest_indices(in_size, out_size)).to(device)
            self.weights = None
        else:
            indices, weights = pil_taps(in_size, out_size, resample)
            self.indices = torch.from_numpy(indices).to(device)
            self.weights = torch.from_numpy(weights).to(device)


def _resample_pass(x: Any, taps: _Taps, dim: int) -> Any:
    """One Pillow pass along ``dim`` of an int32 tensor of uint8 values; returns int32 values 0..255."""
    import torch

    if taps.weights is None:
        return x.index_select(dim, taps.indices)
    shape = [1] * x.dim()
    shape[dim] = taps.indices.shape[0]
    accumulator = None
    for k in range(taps.indices.shape[1]):
        term = x.index_select(dim, taps.indices[:, k]) * taps.weights[:, k].reshape(shape)
        accumulator = term if accumulator is None else accumulator.add_(term)
    accumulator.add_(1 << (_PRECISION_BITS - 1))
    return torch.clamp(torch.bitwise_right_shift(accumulator, _PRECISION_BITS), 0, 255)


class PilResizer:
    """Resizes (N, C, H, W) uint8-valued tensors on ``device`` exactly as Pillow resizes uint8 images."""

    def __init__(self, device: Any, resample: int):
        if resample != NEAREST and resample not in _FILTERS:
            raise AdapterError(
                f"Unknown Pillow resampling filter {resample!r}.", hint="use a PIL.Image.Resampling code (0-5)"
            )
        self.device = device
        self.resample = resample
        self._taps: dict[tuple[int, int], _Taps] = {}

    def _taps_for(self, in_size: int, out_size: int) -> _Taps:
        key = (in_size, out_size)
        if key not in self._taps:
            self._taps[key] = _Taps(in_size, out_size, self.resample, self.device)
        return self._taps[key]

    def __call__(self, frames: Any, height: int, width: int) -> Any:
        """``frames`` (N, C, H, W) integer tensor resized to (height, width); returns int32 values 0..255."""
        import torch

        x = frames.to(torch.int32)
        if x.shape[-1] != width:
            x = _resample_pass(x, self._taps_for(x.shape[-1], width), 3)
        if x.shape[-2] != height:
            x = _resample_pass(x, self._taps_for(x.shape[-2], height), 2)
        return x


def resize_like_pil(frames: Any, height: int, width: int, resample: int) -> Any:
    """``frames`` (N, C, H, W, uint8 values) resized to (height, width) as Pillow resizes a uint8 image with
    filter ``resample`` (a ``PIL.Image.Resampling`` code); int32 values 0..255 on the frames' device."""
    return PilResizer(frames.device, resample)(frames, height, width)


@dataclass(frozen=True)
class Geometry:
    """Where the processor puts a frame of one size: output (height, width), the resized region's top-left
    and size, and whether it returns a ``pixel_mask``."""

    out_height: int
    out_width: int
    top: int
    left: int
    height: int
    width: int
    mask: bool


def probe_frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A synthetic (height, width, 3) uint8 frame: colour gradients plus noise (resampling overshoots and
    clipping show on it)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx / max(width, 1), yy / max(height, 1), (xx + yy) / max(width + height, 1)], -1) * 255.0
    return np.clip(base + rng.normal(0.0, 24.0, (height, width, 3)), 0, 255).astype(np.uint8)


class DevicePreprocessor:
    """The image processor's resize, rescale, normalise and pad as torch ops on ``device``.

    ``__call__(frames)`` takes same-sized (H, W, 3) uint8 frames and returns the model inputs
    (``pixel_values`` float32, and ``pixel_mask`` when the processor gives one) on the device, or None
    when this processor runs on the host instead (``active`` False: unsupported, or its probe differed by
    more than ``MAX_ABS_DIFF``; ``record()`` says why).
    """

    def __init__(self, processor: Any, device: str):
        import torch

        self.processor = processor
        self.device = torch.device(device)
        self.pin = self.device.type != "cpu"
        self.active = True
        self.reason: str | None = None
        self.max_abs_diff: float | None = None
        self._geometry: dict[tuple[int, int], Geometry] = {}
        self._resizer: PilResizer | None = None
        self._mean = self._std = None
        self._check_supported()

    def _check_supported(self) -> None:
        p = self.processor
        needed = ("do_resize", "resample", "do_rescale", "rescale_factor", "do_normalize", "image_mean", "image_std")
        missing = [name for name in needed if not hasattr(p, name)]
        if missing:
            self._disable(f"the processor {type(p).__name__} has no {', '.join(missing)}")
            return
        if getattr(p, "do_center_crop", False) or getattr(p, "do_reduce_labels", False):
            self._disable(f"{type(p).__name__} crops or remaps labels")
            return
        try:
            resample = int(p.resample) if p.resample is not None else 2
            self._resizer = PilResizer(self.device, resample)
        except (AdapterError, TypeError, ValueError):
            self._disable(f"unknown resampling filter {p.resample!r}")
            return
        self._mean, self._std = self._per_channel(p.image_mean), self._per_channel(p.image_std)

    def _per_channel(self, values: Any) -> Any:
        """A (1, 3, 1, 1) float32 device tensor of a processor's mean or std (a number or three)."""
        import torch

        three = np.broadcast_to(np.asarray(values, np.float32), (3,)).copy()
        return torch.tensor(three, device=self.device).view(1, 3, 1, 1)

    def _disable(self, reason: str) -> None:
        self.active = False
        self.reason = reason

    def record(self) -> dict[str, Any]:
        """What result.json keeps: ``data_path`` (``device`` or ``processor``), the probe's
        ``preprocess_max_abs_diff`` and, on the processor path, why."""
        record: dict[str, Any] = {"data_path": "device" if self.active else "processor"}
        if self.max_abs_diff is not None:
            record["preprocess_max_abs_diff"] = self.max_abs_diff
        if self.reason:
            record["data_path_reason"] = self.reason
        return record

    def geometry(self, height: int, width: int) -> Geometry:
        """Where the processor puts a (height, width) frame, read off a white probe frame (cached per size)."""
        key = (height, width)
        if key not in self._geometry:
            out = self.processor(images=[np.full((height, width, 3), 255, np.uint8)], return_tensors="np")
            values = np.asarray(out["pixel_values"])[0, 0]
            rows, cols = np.nonzero(values)
            if rows.size == 0:
                raise AdapterError(
                    f"The output of {type(self.processor).__name__} for a white frame is all zeros.",
                    hint="its preprocessing runs on the host (device_preprocess=false)",
                )
            self._geometry[key] = Geometry(
                out_height=values.shape[0],
                out_width=values.shape[1],
                top=int(rows.min()),
                left=int(cols.min()),
                height=int(rows.max()) + 1 - int(rows.min()),
                width=int(cols.max()) + 1 - int(cols.min()),
                mask="pixel_mask" in out,
            )
        return self._geometry[key]

    def to_device(self, frames: list[np.ndarray]) -> Any:
        """Stage ``frames`` (same-sized (H, W, 3) uint8) in one host tensor, page-locked off the CPU, and copy it
        to the device without blocking; returns the (N, H, W, 3) uint8 device tensor."""
        import torch

        height, width = frames[0].shape[:2]
        staged = torch.empty((len(frames), height, width, 3), dtype=torch.uint8, pin_memory=self.pin)
        host = staged.numpy()
        for index, frame in enumerate(frames):
            host[index] = frame
        return staged.to(self.device, non_blocking=True)

    def transform(self, frames: Any) -> dict[str, Any]:
        """The model inputs of (N, H, W, 3) uint8 ``frames`` already on the device."""
        import torch

        p = self.processor
        geometry = self.geometry(frames.shape[1], frames.shape[2])
        x = frames.permute(0, 3, 1, 2)
        if p.do_resize:
            x = self._resizer(x, geometry.height, geometry.width)
        x = x.to(torch.float32)
        if p.do_rescale:
            x = x * float(p.rescale_factor)
        if p.do_normalize:
            x = (x - self._mean) / self._std
        n, g = x.shape[0], geometry
        rows, cols = slice(g.top, g.top + g.height), slice(g.left, g.left + g.width)
        if (g.out_height, g.out_width) != (g.height, g.width):
            padded = torch.zeros((n, 3, g.out_height, g.out_width), dtype=x.dtype, device=x.device)
            padded[:, :, rows, cols] = x
            x = padded
        inputs = {"pixel_values": x.contiguous()}
        if g.mask:
            mask = torch.zeros((n, g.out_height, g.out_width), dtype=torch.int64, device=x.device)
            mask[:, rows, cols] = 1
            inputs["pixel_mask"] = mask
        return inputs

    def verify(self, height: int, width: int) -> None:
        """Compare both paths on a probe frame of (height, width) once per size; past ``MAX_ABS_DIFF`` (or when
        the processor's output has another layout) switch to the processor for good, with a warning."""
        if not self.active or (height, width) in self._geometry:
            return
        frame = probe_frame(height, width)
        try:
            expected = np.asarray(self.processor(images=[frame], return_tensors="np")["pixel_values"], np.float32)
            got = self.transform(self.to_device([frame]))["pixel_values"].cpu().numpy()
        except Exception as exc:  # any processor quirk: the processor path stays correct
            self._disable(f"the device path could not follow the processor ({type(exc).__name__}: {exc})")
            logger.warning("Preprocessing on the host (the image processor): %s.", self.reason)
            return
        if got.shape != expected.shape:
            self._disable(f"the processor's output is {expected.shape}, the device path's {got.shape}")
        else:
            diff = float(np.abs(got - expected).max())
            self.max_abs_diff = max(diff, self.max_abs_diff or 0.0)
            if diff > MAX_ABS_DIFF:
                self._disable(f"the device path differs from the processor by {diff:.3g} (> {MAX_ABS_DIFF})")
        if not self.active:
            logger.warning("Preprocessing on the host (the image processor): %s.", self.reason)

    def __call__(self, frames: list[np.ndarray]) -> dict[str, Any] | None:
        """The model inputs of same-sized uint8 ``frames`` on the device, or None on the processor path."""
        if not self.active:
            return None
        height, width = frames[0].shape[:2]
        self.verify(height, width)
        if not self.active:
            return None
        return self.transform(self.to_device(frames))


__all__ = ["MAX_ABS_DIFF", "DevicePreprocessor", "Geometry", "PilResizer", "pil_taps", "probe_frame", "resize_like_pil"]
