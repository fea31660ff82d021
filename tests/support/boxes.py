"""Helpers the box-task tests share (object_detection, open_vocab_detection, visual_grounding):
a manifest path resolver, the detection metrics written out plainly and the report checks."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from rpx_tasks.contracts.boxes import BoxPrediction
from tests.support.run_folders import REPORT_FILES


def resolver(root):
    """A manifest path resolver that joins every path onto ``root`` (no escape check)."""
    return lambda value, sample_id, key: root / value


def reference_detection(pred: BoxPrediction, boxes, labels) -> dict:
    """§1.4 written out plainly: greedy by descending score, same label, best IoU, TP at >= 0.5."""

    def iou(a, b):
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
        union = area_a + max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1]) - iw * ih
        return iw * ih / union if union > 0 else 0.0

    n_pred, n_gt = len(pred.boxes), len(boxes)
    if n_pred == 0 and n_gt == 0:
        return {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    if n_pred == 0:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    used, tp = set(), 0
    for i in sorted(range(n_pred), key=lambda k: -float(pred.scores[k])):
        best, best_j = 0.0, -1
        for j in range(n_gt):
            if j not in used and str(labels[j]) == str(pred.labels[i]):
                value = iou([float(v) for v in pred.boxes[i]], [float(v) for v in boxes[j]])
                if value > best:
                    best, best_j = value, j
        if best_j >= 0 and best >= 0.5:
            used.add(best_j)
            tp += 1
    p = tp / n_pred
    r = tp / n_gt if n_gt else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def check_report(out_dir, spec, manifest) -> list[dict]:
    """The four report files exist and per-sample rows carry every metric; returns the rows."""
    assert sorted(p.name for p in out_dir.iterdir()) == REPORT_FILES
    rows = pq.read_table(out_dir / "per_sample_metrics.parquet").to_pylist()
    samples = json.loads(manifest.read_text())["samples"]
    assert len(rows) == len(samples) > 0
    assert set(spec.metric_names) <= set(rows[0])
    assert all(row[name] is not None for row in rows for name in spec.metric_names)
    result = json.loads((out_dir / "result.json").read_text())
    assert result["task"] == spec.name and result["num_samples"] == len(rows)
    assert result["readiness"]["primary_metric"] == spec.primary_metric
    assert result["aggregated"][spec.primary_metric]["higher_is_better"] is True
    assert result["aggregated"][spec.primary_metric]["mean"] == pytest.approx(
        sum(row[spec.primary_metric] for row in rows) / len(rows), rel=1e-9
    )
    assert {"s_clutter", "s_interaction", "s_clean", "s_overall"} <= set(result["readiness"]["wps"])
    assert "higher is better" in (out_dir / "summary.md").read_text()
    return rows
