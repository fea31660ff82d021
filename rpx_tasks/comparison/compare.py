"""``compare_runs``: the comparison of two finished runs as one JSON-serialisable dict (schema in docs/compare.md).

Samples are paired by id; only the intersection is compared. Every metric's delta is B - A, the
mean over the paired frames where both runs hold the metric, with a scene-cluster bootstrap 95%
interval (``rpx_tasks.comparison.bootstrap``) and a verdict (``rpx_tasks.comparison.verdicts``),
overall, per phase, per difficulty, and for the primary metric per phase x difficulty.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from rpx_tasks.comparison.bootstrap import CONFIDENCE, scene_bootstrap
from rpx_tasks.comparison.identity import identity_warnings, run_summary
from rpx_tasks.comparison.loading import LoadedRun, load_run
from rpx_tasks.comparison.verdicts import REGRESSED, min_delta_for, verdict
from rpx_tasks.constants import PHASES, SPLITS
from rpx_tasks.errors import ConfigError
from rpx_tasks.readiness.phase_cells import ordered

SCHEMA_VERSION = 1

# A metric (or a phase / difficulty group) compared over frames of fewer scenes than this gets no interval
# and the verdict "n/a": resampling a single scene always draws that scene, an interval of width 0.
MIN_SCENES_FOR_INTERVAL = 2

# Scalar deltas read from result.json: (name, path of keys, higher_is_better or "primary" for the primary's).
READINESS_FIELDS: tuple[tuple[str, tuple[str, ...], Any], ...] = (
    ("wps.s_clutter", ("wps", "s_clutter"), "primary"),
    ("wps.s_interaction", ("wps", "s_interaction"), "primary"),
    ("wps.s_clean", ("wps", "s_clean"), "primary"),
    ("wps.s_overall", ("wps", "s_overall"), "primary"),
    ("delta_int", ("str", "str_c_to_i"), None),
    ("delta_rec", ("str", "str_i_to_l"), None),
    ("ts", ("ts", "score"), True),
    ("phi", ("phi", "phi"), True),
    ("j_min", ("jedi", "j_min"), True),
)
COMPUTE_FIELDS: tuple[tuple[str, bool], ...] = (
    ("latency_ms_p50", False),
    ("latency_ms_p95", False),
    ("throughput_sps", True),
    ("peak_host_memory_mb", False),
    ("peak_gpu_memory_mb", False),
)


def _number(value: Any) -> float | None:
    """Return ``value`` as a finite float, or None (a ``{"score": x}`` block gives x)."""
    if isinstance(value, dict):
        value = value.get("score", value.get("value"))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _finite(value: float) -> float | None:
    """Return ``value`` as a float, or None when it is NaN or infinite (JSON has no NaN)."""
    value = float(value)
    return value if math.isfinite(value) else None


def _scalar_delta(name: str, a: Any, b: Any, higher_is_better: bool | None) -> dict[str, Any] | None:
    """Return the ``{name, a, b, delta, higher_is_better}`` entry of a scalar, or None when neither run has it."""
    a, b = _number(a), _number(b)
    if a is None and b is None:
        return None
    delta = b - a if a is not None and b is not None else None
    return {"name": name, "a": a, "b": b, "delta": delta, "higher_is_better": higher_is_better}


def _dig(block: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        block = block.get(key) if isinstance(block, dict) else None
    return block


def readiness_deltas(a: dict[str, Any], b: dict[str, Any], primary_higher: bool | None) -> list[dict[str, Any]]:
    """Return the deltas of WPS per phase, Δ_int, Δ_rec, TS, Φ and J_min (those either run holds)."""
    ready_a, ready_b = a.get("readiness") or {}, b.get("readiness") or {}
    entries = []
    for name, keys, direction in READINESS_FIELDS:
        higher = primary_higher if direction == "primary" else direction
        entry = _scalar_delta(name, _dig(ready_a, keys), _dig(ready_b, keys), higher)
        if entry is not None:
            entries.append(entry)
    return entries


def compute_deltas(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the deltas of latency p50/p95, throughput and peak memory (those either run holds)."""
    comp_a, comp_b = a.get("compute") or {}, b.get("compute") or {}
    entries = [_scalar_delta(name, comp_a.get(name), comp_b.get(name), higher) for name, higher in COMPUTE_FIELDS]
    return [entry for entry in entries if entry is not None]


