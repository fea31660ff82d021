"""Stack-level Geometric Coherence (SGC, reference §8.4): the boundary F-score of predicted
masks against the depth edges of the frame, streamed one sample at a time (the per-sample
precision and recall are ``rpx_tasks.metrics.boundaries.boundary_precision_recall``).

``GeometricCoherence`` reads each frame's depth from its segmentation ground truth
(``rpx_tasks.contracts.segmentation.SegmentationGroundTruth.depth()``); samples without depth
are skipped and counted.
"""

from __future__ import annotations

from typing import Any

from rpx_tasks.aggregation import ExactSum
from rpx_tasks.contracts.segmentation import SegmentationGroundTruth
from rpx_tasks.metrics.boundaries import boundary_precision_recall
from rpx_tasks.sample import Sample


class GeometricCoherence:
    """Stack-level Geometric Coherence (§8.4), streamed: one ``update(sample, mask)`` per sample.

    A sample's depth is its ground truth's ``depth()`` (a SegmentationGroundTruth); samples
    whose ground truth is of another type or has no depth are skipped and counted. Only
    running sums are kept.
    """

    def __init__(self) -> None:
        self._precision_sum = ExactSum()  # exact, so a split's shards add up to the split
        self._recall_sum = ExactSum()
        self._samples = 0
        self._skipped = 0

    def update(self, sample: Sample, prediction: Any) -> None:
        """Score the predicted mask of ``sample`` against its depth edges; returns None.

        Raises MetricError when mask and depth differ in shape; whatever the ground truth's
        ``depth()`` raises (e.g. ManifestError for an unreadable depth file) propagates.
        """
        ground_truth = sample.ground_truth
        depth = ground_truth.depth() if isinstance(ground_truth, SegmentationGroundTruth) else None
        if depth is None:
            self._skipped += 1
            return
        precision, recall = boundary_precision_recall(prediction, depth)
        self._precision_sum.add(precision)
        self._recall_sum.add(recall)
        self._samples += 1

    def state_dict(self) -> dict[str, Any]:
        """Return the running sums (``*_partials``: exact, see ``ExactSum``; ``*_sum``: their values) and
        counts (plain values). Raises nothing."""
        return {
            "precision_sum": self._precision_sum.value,
            "recall_sum": self._recall_sum.value,
            "precision_partials": self._precision_sum.partials(),
            "recall_partials": self._recall_sum.partials(),
            "samples": self._samples,
            "skipped": self._skipped,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` (a ``state_dict()``; one without partials continues from its sums); returns
        None. Raises KeyError for a missing entry."""
        self._precision_sum, self._recall_sum = ExactSum(), ExactSum()
        self._samples = self._skipped = 0
        self.add_totals(state)

    def add_totals(self, state: dict[str, Any]) -> None:
        """Add the sums and counts of another part of the split (a shard's ``state_dict()``); returns None.
        Raises KeyError for a missing entry."""
        for name, total in (("precision", self._precision_sum), ("recall", self._recall_sum)):
            partials = state.get(f"{name}_partials")
            total.add_partials([float(state[f"{name}_sum"])] if partials is None else partials)
        self._samples += int(state["samples"])
        self._skipped += int(state["skipped"])

    def result(self) -> dict[str, Any]:
        """Return ``{"score", "precision", "recall", "samples", "skipped_no_depth"}``.

        precision and recall are means over the scored samples and score is their harmonic
        mean (0.0 when both are 0); with no scored sample all three are 0.0, as upstream.
        Raises nothing.
        """
        if not self._samples:
            precision = recall = score = 0.0
        else:
            precision = self._precision_sum.value / self._samples
            recall = self._recall_sum.value / self._samples
            score = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        return {
            "score": score,
            "precision": precision,
            "recall": recall,
            "samples": self._samples,
            "skipped_no_depth": self._skipped,
        }
