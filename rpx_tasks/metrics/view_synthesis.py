"""Image-quality metrics of a synthesised view (reference §1.4 novel_view_synthesis).

Both images are (H, W, 3) uint8 compared as float64 on the 0-255 scale (data range L = 255),
C1 = (0.01 L)^2 and C2 = (0.03 L)^2:

- ``mse``: the mean of (p - g)^2 over every pixel and channel;
- ``psnr = 10 log10(255^2 / mse)``, 100.0 when mse = 0 (higher is better; the primary metric);
- ``ssim``: the reference's **global** single-window SSIM over all values at once (the three
  channels pooled), with population (co)variances:
  ``(2 mu_p mu_g + C1)(2 s_pg + C2) / ((mu_p^2 + mu_g^2 + C1)(s_p^2 + s_g^2 + C2))``,
  1.0 when the denominator is <= 0;
- ``ssim_windowed``: the standard windowed SSIM of Wang et al. (2004) with scikit-image's
  ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
  data_range=255, channel_axis=-1)`` convention: per colour channel, local means, population
  variances and covariance under a Gaussian window (sigma ``SSIM_SIGMA`` = 1.5, truncated at 3.5
  sigma: ``SSIM_WINDOW`` = 11 taps, normalised), the SSIM map above per pixel, the border of
  (11 - 1) // 2 = 5 pixels cropped, the mean over the rest, then the mean over the channels.
  Only window positions that lie wholly inside the image count (the crop), so padding never
  enters. None when the image is smaller than 11 pixels in either dimension (undefined).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from rpx_tasks.contracts.spec import MetricInfo
from rpx_tasks.contracts.view_synthesis import NovelView
from rpx_tasks.errors import MetricError

DATA_RANGE = 255.0
SSIM_C1 = (0.01 * DATA_RANGE) ** 2
SSIM_C2 = (0.03 * DATA_RANGE) ** 2
PSNR_OF_IDENTICAL_IMAGES = 100.0
SSIM_SIGMA = 1.5
_TRUNCATE = 3.5
_RADIUS = int(_TRUNCATE * SSIM_SIGMA + 0.5)  # 5, as scipy.ndimage / scikit-image truncate the Gaussian
SSIM_WINDOW = 2 * _RADIUS + 1  # 11

VIEW_SYNTHESIS_METRIC_INFO: tuple[MetricInfo, ...] = (
    MetricInfo("psnr", True, "peak signal-to-noise ratio in dB (10 log10(255^2 / mse); 100 when mse = 0)"),
    MetricInfo("mse", False, "mean squared error over every pixel and channel (0-255 scale)"),
    MetricInfo("ssim", True, "global single-window SSIM over the whole image (reference formula)"),
    MetricInfo(
        "ssim_windowed", True, "windowed SSIM (Gaussian sigma 1.5, 11x11, per channel, borders cropped; skimage)"
    ),
)


def _as_image(value: object, role: str) -> np.ndarray:
    """``value`` as an (H, W, 3) float64 array; raises MetricError naming ``role`` otherwise."""
    if not isinstance(value, np.ndarray) or value.ndim != 3 or value.shape[2] != 3:
        shape = getattr(value, "shape", type(value).__name__)
        raise MetricError(
            f"novel_view_synthesis expects an (H, W, 3) image as the {role}, got {shape}.",
            hint="pass predictions through SPEC.validate_prediction: (H, W, 3) uint8",
        )
    return value.astype(np.float64)


def _image_pair(prediction: object, target: object) -> tuple[np.ndarray, np.ndarray]:
    p, g = _as_image(prediction, "prediction"), _as_image(target, "target")
    if p.shape != g.shape:
        raise MetricError(
            f"novel_view_synthesis: prediction {p.shape} and target {g.shape} differ in shape.",
            hint="the output adapter resizes predictions to the target frame; return (H, W, 3) of its size",
        )
    return p, g


def _ssim_formula(mu_p, mu_g, var_p, var_g, cov_pg):
    return (
        (2 * mu_p * mu_g + SSIM_C1) * (2 * cov_pg + SSIM_C2),
        (mu_p**2 + mu_g**2 + SSIM_C1) * (var_p + var_g + SSIM_C2),
    )


def global_ssim(prediction: np.ndarray, target: np.ndarray) -> float:
    """The reference's global single-window SSIM of two (H, W, 3) images (module docstring).

    Returns a float in [-1, 1]; 1.0 when the denominator is <= 0. Raises MetricError when
    either is not an (H, W, 3) array or their shapes differ.
    """
    return _global_ssim(*_image_pair(prediction, target))


def _global_ssim(p: np.ndarray, g: np.ndarray) -> float:
    """``global_ssim`` of two checked float64 images of one shape."""
    mu_p, mu_g = p.mean(), g.mean()
    numerator, denominator = _ssim_formula(mu_p, mu_g, p.var(), g.var(), float(np.mean((p - mu_p) * (g - mu_g))))
    return 1.0 if denominator <= 0 else float(numerator / denominator)


def _gaussian_window() -> np.ndarray:
    offsets = np.arange(-_RADIUS, _RADIUS + 1, dtype=np.float64)
    weights = np.exp(-0.5 * (offsets / SSIM_SIGMA) ** 2)
    return weights / weights.sum()


def _local_mean(image: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The Gaussian-weighted mean of every full window of an (H, W, C) image: (H - 10, W - 10, C)."""
    rows = sliding_window_view(image, len(weights), axis=0) @ weights  # (H - 10, W, C)
    return sliding_window_view(rows, len(weights), axis=1) @ weights  # (H - 10, W - 10, C)


