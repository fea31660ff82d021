"""How Φ and J_min read in the terminal, summary.md and ``rpx phi``: plain strings of result.json's blocks."""

from __future__ import annotations

import math
from typing import Any


def _number(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}"


def phi_text(phi: dict[str, Any] | None) -> str:
    """Φ as one phrase: ``0.9123 (small; Wilks 0.9200, Pillai 0.9123, p 0.0312; N 6)``, or ``n/a (reason)``."""
    if not phi:
        return "n/a (not computed)"
    if phi.get("phi") is None:
        return f"n/a ({phi.get('reason') or 'not computed'})"
    return (
        f"{_number(phi['phi'])} ({phi.get('interpretation')}; Wilks {_number(phi.get('phi_wilks'))}, "
        f"Pillai {_number(phi.get('phi_pillai'))}, p {_number(phi.get('p_value'))}; N {phi.get('n_eff')})"
    )


def per_phase_text(jedi: dict[str, Any] | None) -> str:
    """The per-phase JEDI as ``clutter 0.70, interaction 0.65, clean 0.68`` (empty without phases)."""
    return ", ".join(f"{phase} {_number(value)}" for phase, value in ((jedi or {}).get("per_phase") or {}).items())


def j_min_text(jedi: dict[str, Any] | None) -> str:
    """J_min as one phrase: ``0.6500 (clutter 0.7000, interaction 0.6500, clean 0.6800; overall 0.6767)``."""
    if not jedi:
        return "n/a (not computed)"
    if jedi.get("j_min") is None:
        return f"n/a ({jedi.get('reason') or 'not computed'})"
    return f"{_number(jedi['j_min'])} ({per_phase_text(jedi)}; overall {_number(jedi.get('overall'))})"


def robustness_rows(readiness: dict[str, Any]) -> list[tuple[str, str]]:
    """The (label, value) rows of Φ and J_min for a table; empty when result.json holds neither (older runs)."""
    if "phi" not in readiness and "jedi" not in readiness:
        return []
    metrics = (readiness.get("phi") or readiness.get("jedi") or {}).get("metrics_used") or []
    rows = [
        ("Φ (phase robustness)", phi_text(readiness.get("phi"))),
        ("J_min (worst phase)", j_min_text(readiness.get("jedi"))),
    ]
    if metrics:
        rows.append(("metrics", ", ".join(metrics)))
    return rows
