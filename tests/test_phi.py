"""Φ (reference §8.7) and JEDI / J_min (§8.8) on hand-built designs whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from rpx_tasks.contracts.metric_specs import METRIC_SPECS, MetricSpec, metric_spec
from rpx_tasks.errors import MetricError
from rpx_tasks.readiness.jedi import compute_jedi
from rpx_tasks.readiness.phase_cells import collect_phase_cells
from rpx_tasks.readiness.phase_robustness import phase_robustness
from rpx_tasks.readiness.phi import compute_phi, holm_adjust, interpret_phi
from rpx_tasks.tasks import iter_tasks

PHASES = ("clutter", "interaction", "clean")


def _rows(values: dict[tuple[str, str], dict[str, float]]) -> list[dict]:
    return [{"scene": scene, "phase": phase, **metrics} for (scene, phase), metrics in values.items()]


def _phi(rows, metrics):
    return compute_phi(collect_phase_cells(rows, metrics))


def test_metric_spec_checks_direction_against_bounds():
    assert metric_spec("absrel") == MetricSpec("absrel", "lower", 0.0, 0.5, metric_spec("absrel").description)
    assert metric_spec("delta1").higher_is_better
    with pytest.raises(MetricError):
        MetricSpec("bad", "higher", 0.0, 1.0)
    with pytest.raises(MetricError):
        MetricSpec("bad", "lower", 1.0, 0.0)
    with pytest.raises(MetricError, match="no reference bounds"):
        metric_spec("miou")


def test_every_declared_phi_metric_is_emitted_and_has_a_spec():
    specs = {spec.name: spec for spec in iter_tasks()}
    assert specs["monocular_depth"].phi_metrics == ("absrel", "rmse", "silog", "delta1")
    for spec in specs.values():
        for name in spec.phi_metrics:
            assert name in METRIC_SPECS and name in spec.metric_names, (spec.name, name)


def test_identical_phases_give_phi_one():
    rng = np.random.default_rng(0)
    scene_values = {f"s{i}": (rng.uniform(0.05, 0.4), rng.uniform(0.5, 0.99)) for i in range(5)}
    rows = _rows(
        {(s, p): {"absrel": a, "delta1": d} for s, (a, d) in scene_values.items() for p in PHASES},
    )
    result = _phi(rows, ["absrel", "delta1"])
    assert result["reason"] is None
    assert result["phi"] == pytest.approx(1.0)
    assert result["phi_wilks"] == pytest.approx(1.0) and result["phi_pillai"] == pytest.approx(1.0)
    assert result["interpretation"] == "negligible"
    assert result["n_eff"] == 5 and result["n_dropped"] == 0
    for transition in result["per_transition"].values():
        assert transition == {"phi": 1.0, "p_holm": 1.0}


def test_pure_phase_shift_in_one_metric_gives_the_hand_computed_eta_squared():
    # x[s, p] = 0.1 + 0.01 (a_s + b_p), a = 0..3, b = (0, 1, 0.5).
    # E = P Σ_s (a_s − ā)² = 3 · 5 = 15; H = N Σ_p (b_p − b̄)² = 4 · 0.5 = 2 (both in units of 0.01²; standardising
    # scales both alike). Λ = E / (H + E) = 15/17, η² = 2/17, Φ = 1 − η² = 15/17.
    shifts = dict(zip(PHASES, (0.0, 1.0, 0.5)))
    rows = _rows({(f"s{a}", p): {"absrel": 0.1 + 0.01 * (a + b)} for a in range(4) for p, b in shifts.items()})
    result = _phi(rows, ["absrel"])
    eta_squared = 2 / 17
    assert result["phi_wilks"] == pytest.approx(1 - eta_squared)
    assert result["phi_pillai"] == pytest.approx(1 - eta_squared)
    assert result["phi"] == pytest.approx(15 / 17)
    assert result["interpretation"] == "medium"
    assert 0.0 <= result["p_value"] <= 1.0
    # Differences constant over scenes: their covariance is singular, so each transition is null with a note.
    assert all(t == {"phi": None, "p_holm": None} for t in result["per_transition"].values())
    assert any("singular covariance" in note for note in result["notes"])


def test_per_transition_phi_and_holm_adjusted_p_on_a_small_case():
    rng = np.random.default_rng(3)
    base = rng.normal(0.2, 0.03, size=6)
    values = {p: base + shift + rng.normal(0, 0.01, size=6) for p, shift in zip(PHASES, (0.0, 0.02, 0.005))}
    rows = [{"scene": f"s{i}", "phase": p, "absrel": float(values[p][i])} for p in PHASES for i in range(6)]
    result = _phi(rows, ["absrel"])
    # K = 1: Hotelling T² is the paired t², so its p is the paired t-test's, then Holm-adjusted.
    pairs = (("clutter", "interaction"), ("interaction", "clean"), ("clutter", "clean"))
    raw = [stats.ttest_rel(values[b], values[a]).pvalue for a, b in pairs]
    order = np.argsort(raw)
    expected, running = [0.0] * 3, 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (3 - rank) * raw[index]))
        expected[index] = running
    for (a, b), p_holm in zip(pairs, expected):
        entry = result["per_transition"][f"{a}→{b}"]
        assert entry["p_holm"] == pytest.approx(p_holm)
        t2 = stats.ttest_rel(values[b], values[a]).statistic ** 2
        assert entry["phi"] == pytest.approx(1 - t2 / (t2 + 5))


def test_holm_adjust_keeps_order_and_nulls():
    assert holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm_adjust([None, 0.2, 0.6]) == [None, pytest.approx(0.4), pytest.approx(0.6)]


def test_interpretation_bands():
    assert [interpret_phi(v) for v in (0.995, 0.95, 0.9, 0.5, None)] == [
        "negligible",
        "small",
        "medium",
        "large",
        None,
    ]


def test_one_scene_is_insufficient_data():
    rows = _rows({("s0", p): {"absrel": 0.1 + i / 10} for i, p in enumerate(PHASES)})
    result = _phi(rows, ["absrel"])
    assert result["phi"] is None and result["interpretation"] is None
    assert result["reason"].startswith("insufficient data") and result["reason"] in result["notes"]


def test_n_at_most_k_is_manova_singular():
    rng = np.random.default_rng(1)
    metrics = ["absrel", "rmse", "silog", "delta1"]
    rows = _rows({(f"s{i}", p): {m: float(rng.uniform(0.1, 0.4)) for m in metrics} for i in range(3) for p in PHASES})
    result = _phi(rows, metrics)
    assert result["phi"] is None and result["reason"].startswith("MANOVA singular")
    assert result["n_eff"] == 3


def test_collinear_metrics_are_named():
    rng = np.random.default_rng(2)
    rows = []
    for i in range(6):
        for p in PHASES:
            absrel = float(rng.uniform(0.1, 0.4))
            rows.append({"scene": f"s{i}", "phase": p, "absrel": absrel, "rmse": 2 * absrel})
    result = _phi(rows, ["absrel", "rmse"])
    assert result["phi"] is None
    assert result["reason"].startswith("collinear metrics") and "absrel and rmse" in result["reason"]


def test_scene_missing_a_phase_is_dropped_and_constant_metrics_are_left_out():
    shifts = dict(zip(PHASES, (0.0, 1.0, 0.5)))
    values = {
        (f"s{a}", p): {"absrel": 0.1 + 0.01 * (a + b), "delta1": 1.0} for a in range(4) for p, b in shifts.items()
    }
    values[("s9", "clutter")] = {"absrel": 0.3, "delta1": 1.0}
    result = _phi(_rows(values), ["absrel", "delta1"])
    assert result["n_dropped"] == 1 and result["n_eff"] == 4
    assert result["metrics_used"] == ["absrel"]
    assert result["phi"] == pytest.approx(15 / 17)


def test_jedi_on_a_hand_computed_table():
    # absrel window [0, 0.5] (lower better), delta1 window [1, 0].
    cells = {
        ("s1", "clutter"): (0.25, 0.5),  # d = 0.5, 0.5 -> J = 0.5
        ("s1", "interaction"): (0.5, 0.9),  # d(absrel) = 0 -> J = 0
        ("s1", "clean"): (0.0, 0.25),  # d = 1, 0.25 -> J = 0.5
        ("s2", "clutter"): (0.1, 0.8),  # d = 0.8, 0.8 -> J = 0.8
        ("s2", "interaction"): (0.25, 1.0),  # d = 0.5, 1 -> J = sqrt(0.5)
        ("s2", "clean"): (0.05, 0.9),  # d = 0.9, 0.9 -> J = 0.9
    }
    rows = []
    for (scene, phase), (absrel, delta1) in cells.items():  # two rows per cell, averaging to the cell value
        rows += [{"scene": scene, "phase": phase, "absrel": absrel + e, "delta1": delta1} for e in (-0.0, 0.0)]
    result = compute_jedi(collect_phase_cells(rows, ["absrel", "delta1"]))
    expected = {"clutter": 0.65, "interaction": math.sqrt(0.5) / 2, "clean": 0.7}
    assert result["per_phase"] == pytest.approx(expected)
    assert list(result["per_phase"]) == list(PHASES)
    assert result["j_min"] == pytest.approx(math.sqrt(0.5) / 2)
    assert result["overall"] == pytest.approx((0.5 + 0 + 0.5 + 0.8 + math.sqrt(0.5) + 0.9) / 6)
    assert result["metrics_used"] == ["absrel", "delta1"]


def test_non_finite_values_skip_their_cell_with_a_note():
    rows = _rows({(f"s{i}", p): {"absrel": 0.1 * (i + 1)} for i in range(3) for p in PHASES})
    rows.append({"scene": "s0", "phase": "clean", "absrel": math.inf})
    rows.append({"scene": "s1", "phase": "clean", "absrel": None})
    result = phase_robustness(rows, ["absrel"])
    jedi, phi = result["jedi"], result["phi"]
    assert any("non-finite" in note and "s0/clean" in note for note in jedi["notes"])
    assert any("missing a value" in note for note in phi["notes"])
    assert phi["n_dropped"] == 1 and phi["n_eff"] == 2
    assert jedi["per_phase"]["clean"] == pytest.approx(1 - np.mean([0.2, 0.3]) / 0.5)


def test_no_metric_vector_gives_nulls_with_a_reason():
    result = phase_robustness([{"scene": "s", "phase": "clutter", "miou": 0.5}], [])
    assert result["phi"]["phi"] is None and "no Φ metric vector" in result["phi"]["reason"]
    assert result["jedi"]["j_min"] is None and result["jedi"]["reason"]
    with pytest.raises(MetricError):
        phase_robustness([], ["miou"])


def test_a_metric_constant_up_to_rounding_is_left_out_like_a_constant_one():
    """A metric equal in every row still differs between cells in its last bits (cell means are sums over
    different frame counts); it must be dropped as constant, not make E or a transition singular."""
    rng = np.random.default_rng(4)
    rows = []
    for scene in range(8):
        for phase in PHASES:
            for _ in range(int(rng.integers(1, 5))):
                rows.append({"scene": f"s{scene}", "phase": phase, "absrel": rng.uniform(0.05, 0.4), "delta1": 0.1})
    with_constant = _phi(rows, ["absrel", "delta1"])
    without = _phi([{k: v for k, v in row.items() if k != "delta1"} for row in rows], ["absrel"])
    assert with_constant["metrics_used"] == ["absrel"] and "delta1" in " ".join(with_constant["notes"])
    assert with_constant["phi"] == pytest.approx(without["phi"])
    assert all(t["phi"] is not None for t in with_constant["per_transition"].values())


def test_j_min_needs_all_three_phases_and_ignores_other_phase_names():
    rows = [
        {"scene": "s1", "phase": "clutter", "absrel": 0.25, "delta1": 0.5},
        {"scene": "s1", "phase": "clean", "absrel": 0.0, "delta1": 0.25},
    ]
    missing = compute_jedi(collect_phase_cells(rows, ["absrel", "delta1"]))
    assert missing["j_min"] is None and "interaction" in missing["reason"]
    assert missing["per_phase"] == pytest.approx({"clutter": 0.5, "clean": 0.5})
    rows += [
        {"scene": "s1", "phase": "interaction", "absrel": 0.1, "delta1": 0.8},
        {"scene": "s1", "phase": "extra", "absrel": 0.5, "delta1": 0.0},
    ]
    with_extra = compute_jedi(collect_phase_cells(rows, ["absrel", "delta1"]))
    assert with_extra["j_min"] == pytest.approx(0.5) and with_extra["per_phase"]["extra"] == 0.0
    assert any("extra" in note for note in with_extra["notes"])
