"""Φ, phase robustness (reference §8.7): 1 minus the effect size of phase in a repeated-measures MANOVA.

Cells are (scene, phase) means of the task's metric vector (``phase_cells``); only scenes seen in every
phase count (complete case). Metrics are oriented (lower-is-better ones negated) and standardised over
all cells, then

- H = N Σ_p (m_p − g)(m_p − g)ᵀ, E = Σ_{s,p} (z_sp − m_p)(z_sp − m_p)ᵀ, s = min(K, P − 1);
- Wilks Λ = det E / det(H + E), Φ_W = Λ^{1/s}; Pillai V = tr(H (H + E)⁻¹), Φ_P = 1 − V/s;
- Φ = min(Φ_W, Φ_P) (the conservative one), p from Rao's F approximation of Λ;
- per transition (clutter→interaction, interaction→clean, clutter→clean): Hotelling T² of the paired
  differences, Φ = 1 − T²/(T² + N − 1), p Holm-adjusted over the three.

Φ = 1 means the phases do not move the metrics at all. Φ is null, with the reason, when it cannot be
computed: fewer than 2 complete scenes or phases, N ≤ K, or a singular / collinear E.
A metric constant over every cell carries no information and is dropped with a note (E would be singular).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rpx_tasks.contracts.metric_specs import metric_spec
from rpx_tasks.readiness.phase_cells import PhaseCells

TRANSITIONS: tuple[tuple[str, str], ...] = (("clutter", "interaction"), ("interaction", "clean"), ("clutter", "clean"))
MAX_CONDITION = 1000.0
WARN_CONDITION = 30.0

# A metric whose cell means spread less than this (relative to their size) counts as constant.
CONSTANT_TOLERANCE = 1e-9


def transition_name(before: str, after: str) -> str:
    """The result.json key of a transition: ``"clutter→interaction"``."""
    return f"{before}→{after}"


def interpret_phi(phi: float | None) -> str | None:
    """Cohen-style label of Φ: > 0.99 negligible, > 0.94 small, > 0.86 medium, else large (None for None)."""
    if phi is None:
        return None
    if phi > 0.99:
        return "negligible"
    if phi > 0.94:
        return "small"
    if phi > 0.86:
        return "medium"
    return "large"


def holm_adjust(p_values: list[float | None]) -> list[float | None]:
    """Holm–Bonferroni adjusted p-values of the non-null entries (None stays None), in input order."""
    present = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running, m = 0.0, len(present)
    for rank, (p, index) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[index] = running
    return adjusted


def _empty(metrics: list[str], n_eff: int, n_dropped: int, notes: list[str], reason: str) -> dict[str, Any]:
    return {
        "phi": None,
        "phi_wilks": None,
        "phi_pillai": None,
        "p_value": None,
        "per_transition": {transition_name(a, b): {"phi": None, "p_holm": None} for a, b in TRANSITIONS},
        "interpretation": None,
        "metrics_used": metrics,
        "n_eff": n_eff,
        "n_dropped": n_dropped,
        "notes": [*notes, reason],
        "reason": reason,
    }


def standardise(tensor: np.ndarray, metrics: list[str]) -> np.ndarray:
    """Orient (negate lower-is-better metrics) and z-score each metric over all N·P cells (population std)."""
    signs = np.array([1.0 if metric_spec(name).higher_is_better else -1.0 for name in metrics])
    oriented = tensor * signs
    flat = oriented.reshape(-1, oriented.shape[-1])
    std = flat.std(axis=0)
    return (oriented - flat.mean(axis=0)) / np.where(std > 0, std, 1.0)


def _most_correlated_pair(z: np.ndarray, metrics: list[str]) -> str:
    flat = z.reshape(-1, z.shape[-1])
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.nan_to_num(np.corrcoef(flat, rowvar=False))
    np.fill_diagonal(corr, 0.0)
    i, j = np.unravel_index(np.argmax(np.abs(corr)), corr.shape)
    return f"{metrics[i]} and {metrics[j]} (r = {corr[i, j]:.3f})"


def rao_p_value(wilks: float, k: int, df: int, n: int) -> float | None:
    """p-value of Wilks' Λ by Rao's F approximation (reference §8.7 step 5); None when its df2 is not positive."""
    v = n - 1 - (k + df + 1) / 2
    denominator = k * k + df * df - 5
    t = math.sqrt((k * k * df * df - 4) / denominator) if denominator > 0 else 1.0
    df1 = k * df
    df2 = round(v * t - (df1 - 2) / 2)
    if df2 <= 0:
        return None
    from scipy import stats  # imported on first use: reports and the CLI import this package

    root = wilks ** (1.0 / t)
    if root <= 0.0:
        return 0.0
    f_value = (1.0 - root) / root * df2 / df1
    return float(stats.f.sf(f_value, df1, df2))


def _transition(z: np.ndarray, i: int, j: int) -> tuple[float | None, float | None, str | None]:
    """(Φ, p, note) of the paired change from phase i to phase j (Hotelling T²)."""
    n, k = z.shape[0], z.shape[2]
    diff = z[:, j] - z[:, i]
    mean = diff.mean(axis=0)
    if not mean.any() and not diff.any():
        return 1.0, 1.0, None
    cov = np.atleast_2d(np.cov(diff, rowvar=False, ddof=1))
    eigenvalues = np.linalg.eigvalsh(cov)
    if eigenvalues.min() <= 1e-12 * max(eigenvalues.max(), 1.0):  # z is standardised: unit scale
        return None, None, "paired differences have a singular covariance"
    from scipy import stats

    t2 = float(n * mean @ np.linalg.solve(cov, mean))
    phi = 1.0 - t2 / (t2 + n - 1)
    f_value = (n - k) / ((n - 1) * k) * t2
    return min(1.0, max(0.0, phi)), float(stats.f.sf(f_value, k, n - k)), None


def compute_phi(cells: PhaseCells) -> dict[str, Any]:
    """Return the ``readiness.phi`` block of result.json for the cell means.

    Keys: phi (conservative, min of Wilks and Pillai), phi_wilks, phi_pillai, p_value, per_transition
    {"clutter→interaction", "interaction→clean", "clutter→clean": {phi, p_holm}}, interpretation,
    metrics_used, n_eff, n_dropped, notes, reason (None, or why phi is null). Raises nothing.
    """
    tensor, _, phases, n_dropped = cells.complete_case()
    n, p = tensor.shape[0], len(phases)
    notes = list(cells.notes)
    if n_dropped:
        notes.append(f"{n_dropped} scenes without a cell in every phase dropped (complete case)")
    metrics = list(cells.metrics)
    if not metrics:
        return _empty(metrics, n, n_dropped, notes, "the task declares no Φ metric vector")
    if n < 2 or p < 2:
        return _empty(metrics, n, n_dropped, notes, f"insufficient data: {n} complete scenes over {p} phases")
    flat = tensor.reshape(-1, len(metrics))
    # Constant up to rounding: cell means are sums over different frame counts, so a metric equal in every
    # row differs between cells in its last bits; such a column only makes E singular.
    constant = [
        name
        for name, column in zip(metrics, flat.T)
        if np.ptp(column) <= CONSTANT_TOLERANCE * max(1.0, float(np.max(np.abs(column))))
    ]
    if constant:
        notes.append(f"metrics constant over every cell dropped: {', '.join(constant)}")
        keep = [index for index, name in enumerate(metrics) if name not in constant]
        metrics, tensor = [metrics[index] for index in keep], tensor[:, :, keep]
    k = len(metrics)
    if k == 0:
        return _empty(metrics, n, n_dropped, notes, "insufficient data: every metric is constant over the cells")
    if n <= k:
        return _empty(metrics, n, n_dropped, notes, f"MANOVA singular: N = {n} complete scenes <= K = {k} metrics")
    z = standardise(tensor, metrics)
    phase_means = z.mean(axis=0)
    grand = phase_means.mean(axis=0)
    centred = phase_means - grand
    h = n * centred.T @ centred
    residual = (z - phase_means).reshape(-1, k)
    e = residual.T @ residual
    condition = float(np.linalg.cond(e)) if np.isfinite(e).all() else math.inf
    if k >= 2 and not condition <= MAX_CONDITION:
        pair = _most_correlated_pair(z, metrics)
        reason = f"collinear metrics: cond(E) = {condition:.3g}; most correlated {pair}"
        return _empty(metrics, n, n_dropped, notes, reason)
    if k >= 2 and condition > WARN_CONDITION:
        notes.append(f"E is poorly conditioned (cond {condition:.3g}); metrics are strongly correlated")
    sign_e, logdet_e = np.linalg.slogdet(e)
    sign_t, logdet_t = np.linalg.slogdet(h + e)
    if sign_e <= 0 or sign_t <= 0:
        return _empty(metrics, n, n_dropped, notes, "MANOVA singular: E is not positive definite")
    df = p - 1
    s = min(k, df)
    wilks = math.exp(logdet_e - logdet_t)
    phi_wilks = min(1.0, max(0.0, wilks ** (1.0 / s)))
    pillai = float(np.trace(h @ np.linalg.inv(h + e)))
    phi_pillai = min(1.0, max(0.0, 1.0 - pillai / s))
    phi = min(phi_wilks, phi_pillai)
    p_value = rao_p_value(wilks, k, df, n)
    if p_value is None:
        notes.append("Rao's F approximation has no positive denominator df: p_value null")
    per_transition, raw_p = {}, []
    for before, after in TRANSITIONS:
        name = transition_name(before, after)
        if before not in phases or after not in phases:
            per_transition[name] = {"phi": None, "p_holm": None}
            raw_p.append(None)
            continue
        t_phi, t_p, note = _transition(z, phases.index(before), phases.index(after))
        if note:
            notes.append(f"{name}: {note}")
        per_transition[name] = {"phi": t_phi, "p_holm": None}
        raw_p.append(t_p)
    for (before, after), adjusted in zip(TRANSITIONS, holm_adjust(raw_p)):
        per_transition[transition_name(before, after)]["p_holm"] = adjusted
    return {
        "phi": phi,
        "phi_wilks": phi_wilks,
        "phi_pillai": phi_pillai,
        "p_value": p_value,
        "per_transition": per_transition,
        "interpretation": interpret_phi(phi),
        "metrics_used": metrics,
        "n_eff": n,
        "n_dropped": n_dropped,
        "notes": notes,
        "reason": None,
    }