class _Pairs:
    """The paired frames of two runs: the key columns (from A) and, per metric, the (A, B) value arrays."""

    def __init__(self, a: LoadedRun, b: LoadedRun, metrics: list[str]):
        ids_a, ids_b = a.ids.astype(str), b.ids.astype(str)
        common, index_a, index_b = np.intersect1d(ids_a, ids_b, assume_unique=False, return_indices=True)
        self.only_in_a = int(len(np.unique(ids_a)) - len(common))
        self.only_in_b = int(len(np.unique(ids_b)) - len(common))
        self.scenes, self.phases = a.scenes[index_a], a.phases[index_a]
        self.difficulties = a.difficulties[index_a]
        self.values_a = np.column_stack([a.metrics[name][index_a] for name in metrics]) if metrics else None
        self.values_b = np.column_stack([b.metrics[name][index_b] for name in metrics]) if metrics else None
        self.count = len(common)


def _metric_entries(
    values_a: np.ndarray,
    values_b: np.ndarray,
    scenes: np.ndarray,
    metrics: list[str],
    directions: dict[str, bool | None],
    min_deltas: dict[str, float],
    *,
    resamples: int,
    seed: int,
) -> list[dict[str, Any]]:
    """Return one entry per metric (a column of ``values_a`` / ``values_b``, frames x metrics, paired row by row)
    over those frames: means of A and B where both hold the metric, delta, interval, min_delta and verdict."""
    if not metrics:
        return []
    a, b = values_a, values_b
    diff = b - a  # NaN where either run misses the metric
    both = np.isfinite(diff)
    boot = scene_bootstrap(diff, scenes, resamples=resamples, seed=seed)
    counts = boot.frames  # the frames where both runs hold the metric
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_a = np.where(both, a, 0.0).sum(axis=0) / counts
        mean_b = np.where(both, b, 0.0).sum(axis=0) / counts
    entries = []
    for column, name in enumerate(metrics):
        delta, low, high = boot.estimate[column], boot.low[column], boot.high[column]
        scene_count = len(set(scenes[both[:, column]]))
        if scene_count < MIN_SCENES_FOR_INTERVAL:  # every resample is the same scene: no interval at all
            low = high = float("nan")
        entries.append(
            {
                "metric": name,
                "higher_is_better": directions[name],
                "n": int(counts[column]),
                "scenes": scene_count,
                "a": _finite(mean_a[column]),
                "b": _finite(mean_b[column]),
                "delta": _finite(delta),
                "ci": [_finite(low), _finite(high)],
                "min_delta": min_deltas[name],
                "verdict": verdict(delta, low, high, directions[name], min_deltas[name]),
            }
        )
    return entries


def _check_comparable(a: LoadedRun, b: LoadedRun) -> None:
    """Raise ConfigError when the runs are of different tasks or share no sample id."""
    if a.task != b.task:
        raise ConfigError(
            f"Runs of different tasks cannot be compared: A is {a.task} ({a.folder}), B is {b.task} ({b.folder}).",
            hint="compare two runs of the same task, e.g. two models on one split (see `rpx runs --task TASK`)",
        )


