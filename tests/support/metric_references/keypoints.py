"""References of ``rpx_tasks.metrics.keypoints``: ``keypoint_metrics`` (§1.4) and the
``match_errors`` it is built from."""

from __future__ import annotations

import math

import numpy as np

from rpx_tasks.contracts.keypoints import KeypointCorrespondences, KeypointMatches
from tests.support.metric_references.table import INF, SEEDS, Case, MetricRow, mean


def ref_match_errors(pred0, pred1, true0, true1) -> np.ndarray:
    pred0, pred1, true0, true1 = (
        np.asarray(p, np.float64).reshape(-1, 2).tolist() for p in (pred0, pred1, true0, true1)
    )
    errors = []
    for a, b in zip(true0, true1):
        nearest = min(range(len(pred0)), key=lambda j: math.dist(a, pred0[j]))  # min keeps the first on ties
        errors.append(math.dist(pred1[nearest], b))
    return np.array(errors, np.float64)


def ref_keypoint_metrics(prediction: KeypointMatches, ground_truth: KeypointCorrespondences):
    true0 = np.asarray(ground_truth.points0, np.float64).reshape(-1, 2).tolist()
    true1 = np.asarray(ground_truth.points1, np.float64).reshape(-1, 2).tolist()
    pred0 = np.asarray(prediction.points0, np.float64).reshape(-1, 2).tolist()
    pred1 = np.asarray(prediction.points1, np.float64).reshape(-1, 2).tolist()
    if not true0:
        return {"keypoint_acc": 1.0, "mean_match_error": 0.0}
    if not pred0:
        return {"keypoint_acc": 0.0, "mean_match_error": INF}
    if ground_truth.visibility is not None:
        keep = [bool(v) for v in np.asarray(ground_truth.visibility).ravel()]
        true0 = [p for p, k in zip(true0, keep) if k]
        true1 = [p for p, k in zip(true1, keep) if k]
        if not true0:
            return {"keypoint_acc": 1.0, "mean_match_error": 0.0}
    errors = ref_match_errors(pred0, pred1, true0, true1).tolist()
    return {"keypoint_acc": sum(1 for e in errors if e < 3.0) / len(errors), "mean_match_error": mean(errors)}


def _keypoints(true0, true1, pred0, pred1, visibility=None):
    return (
        KeypointMatches(np.asarray(pred0, np.float64).reshape(-1, 2), np.asarray(pred1, np.float64).reshape(-1, 2)),
        KeypointCorrespondences(
            np.asarray(true0, np.float64).reshape(-1, 2),
            np.asarray(true1, np.float64).reshape(-1, 2),
            None if visibility is None else np.asarray(visibility, bool),
        ),
    )


def _keypoints_random(seed: int, with_visibility: bool = True):
    rng = np.random.default_rng(seed)
    n = 40
    true0 = rng.uniform(0, [640, 480], (n, 2))
    true1 = true0 + rng.normal([15.0, -8.0], 3.0, (n, 2))
    visibility = rng.random(n) < 0.8 if with_visibility else None
    kept = rng.random(n) < 0.85
    pred0 = true0[kept] + rng.normal(0.0, 1.0, (int(kept.sum()), 2))
    pred1 = true1[kept] + rng.normal(0.0, 2.5, (int(kept.sum()), 2))
    pred0 = np.concatenate([pred0, rng.uniform(0, [640, 480], (8, 2))])
    pred1 = np.concatenate([pred1, rng.uniform(0, [640, 480], (8, 2))])
    order = rng.permutation(len(pred0))
    return _keypoints(true0, true1, pred0[order], pred1[order], visibility)


_E = np.zeros((0, 2))

KEYPOINT_CASES = (
    *(Case(f"random{s}", lambda s=s: _keypoints_random(s)) for s in SEEDS),
    Case("random_no_visibility", lambda: _keypoints_random(9, with_visibility=False)),
    Case("no_ground_truth", lambda: _keypoints(_E, _E, [[1, 1]], [[2, 2]])),
    Case("no_predictions", lambda: _keypoints([[1, 1], [4, 4]], [[2, 2], [5, 5]], _E, _E)),
    Case("all_invisible", lambda: _keypoints([[1, 1], [4, 4]], [[2, 2], [5, 5]], [[1, 1]], [[9, 9]], [0, 0])),
    Case("all_invisible_no_predictions", lambda: _keypoints([[1, 1]], [[2, 2]], _E, _E, [False])),
    Case(
        "threshold_is_strict",
        lambda: _keypoints([[0, 0], [10, 0]], [[0, 0], [10, 0]], [[0, 0], [10, 0]], [[3, 0], [10, 2.5]]),
    ),
    Case("tie_goes_to_first", lambda: _keypoints([[10, 10]], [[20, 20]], [[12, 10], [8, 10]], [[20, 21], [40, 40]])),
    Case("single_pair", lambda: _keypoints([[5.5, 6.5]], [[7.0, 8.0]], [[5.0, 6.0]], [[8.0, 9.5]])),
)


def _as_point_arrays(make) -> tuple:
    """The (pred0, pred1, true0, true1) arrays of a keypoint case, for ``match_errors``."""

    def build():
        prediction, ground_truth = make()
        return prediction.points0, prediction.points1, ground_truth.points0, ground_truth.points1

    return build


# match_errors needs at least one predicted match: every keypoint case that has one (it ignores visibility).
MATCH_ERROR_CASES = tuple(
    Case(case.id, _as_point_arrays(case.make), case.xfail) for case in KEYPOINT_CASES if len(case.make()[0].points0)
)

ROWS = (
    MetricRow(
        "keypoints:keypoint_metrics", ref_keypoint_metrics, KEYPOINT_CASES, info="keypoints:KEYPOINT_METRIC_INFO"
    ),
    MetricRow("keypoints:match_errors", ref_match_errors, MATCH_ERROR_CASES),
)
