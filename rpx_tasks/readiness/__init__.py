"""Deployment-readiness scores that stream over a run (reference §8.1-§8.4).

- ``phase_scores``: Weighted Phase Score (WPS) and State-Transition Robustness (STR) of one
  metric, fed one per-sample value at a time (``PhaseScores``).
- ``temporal_stability``: Temporal Stability (TS) of depth maps / label maps
  (``DepthTemporalStability``, ``SegmentationTemporalStability``), pairing only consecutive
  frames of the same (scene, phase) clip and holding just the previous frame.
- ``coherence``: Stack-level Geometric Coherence (SGC, ``GeometricCoherence``), the boundary
  F-score of predicted masks against depth edges, averaged over a run.
- ``rotation``: the OpenCV-equivalent in-plane rotations TS aligns frames with.
- ``phase_cells``, ``phi``, ``jedi``, ``phase_robustness``: Φ (repeated-measures MANOVA effect of
  phase) and JEDI / J_min (worst-phase desirability) of a run's per-sample rows (reference §8.7-8.8).
- ``task_accumulators``: the accumulators a task asks for (``temporal_accumulator``,
  ``coherence_accumulator``), from its spec's ``temporal`` kind and ``geometric_coherence`` flag.

The per-pair and per-sample scores these accumulators average are pure functions of
``rpx_tasks.metrics`` (``depth.depth_pair_score``, ``segmentation.label_pair_score``,
``boundaries.boundary_precision_recall``). The runner imports what it needs from here; tests
import the modules.
"""

from rpx_tasks.readiness.coherence import GeometricCoherence
from rpx_tasks.readiness.phase_robustness import phase_robustness
from rpx_tasks.readiness.phase_scores import PhaseScores
from rpx_tasks.readiness.task_accumulators import coherence_accumulator, temporal_accumulator

__all__ = ["GeometricCoherence", "PhaseScores", "coherence_accumulator", "phase_robustness", "temporal_accumulator"]
