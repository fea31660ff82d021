"""Scene-cluster bootstrap of a mean (or of a mean difference), vectorised with numpy.

Frames of one scene are correlated, so the resampling unit is the scene: one replicate draws
``S`` scenes with replacement out of the ``S`` scenes present (uniformly, ``Generator.integers``
of ``numpy.random.default_rng(seed)``), every drawn scene contributes all of its frames, and the
replicate's value is the mean over the frames drawn (a scene drawn twice counts twice). Missing
values (NaN) are left out of both the sums and the frame counts, metric by metric; a replicate with
no valid frame for a metric is NaN and is not used for that metric's interval. The 95% interval is
the percentile interval: the 2.5% and 97.5% quantiles (numpy's linear interpolation) of the
replicates. The same ``seed`` and data give the same interval.

All metrics share one matrix of scene counts ``C`` (resamples x scenes): with the per-scene sums
``T`` and valid-frame counts ``V`` (scenes x metrics), the replicates are ``(C @ T) / (C @ V)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rpx_tasks.errors import ConfigError, MetricError

CONFIDENCE = 0.95


@dataclass(frozen=True)
class BootstrapResult:
    """Per metric: the mean over all frames (``estimate``) and its percentile interval (``low``, ``high``)."""

    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    frames: np.ndarray  # valid frames per metric


def scene_codes(scenes: np.ndarray) -> tuple[np.ndarray, int]:
    """Return (an integer code per frame, the number of distinct scenes) for an array of scene ids."""
    _, codes = np.unique(np.asarray(scenes), return_inverse=True)
    codes = codes.reshape(-1)
    return codes, int(codes.max()) + 1 if codes.size else 0


def resample_counts(num_scenes: int, resamples: int, seed: int) -> np.ndarray:
    """Return a (resamples, num_scenes) int matrix: how often each scene is drawn in each replicate.

    Each row draws ``num_scenes`` scene indices with replacement (``default_rng(seed).integers``).
    Raises ConfigError when ``resamples`` < 1.
    """
    if resamples < 1:
        raise ConfigError(f"resamples must be >= 1, got {resamples}.", hint="pass --resamples 1 or more (default 2000)")
    if num_scenes == 0:
        return np.zeros((resamples, 0), dtype=np.int64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, num_scenes, size=(resamples, num_scenes))
    offsets = (np.arange(resamples, dtype=np.int64) * num_scenes)[:, None]
    return np.bincount((draws + offsets).ravel(), minlength=resamples * num_scenes).reshape(resamples, num_scenes)


def scene_sums(values: np.ndarray, codes: np.ndarray, num_scenes: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (per-scene sums of the valid values, per-scene counts of valid values), each (scenes, metrics).

    ``values``: (frames, metrics) float, NaN where missing; ``codes``: the scene code of each frame.
    """
    values = np.asarray(values, dtype=np.float64).reshape(len(codes), -1)
    valid = np.isfinite(values)
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    sums = np.zeros((num_scenes, values.shape[1]))
    counts = np.zeros((num_scenes, values.shape[1]))
    if len(codes):
        starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
        present = sorted_codes[starts]
        sums[present] = np.add.reduceat(np.where(valid, values, 0.0)[order], starts, axis=0)
        counts[present] = np.add.reduceat(valid[order].astype(np.float64), starts, axis=0)
    return sums, counts


def bootstrap_replicates(values: np.ndarray, scenes: np.ndarray, *, resamples: int, seed: int) -> np.ndarray:
    """Return the (resamples, metrics) replicate means of ``values`` (frames, metrics) clustered by ``scenes``.

    NaN where a replicate holds no valid frame of a metric. Raises ConfigError when ``resamples`` < 1.
    """
    codes, num_scenes = scene_codes(scenes)
    return _replicates(*scene_sums(values, codes, num_scenes), resamples=resamples, seed=seed)


def _replicates(sums: np.ndarray, counts: np.ndarray, *, resamples: int, seed: int) -> np.ndarray:
    """Return the replicate means (resamples, metrics) of per-scene ``sums`` and valid ``counts``."""
    weights = resample_counts(len(sums), resamples, seed).astype(np.float64)
    totals, frames = weights @ sums, weights @ counts
    return np.divide(totals, frames, out=np.full_like(totals, np.nan), where=frames > 0)


def scene_bootstrap(
    values: np.ndarray, scenes: np.ndarray, *, resamples: int = 2000, seed: int = 0, confidence: float = CONFIDENCE
) -> BootstrapResult:
    """Return the mean of each column of ``values`` (frames, metrics; NaN = missing) over its valid frames and
    its scene-cluster percentile bootstrap interval (see the module doc). A metric without valid frames gets NaN
    everywhere. Raises ConfigError when ``resamples`` < 1, MetricError when the lengths differ."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if len(values) != len(scenes):
        raise MetricError(
            f"{len(values)} rows of values but {len(scenes)} scene ids.",
            hint="pass one scene id per row of values",
        )
    codes, num_scenes = scene_codes(scenes)
    sums, counts = scene_sums(values, codes, num_scenes)
    frames = counts.sum(axis=0)
    estimate = np.divide(sums.sum(axis=0), frames, out=np.full(values.shape[1], np.nan), where=frames > 0)
    replicates = _replicates(sums, counts, resamples=resamples, seed=seed)
    tail = (1.0 - confidence) / 2.0
    low = np.full(values.shape[1], np.nan)
    high = np.full(values.shape[1], np.nan)
    usable = np.isfinite(replicates).any(axis=0)
    if usable.any():
        # nanquantile is slow on wide arrays; a replicate is NaN only for metrics with scarce frames.
        chosen = replicates[:, usable]
        if np.isfinite(chosen).all():
            bounds = np.quantile(chosen, [tail, 1.0 - tail], axis=0)
        else:
            bounds = np.nanquantile(chosen, [tail, 1.0 - tail], axis=0)
        low[usable], high[usable] = bounds
    return BootstrapResult(estimate=estimate, low=low, high=high, frames=frames.astype(np.int64))
