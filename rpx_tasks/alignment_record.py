"""The relative-depth alignment of a run: which mode applies, the running statistics of its fits, and
the record result.json keeps.

The mode is ``--alignment`` when given (source ``config``), else the registry entry's default
(``ModelEntry.alignment``, source ``model default``), else ``none`` (source ``default``: an import
path, a model object or an ``--hf-checkpoint`` has no registry default). Only tasks with an
``align_prediction`` hook (depth tasks) accept ``--alignment``.

``AlignmentStats`` keeps the fitted scales and shifts of the run as two compact float64 arrays
(16 bytes per fitted frame: 1.2 MB for a 75,000-frame split), so the percentiles in result.json are
exact; the per-sample Parquet schema is unchanged. Its state travels in the run's checkpoints, so a
resumed run records the same statistics as an uninterrupted one.
"""

from __future__ import annotations

import array
import difflib
import math
from typing import Any, NamedTuple

import numpy as np

from rpx_tasks.errors import ConfigError
from rpx_tasks.metrics.depth_alignment import ALIGNMENT_MODES
from rpx_tasks.model_selection import get_entry
from rpx_tasks.models.import_path import is_import_path
from rpx_tasks.tasks import get_task

SOURCES = ("config", "model default", "default")


class AlignmentChoice(NamedTuple):
    """The alignment mode a run applies and where it came from (one of ``SOURCES``)."""

    mode: str
    source: str


def check_alignment_option(alignment: Any, task: str) -> str | None:
    """Return ``alignment`` (None: the model's default) after checking it for ``task``.

    Raises ConfigError for a value that is not one of ``ALIGNMENT_MODES`` (with a did-you-mean) and
    for any value on a task without an ``align_prediction`` hook (only depth tasks align).
    """
    if alignment is None:
        return None
    if not isinstance(alignment, str) or alignment not in ALIGNMENT_MODES:
        close = difflib.get_close_matches(str(alignment), ALIGNMENT_MODES, n=1)
        raise ConfigError(
            f"Unknown alignment {alignment!r}.",
            hint=f"--alignment takes one of {list(ALIGNMENT_MODES)}"
            + (f" (did you mean {close[0]!r}?)" if close else ""),
            details={"alignment": alignment},
        )
    if get_task(task).align_prediction is None:
        raise ConfigError(
            f"{task} takes no alignment, but alignment={alignment!r} was given.",
            hint="drop --alignment: only depth tasks (monocular_depth) fit a relative prediction to the ground truth",
            details={"task": task, "alignment": alignment},
        )
    return alignment


def resolve_alignment(task: str, alignment: str | None, model_name: str | None) -> AlignmentChoice:
    """The alignment a run of ``task`` applies: ``alignment`` when given, else the default of the registry
    entry ``model_name``, else ``none``. Raises ConfigError for an unknown registry name."""
    if alignment is not None:
        return AlignmentChoice(alignment, "config")
    if get_task(task).align_prediction is not None and model_name and not is_import_path(model_name):
        return AlignmentChoice(get_entry(model_name, task).alignment, "model default")
    return AlignmentChoice("none", "default")


def _distribution(values: np.ndarray) -> dict[str, float | None]:
    if values.size == 0:
        return {"mean": None, "p5": None, "p95": None}
    return {
        "mean": math.fsum(values.tolist()) / values.size,
        "p5": float(np.percentile(values, 5)),
        "p95": float(np.percentile(values, 95)),
    }


class AlignmentStats:
    """The fits of one run's alignment, frame by frame (or clip by clip): fitted and unfitted counts, scales, shifts."""

    def __init__(self, mode: str, unit: str = "frames") -> None:
        self.mode = mode
        self.unit = unit
        self.unfitted = 0
        self._scales = array.array("d")
        self._shifts = array.array("d")

    def add(self, fit: dict[str, float | None]) -> None:
        """Count one fit ``{"scale", "shift"}`` (None values: a degenerate fit, unfitted); returns None."""
        if fit.get("scale") is None or fit.get("shift") is None:
            self.unfitted += 1
            return
        self._scales.append(float(fit["scale"]))
        self._shifts.append(float(fit["shift"]))

    def record(self, source: str) -> dict[str, Any]:
        """The ``alignment`` block of result.json: mode, source, ``<unit>_fitted`` / ``<unit>_unfitted`` (frames,
        or clips for a clip task: one fit per clip), and the mean, 5th and 95th percentile (linear
        interpolation) of the fitted scales and shifts (None when none)."""
        return {
            "mode": self.mode,
            "source": source,
            f"{self.unit}_fitted": len(self._scales),
            f"{self.unit}_unfitted": self.unfitted,
            "scale": _distribution(np.frombuffer(self._scales, dtype=np.float64)),
            "shift": _distribution(np.frombuffer(self._shifts, dtype=np.float64)),
        }

    def state_dict(self) -> dict[str, Any]:
        """The state a resumed run restores (JSON values and ndarrays)."""
        return {
            "mode": self.mode,
            "unfitted": self.unfitted,
            "scales": np.array(self._scales, dtype=np.float64),
            "shifts": np.array(self._shifts, dtype=np.float64),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned; returns None."""
        self.unfitted = int(state["unfitted"])
        self._scales = array.array("d", np.asarray(state["scales"], dtype=np.float64).tolist())
        self._shifts = array.array("d", np.asarray(state["shifts"], dtype=np.float64).tolist())


__all__ = [
    "SOURCES",
    "AlignmentChoice",
    "AlignmentStats",
    "check_alignment_option",
    "resolve_alignment",
]
