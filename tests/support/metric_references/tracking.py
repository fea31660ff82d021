"""References of ``rpx_tasks.metrics.tracking``: ``tracking_metrics`` (§1.4, MOTA / IDF1)."""

from __future__ import annotations

from typing import Any

import numpy as np

from rpx_tasks.contracts.tracking import Tracklet, TrackletGroundTruth, TrackletPrediction
from tests.support.metric_references.boxes import G1, G2, LEFT, WIDE, box_rows, jitter, random_boxes, ref_box_iou
from tests.support.metric_references.table import SEEDS, Case, MetricRow


def ref_tracking_metrics(prediction: TrackletPrediction, ground_truth: TrackletGroundTruth):
    steps = max((len(track.boxes) for track in ground_truth.tracks), default=0)
    if steps == 0:
        return {"mota": 1.0, "idf1": 1.0, "fp": None, "fn": None, "idsw": None}
    fp = fn = idsw = total_gt = 0
    last_gt_of: dict[str, str] = {}
    for t in range(steps):
        gts = [(track.track_id, track.boxes[t]) for track in ground_truth.tracks if len(track.boxes) > t]
        preds = [(track.track_id, track.boxes[t]) for track in prediction.tracks if len(track.boxes) > t]
        total_gt += len(gts)
        if not preds:
            fn += len(gts)
            continue
        used = [False] * len(gts)
        matched = 0
        for pred_id, pred_box in preds:
            best, best_iou = None, -1.0
            for j, (_, gt_box) in enumerate(gts):
                if not used[j]:
                    iou = ref_box_iou(pred_box, gt_box)
                    if iou > best_iou:
                        best, best_iou = j, iou
            if best is None or best_iou < 0.5:
                continue
            used[best] = True
            matched += 1
            gt_id = gts[best][0]
            if pred_id in last_gt_of and last_gt_of[pred_id] != gt_id:
                idsw += 1
            last_gt_of[pred_id] = gt_id
        fn += len(gts) - matched
        fp += len(preds) - matched
    mota = min(max(1.0 - (fn + fp + idsw) / max(total_gt, 1), -1.0), 1.0)
    tp = total_gt - fn
    idf1 = min(max(2 * tp / max(2 * tp + fp + fn, 1), 0.0), 1.0)
    return {"mota": mota, "idf1": idf1, "fp": float(fp), "fn": float(fn), "idsw": float(idsw)}


def _tracks(cls, rows: dict[str, list]) -> Any:
    return cls([Tracklet(track_id, box_rows(boxes)) for track_id, boxes in rows.items()])


def _tracking(pred_rows: dict[str, list], gt_rows: dict[str, list]):
    return _tracks(TrackletPrediction, pred_rows), _tracks(TrackletGroundTruth, gt_rows)


def _tracking_random(seed: int):
    rng = np.random.default_rng(seed)
    steps = 12
    gt_tracks, pred_tracks = [], []
    for k in range(5):
        length = int(rng.integers(0, steps + 1))
        start = random_boxes(rng, 1)[0]
        boxes = (start + np.cumsum(rng.normal(0, 4, (length, 4)), axis=0)).astype(np.float32).reshape(-1, 4)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 10)
        gt_tracks.append(Tracklet(f"g{k}", boxes))
        if length and rng.random() < 0.9:
            noisy = jitter(rng, boxes, 3.0)
            noisy[rng.random(length) < 0.15] += 200.0  # some steps miss
            cut = int(rng.integers(0, length + 1))
            pred_tracks.append(Tracklet(f"p{k}", noisy[:cut], rng.uniform(0, 1, cut).astype(np.float32)))
            pred_tracks.append(Tracklet(f"p{k}b", noisy[cut:]))  # the rest under a new id
    # Two predicted tracks exchange their GT objects half way (ID switches), one spurious track
    # runs past the longest GT track (the extra steps are ignored).
    a, b = gt_tracks[0].boxes, gt_tracks[1].boxes
    half = min(len(a), len(b)) // 2
    if half:
        pred_tracks.append(Tracklet("swap1", np.concatenate([a[:half], b[half : 2 * half]])))
        pred_tracks.append(Tracklet("swap2", np.concatenate([b[:half], a[half : 2 * half]])))
    pred_tracks.append(Tracklet("ghost", random_boxes(rng, steps + 4)))
    order = rng.permutation(len(pred_tracks))
    return TrackletPrediction([pred_tracks[i] for i in order]), TrackletGroundTruth(gt_tracks)


def _tracking_many_tracks():
    """500 crowded GT tracks and 150 predicted ones over 2 steps: two IoU blocks of rows per step."""
    rng = np.random.default_rng(11)
    gt_tracks = [Tracklet(f"g{k}", random_boxes(rng, 2)) for k in range(500)]
    followed = rng.integers(0, 500, 150)
    pred_tracks = [Tracklet(f"p{k % 120}", jitter(rng, gt_tracks[g].boxes, 6.0)) for k, g in enumerate(followed)]
    return TrackletPrediction(pred_tracks), TrackletGroundTruth(gt_tracks)


_BOX_A, _BOX_B = [0, 0, 10, 10], [20, 20, 30, 30]

TRACKING_CASES = (
    *(Case(f"random{s}", lambda s=s: _tracking_random(s)) for s in SEEDS),
    Case(
        "id_switch_then_back",
        lambda: _tracking(
            {"p": [_BOX_A, _BOX_B, _BOX_B, _BOX_A]},
            {"a": [_BOX_A, _BOX_A, _BOX_A, _BOX_A], "b": [_BOX_B, _BOX_B, _BOX_B, _BOX_B]},
        ),
    ),
    # In prediction order, "w" takes g1 and "l" finds nothing left (TP 1); the other way round TP would be 2.
    Case("greedy_in_prediction_order", lambda: _tracking({"w": [WIDE], "l": [LEFT]}, {"g1": [G1], "g2": [G2]})),
    Case("predictions_beyond_gt_ignored", lambda: _tracking({"p": [_BOX_A, _BOX_A, _BOX_A]}, {"a": [_BOX_A]})),
    Case("no_predictions", lambda: _tracking({}, {"a": [_BOX_A, _BOX_A], "b": [_BOX_B]})),
    Case("empty_prediction_tracks", lambda: _tracking({"p": []}, {"a": [_BOX_A]})),
    Case("no_ground_truth", lambda: _tracking({"p": [_BOX_A]}, {})),
    Case("ground_truth_tracks_all_empty", lambda: _tracking({"p": [_BOX_A]}, {"a": [], "b": []})),
    Case(
        "all_false_positives",
        lambda: _tracking({"p": [_BOX_B, _BOX_B], "q": [_BOX_B, _BOX_B], "r": [_BOX_B]}, {"a": [_BOX_A, _BOX_A]}),
    ),
    Case("single_match", lambda: _tracking({"p": [[1, 0, 10, 10]]}, {"a": [_BOX_A]})),
    Case("many_tracks_several_blocks", _tracking_many_tracks),
)

ROWS = (
    MetricRow(
        "tracking:tracking_metrics",
        ref_tracking_metrics,
        TRACKING_CASES,
        info="tracking:TRACKING_METRIC_INFO",
        exact=frozenset({"fp", "fn", "idsw"}),
    ),
)
