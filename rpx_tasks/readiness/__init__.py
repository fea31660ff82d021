"""Deployment-readiness scores that stream over a run (reference §8.1-§8.4).

- ``phase_scores``: Weighted Phase Score (WPS) and State-Transition Robustness (STR) of one
  metric, fed one per-sample value at a time (``PhaseScores``).
- ``temporal_stability``: Temporal Stability (TS) of depth maps / label maps
  (``DepthTemporalStability``, ``SegmentationTemporalStability``), pairing only consecutive
  frames of the same (scene, phase) clip and holding just the previous frame.
- ``coherence``: Stack-level Geometric Coherence (SGC, ``GeometricCoherence``), the boundary
  F-score of predicted masks against depth edges.
- ``rotation``: the OpenCV-equivalent in-plane rotations TS aligns frames with.

Task specs name the accumulators by import path, e.g.
``rpx_tasks.readiness.temporal_stability:DepthTemporalStability``.
"""

from rpx_tasks.readiness.coherence import (
    GeometricCoherence,
    boundary_precision_recall,
    depth_edges,
    mask_boundary,
)
from rpx_tasks.readiness.phase_scores import PhaseScores, esd_weighted_score
from rpx_tasks.readiness.rotation import rotate_about_centre, rotate_labels_about_centre
from rpx_tasks.readiness.temporal_stability import (
    DepthTemporalStability,
    SegmentationTemporalStability,
    depth_pair_score,
    inplane_rotation_deg,
)

__all__ = [
    "DepthTemporalStability",
    "GeometricCoherence",
    "PhaseScores",
    "SegmentationTemporalStability",
    "boundary_precision_recall",
    "depth_edges",
    "depth_pair_score",
    "esd_weighted_score",
    "inplane_rotation_deg",
    "mask_boundary",
    "rotate_about_centre",
    "rotate_labels_about_centre",
]
