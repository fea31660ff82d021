"""Weighted Phase Score (WPS, reference §8.1) and State-Transition Robustness (STR, §8.2).

``PhaseScores`` streams the per-sample values of one metric and reduces them to both blocks.
Where upstream counts a missing phase as 0.0, these return None ("not defined"), and every
delta is labelled "worse"/"better" by the metric's direction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rpx_tasks.constants import ESD_WEIGHTS, PHASES
from rpx_tasks.errors import MetricError


def esd_weighted_score(difficulty_means: Mapping[str, float | None]) -> float | None:
    """Return the ESD-weighted mean of per-difficulty means (reference §8.1).

    ``difficulty_means`` maps ``easy|medium|hard`` to that bucket's mean, or None when the
    bucket is empty. Result: sum(w_d * M_d) / sum(w_d) over the present buckets, with
    w = ``ESD_WEIGHTS``; None when no bucket is present. Raises MetricError for a
    difficulty that is not one of ``ESD_WEIGHTS``.
    """
    weighted, weights = 0.0, 0.0
    for difficulty, mean in difficulty_means.items():
        weight = _esd_weight(difficulty)
        if mean is not None:
            weighted += weight * mean
            weights += weight
    return weighted / weights if weights else None


def _esd_weight(difficulty: str) -> float:
    try:
        return ESD_WEIGHTS[difficulty]
    except (KeyError, TypeError):
        raise MetricError(
            f"Unknown difficulty {difficulty!r}.",
            hint=f"Difficulties are {', '.join(ESD_WEIGHTS)}; check the manifest's 'difficulty' field.",
        ) from None


def _effect(delta: float | None, higher_is_better: bool) -> str | None:
    if delta is None:
        return None
    if delta == 0:
        return "unchanged"
    return "better" if (delta > 0) == higher_is_better else "worse"


def _direction(higher_is_better: bool) -> str:
    return "higher_is_better" if higher_is_better else "lower_is_better"


def _difference(later: float | None, earlier: float | None) -> float | None:
    return None if later is None or earlier is None else later - earlier


class PhaseScores:
    """Streams the per-sample values of one metric and reduces them to WPS and STR.

    Only a running sum and count per (phase, difficulty) are kept. Attributes:
    ``count`` (values used) and ``non_finite`` (NaN/inf values seen on samples with a phase
    and difficulty; they are left out of every mean, never averaged in).
    """

    def __init__(self) -> None:
        self._sums: dict[tuple[str, str], float] = {}
        self._counts: dict[tuple[str, str], int] = {}
        self.count = 0
        self.non_finite = 0

    def add(self, phase: str | None, difficulty: str | None, value: float | None) -> None:
        """Record one sample's value; returns None.

        Samples without a phase, a difficulty or a value are skipped; a NaN/inf value is
        skipped and counted in ``non_finite``. Raises MetricError for a phase that is not
        ``clutter|interaction|clean`` or a difficulty that is not ``easy|medium|hard``.
        """
        if phase is None or difficulty is None or value is None:
            return
        if phase not in PHASES:
            raise MetricError(
                f"Unknown phase {phase!r}.",
                hint=f"Phases are {', '.join(PHASES)}; check the manifest's 'phase' field.",
            )
        _esd_weight(difficulty)
        value = float(value)
        if not math.isfinite(value):
            self.non_finite += 1
            return
        key = (phase, difficulty)
        self._sums[key] = self._sums.get(key, 0.0) + value
        self._counts[key] = self._counts.get(key, 0) + 1
        self.count += 1

    def phase_scores(self) -> dict[str, float | None]:
        """Return ``{phase: S_p}`` for the three phases: the ESD-weighted mean of the
        per-difficulty means, None for a phase without samples. Raises nothing."""
        scores: dict[str, float | None] = {}
        for phase in PHASES:
            means = {
                difficulty: self._sums[(phase, difficulty)] / self._counts[(phase, difficulty)]
                for difficulty in ESD_WEIGHTS
                if (phase, difficulty) in self._counts
            }
            scores[phase] = esd_weighted_score(means)
        return scores

    def wps(self, higher_is_better: bool) -> dict[str, Any]:
        """Return the Weighted Phase Score block of this metric (reference §8.1).

        Keys: ``s_clutter, s_interaction, s_clean`` (None for a phase without samples),
        ``s_overall`` (mean over the phases that have samples; None if none),
        ``delta_int`` = S_I - S_C and ``delta_rec`` = S_L - S_I (None when a phase they need
        is missing), ``direction`` (``higher_is_better`` or ``lower_is_better``) and
        ``interaction_effect`` / ``recovery_effect`` ("worse", "better", "unchanged", or
        None with the delta), judged by the metric's direction. Raises nothing.
        """
        scores = self.phase_scores()
        clutter, interaction, clean = (scores[p] for p in PHASES)
        present = [s for s in scores.values() if s is not None]
        delta_int = _difference(interaction, clutter)
        delta_rec = _difference(clean, interaction)
        return {
            "s_clutter": clutter,
            "s_interaction": interaction,
            "s_clean": clean,
            "s_overall": sum(present) / len(present) if present else None,
            "delta_int": delta_int,
            "delta_rec": delta_rec,
            "direction": _direction(higher_is_better),
            "interaction_effect": _effect(delta_int, higher_is_better),
            "recovery_effect": _effect(delta_rec, higher_is_better),
        }

    def str_block(self, higher_is_better: bool | None = None) -> dict[str, Any]:
        """Return the State-Transition Robustness block (reference §8.2) from the WPS
        phase scores: ``str_c_to_i`` = M_I - M_C, ``str_i_to_l`` = M_L - M_I and
        ``metric_clutter|interaction|clean``; a missing phase and the deltas that need it
        are None, not 0.0. Given the metric's direction, the block also carries
        ``direction``, ``c_to_i_effect`` and ``i_to_l_effect`` (words as in ``wps``).
        Raises nothing."""
        scores = self.phase_scores()
        clutter, interaction, clean = (scores[p] for p in PHASES)
        block: dict[str, Any] = {
            "str_c_to_i": _difference(interaction, clutter),
            "str_i_to_l": _difference(clean, interaction),
            "metric_clutter": clutter,
            "metric_interaction": interaction,
            "metric_clean": clean,
        }
        if higher_is_better is not None:
            block["direction"] = _direction(higher_is_better)
            block["c_to_i_effect"] = _effect(block["str_c_to_i"], higher_is_better)
            block["i_to_l_effect"] = _effect(block["str_i_to_l"], higher_is_better)
        return block
