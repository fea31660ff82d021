"""References of ``rpx_tasks.metrics.view_synthesis``: ``global_ssim``, ``windowed_ssim`` and
``view_synthesis_metrics`` (§1.4 novel_view_synthesis; the windowed SSIM of Wang et al. 2004 in
scikit-image's convention: Gaussian sigma 1.5, 11x11, population statistics, borders cropped)."""

from __future__ import annotations

import math

import numpy as np

from rpx_tasks.contracts.view_synthesis import NovelView
from tests.support.metric_references.table import SEEDS, Case, MetricRow

C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def _values(image) -> list[list[list[float]]]:
    return np.asarray(image, np.float64).tolist()


def ref_global_ssim(prediction, target) -> float:
    p = [v for row in _values(prediction) for pixel in row for v in pixel]
    g = [v for row in _values(target) for pixel in row for v in pixel]
    n = len(p)
    mu_p, mu_g = math.fsum(p) / n, math.fsum(g) / n
    var_p = math.fsum((a - mu_p) ** 2 for a in p) / n
    var_g = math.fsum((b - mu_g) ** 2 for b in g) / n
    cov = math.fsum((a - mu_p) * (b - mu_g) for a, b in zip(p, g)) / n
    denominator = (mu_p**2 + mu_g**2 + C1) * (var_p + var_g + C2)
    return 1.0 if denominator <= 0 else (2 * mu_p * mu_g + C1) * (2 * cov + C2) / denominator


def _window_weights() -> list[list[float]]:
    g = [math.exp(-(k * k) / (2 * 1.5**2)) for k in range(-5, 6)]
    total = math.fsum(a * b for a in g for b in g)
    return [[a * b / total for b in g] for a in g]


def ref_windowed_ssim(prediction, target):
    p, g = _values(prediction), _values(target)
    height, width, channels = len(p), len(p[0]), len(p[0][0])
    if min(height, width) < 11:
        return None
    w = _window_weights()
    channel_means = []
    for c in range(channels):
        values = []
        for i in range(5, height - 5):
            for j in range(5, width - 5):
                cells = [
                    (w[a][b], p[i - 5 + a][j - 5 + b][c], g[i - 5 + a][j - 5 + b][c])
                    for a in range(11)
                    for b in range(11)
                ]
                mx = math.fsum(k * x for k, x, _ in cells)
                my = math.fsum(k * y for k, _, y in cells)
                vx = math.fsum(k * (x - mx) ** 2 for k, x, _ in cells)
                vy = math.fsum(k * (y - my) ** 2 for k, _, y in cells)
                cxy = math.fsum(k * (x - mx) * (y - my) for k, x, y in cells)
                values.append((2 * mx * my + C1) * (2 * cxy + C2) / ((mx * mx + my * my + C1) * (vx + vy + C2)))
        channel_means.append(math.fsum(values) / len(values))
    return math.fsum(channel_means) / channels


def ref_view_synthesis_metrics(prediction, ground_truth: NovelView):
    p = np.asarray(prediction, np.float64).ravel().tolist()
    g = np.asarray(ground_truth.target_rgb, np.float64).ravel().tolist()
    mse = math.fsum((a - b) ** 2 for a, b in zip(p, g)) / len(p)
    return {
        "psnr": 100.0 if mse == 0 else 10 * math.log10(255.0**2 / mse),
        "mse": mse,
        "ssim": ref_global_ssim(prediction, ground_truth.target_rgb),
        "ssim_windowed": ref_windowed_ssim(prediction, ground_truth.target_rgb),
    }


def _random_pair(seed: int, shape=(14, 16, 3)):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 256, shape, dtype=np.uint8)
    prediction = np.clip(target.astype(int) + rng.integers(-40, 41, shape), 0, 255).astype(np.uint8)
    return prediction, target


def _constant(value, shape=(12, 13, 3)):
    return np.full(shape, value, np.uint8)


PAIR_CASES = (
    *(Case(f"random{s}", lambda s=s: _random_pair(s)) for s in SEEDS),
    Case("independent_noise", lambda: (_random_pair(5)[1], _random_pair(6)[1])),
    Case("identical", lambda: (_random_pair(3)[1], _random_pair(3)[1])),
    Case("black_vs_black_smallest_denominator", lambda: (_constant(0), _constant(0))),
    Case("black_vs_white", lambda: (_constant(0), _constant(255))),
    Case("constant_60_vs_90", lambda: (_constant(60), _constant(90))),
    Case("smaller_than_the_window", lambda: _random_pair(4, (10, 30, 3))),
    Case("single_pixel", lambda: (_constant(10, (1, 1, 3)), _constant(200, (1, 1, 3)))),
)


def _as_view_case(case: Case) -> Case:
    def make(make=case.make):
        prediction, target = make()
        return prediction, NovelView(target_rgb=target, target_pose=np.eye(4))

    return Case(case.id, make)


ROWS = (
    MetricRow("view_synthesis:global_ssim", ref_global_ssim, PAIR_CASES),
    MetricRow("view_synthesis:windowed_ssim", ref_windowed_ssim, PAIR_CASES),
    MetricRow(
        "view_synthesis:view_synthesis_metrics",
        ref_view_synthesis_metrics,
        tuple(_as_view_case(case) for case in PAIR_CASES),
        info="view_synthesis:VIEW_SYNTHESIS_METRIC_INFO",
    ),
)
