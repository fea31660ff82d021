"""The readiness accumulators a task asks for: its spec's ``temporal`` kind and
``geometric_coherence`` flag (``rpx_tasks.contracts.spec.TaskSpec``) turned into fresh accumulators.

Task specs hold plain data so that the tasks layer never names a class of this layer above it.
"""

from __future__ import annotations

from rpx_tasks.contracts.spec import TaskSpec, TemporalAccumulator
from rpx_tasks.errors import ConfigError
from rpx_tasks.readiness.coherence import GeometricCoherence
from rpx_tasks.readiness.temporal_stability import DepthTemporalStability, SegmentationTemporalStability

# TaskSpec.temporal -> the Temporal Stability accumulator of maps of that kind.
TEMPORAL_STABILITY_BY_KIND: dict[str, type[TemporalAccumulator]] = {
    "depth": DepthTemporalStability,
    "labels": SegmentationTemporalStability,
}


def temporal_accumulator(spec: TaskSpec) -> TemporalAccumulator | None:
    """A fresh Temporal Stability accumulator for the maps ``spec.temporal`` names, or None when
    the task has no temporal stability. Raises ConfigError for a kind no accumulator handles."""
    if spec.temporal is None:
        return None
    accumulator = TEMPORAL_STABILITY_BY_KIND.get(spec.temporal)
    if accumulator is None:
        raise ConfigError(
            f"Task {spec.name} declares temporal={spec.temporal!r}, which no Temporal Stability accumulator handles.",
            hint=f"set its TaskSpec's temporal to one of {sorted(TEMPORAL_STABILITY_BY_KIND)} or None",
            details={"task": spec.name, "temporal": spec.temporal},
        )
    return accumulator()


def coherence_accumulator(spec: TaskSpec) -> GeometricCoherence | None:
    """A fresh Stack-level Geometric Coherence (SGC) accumulator when ``spec.geometric_coherence``
    is set, else None. Raises nothing."""
    return GeometricCoherence() if spec.geometric_coherence else None