def windowed_ssim(prediction: np.ndarray, target: np.ndarray) -> float | None:
    """The standard windowed SSIM of two (H, W, 3) images (scikit-image convention; module docstring).

    Returns the mean SSIM over the cropped map and the channels, or None when the image is
    smaller than ``SSIM_WINDOW`` pixels in height or width. Raises MetricError when either is
    not an (H, W, 3) array or their shapes differ.
    """
    return _windowed_ssim(*_image_pair(prediction, target))


def _windowed_ssim(p: np.ndarray, g: np.ndarray) -> float | None:
    """``windowed_ssim`` of two checked float64 images of one shape."""
    if min(p.shape[:2]) < SSIM_WINDOW:
        return None
    weights = _gaussian_window()
    mu_p, mu_g = _local_mean(p, weights), _local_mean(g, weights)
    var_p = _local_mean(p * p, weights) - mu_p**2
    var_g = _local_mean(g * g, weights) - mu_g**2
    cov_pg = _local_mean(p * g, weights) - mu_p * mu_g
    numerator, denominator = _ssim_formula(mu_p, mu_g, var_p, var_g, cov_pg)
    per_channel = (numerator / denominator).reshape(-1, p.shape[2]).mean(axis=0)
    return float(per_channel.mean())


def view_synthesis_metrics(prediction: np.ndarray, ground_truth: NovelView) -> dict[str, float | None]:
    """mse, psnr, ssim and ssim_windowed of a predicted view against the sample's target frame.

    Returns ``{psnr, mse, ssim, ssim_windowed}`` (floats; ssim_windowed None on frames smaller
    than 11x11). Raises MetricError when the ground truth is not a NovelView, or the prediction
    is not an (H, W, 3) image of the target's shape.
    """
    if not isinstance(ground_truth, NovelView):
        raise MetricError(
            f"novel_view_synthesis expects NovelView ground truth, got {type(ground_truth).__name__}.",
            hint="load ground truth with SPEC.load_ground_truth",
        )
    p, g = _image_pair(prediction, ground_truth.target_rgb)
    mse = float(np.mean((p - g) ** 2))
    psnr = PSNR_OF_IDENTICAL_IMAGES if mse == 0 else 10.0 * math.log10(DATA_RANGE**2 / mse)
    return {
        "psnr": psnr,
        "mse": mse,
        "ssim": _global_ssim(p, g),  # the images are checked and converted once, above
        "ssim_windowed": _windowed_ssim(p, g),
    }


__all__ = [
    "SSIM_C1",
    "SSIM_C2",
    "SSIM_SIGMA",
    "SSIM_WINDOW",
    "VIEW_SYNTHESIS_METRIC_INFO",
    "global_ssim",
    "view_synthesis_metrics",
    "windowed_ssim",
]