def compare_loaded(
    a: LoadedRun, b: LoadedRun, *, resamples: int = 2000, seed: int = 0, min_delta: dict[str, float] | None = None
) -> dict[str, Any]:
    """Return the comparison dict of two loaded runs (see ``compare_runs``). Raises ConfigError when the runs are
    of different tasks or share no sample id or ``resamples`` < 1."""
    _check_comparable(a, b)
    metrics = [name for name in a.result["aggregated"] if name in a.metrics and name in b.metrics]
    directions = {
        name: (a.result["aggregated"][name] or {}).get(
            "higher_is_better", (b.result["aggregated"].get(name) or {}).get("higher_is_better")
        )
        for name in metrics
    }
    pairs = _Pairs(a, b, metrics)
    if pairs.count == 0:
        raise ConfigError(
            f"The runs share no sample id ({a.folder}, {b.folder}).",
            hint="compare runs of the same split and data (see `rpx runs`)",
        )
    means_a = {
        name: _finite(np.nanmean(pairs.values_a[:, i])) if np.isfinite(pairs.values_a[:, i]).any() else None
        for i, name in enumerate(metrics)
    }
    min_deltas = {name: min_delta_for(name, means_a[name], min_delta) for name in metrics}

    def entries(rows: np.ndarray, names: list[str] = metrics) -> list[dict[str, Any]]:
        chosen = [metrics.index(name) for name in names]
        return _metric_entries(
            pairs.values_a[rows][:, chosen],
            pairs.values_b[rows][:, chosen],
            pairs.scenes[rows],
            names,
            directions,
            min_deltas,
            resamples=resamples,
            seed=seed,
        )

    everything = np.ones(pairs.count, dtype=bool)
    overall = entries(everything)
    primary_name = a.primary_metric
    primary = next((entry for entry in overall if entry["metric"] == primary_name), None)
    phases = ordered(pairs.phases, PHASES)
    difficulties = ordered(pairs.difficulties, SPLITS)
    by_phase = [
        {"phase": phase, "n": int((pairs.phases == phase).sum()), "metrics": entries(pairs.phases == phase)}
        for phase in phases
    ]
    by_difficulty = [
        {
            "difficulty": level,
            "n": int((pairs.difficulties == level).sum()),
            "metrics": entries(pairs.difficulties == level),
        }
        for level in difficulties
    ]
    cells = []
    for phase in phases:
        for level in difficulties:
            rows = (pairs.phases == phase) & (pairs.difficulties == level)
            if rows.any() and primary is not None:
                cells.append(
                    {"phase": phase, "difficulty": level, "n": int(rows.sum()), **entries(rows, [primary_name])[0]}
                )
    summary_a, summary_b = run_summary(a), run_summary(b)
    return {
        "schema_version": SCHEMA_VERSION,
        "task": a.task,
        "bootstrap": {
            "unit": "scene",
            "resamples": resamples,
            "seed": seed,
            "confidence": CONFIDENCE,
            "interval": "percentile",
        },
        "runs": {"a": summary_a, "b": summary_b},
        "pairing": {
            "paired": pairs.count,
            "only_in_a": pairs.only_in_a,
            "only_in_b": pairs.only_in_b,
            "scenes": int(len(np.unique(pairs.scenes))),
        },
        "primary": primary
        if primary is not None
        else {
            "metric": primary_name,
            "higher_is_better": directions.get(primary_name),
            "n": 0,
            "scenes": 0,
            "a": None,
            "b": None,
            "delta": None,
            "ci": [None, None],
            "min_delta": None,
            "verdict": "n/a",
        },
        "regressed": bool(primary is not None and primary["verdict"] == REGRESSED),
        "metrics": overall,
        "by_phase": by_phase,
        "by_difficulty": by_difficulty,
        "by_phase_difficulty": cells,
        "readiness": readiness_deltas(a.result, b.result, directions.get(primary_name)),
        "compute": compute_deltas(a.result, b.result),
        "warnings": identity_warnings(summary_a, summary_b),
    }


def compare_runs(
    a: Path | str,
    b: Path | str,
    *,
    resamples: int = 2000,
    seed: int = 0,
    min_delta: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Compare run ``b`` against run ``a`` (each a run folder, its result.json, or a results folder / ``latest``).

    Returns the JSON-serialisable comparison that ``rpx compare --json`` prints (schema in docs/compare.md:
    ``schema_version``, ``runs``, ``pairing``, ``primary``, ``metrics``, ``by_phase``, ``by_difficulty``,
    ``by_phase_difficulty``, ``readiness``, ``compute``, ``warnings``). ``min_delta`` overrides the default
    minimum |delta| of the metrics it names. Raises ConfigError when either is not a finished run, the runs are
    of different tasks or share no sample, or ``resamples`` < 1.
    """
    if resamples < 1:
        raise ConfigError(f"--resamples must be at least 1, got {resamples}.", hint="the default is 2000")
    return compare_loaded(load_run(a), load_run(b), resamples=resamples, seed=seed, min_delta=min_delta)
