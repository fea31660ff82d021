"""WPS / STR phase scores, depth Temporal Stability and the accumulators each task asks for."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from rpx_tasks.errors import ConfigError, MetricError
from rpx_tasks.metrics.depth import depth_pair_score
from rpx_tasks.readiness import PhaseScores, coherence_accumulator, temporal_accumulator
from rpx_tasks.readiness.coherence import GeometricCoherence
from rpx_tasks.readiness.phase_scores import esd_weighted_score
from rpx_tasks.readiness.rotation import rotate_about_centre
from rpx_tasks.readiness.task_accumulators import TEMPORAL_STABILITY_BY_KIND
from rpx_tasks.readiness.temporal_stability import DepthTemporalStability, inplane_rotation_deg
from rpx_tasks.sample import Sample
from rpx_tasks.tasks import get_task, iter_tasks

# ---------------------------------------------------------------- WPS / STR


def test_esd_weighted_score_reference_example():
    score = esd_weighted_score({"easy": 0.10, "medium": None, "hard": 0.30})
    assert score == pytest.approx((0.25 * 0.10 + 0.40 * 0.30) / 0.65)
    assert esd_weighted_score({"easy": None}) is None
    assert esd_weighted_score({}) is None
    with pytest.raises(MetricError):
        esd_weighted_score({"extreme": 1.0})


def test_wps_reference_example_per_phase():
    scores = PhaseScores()
    for phase in ("clutter", "interaction", "clean"):
        for value in (0.05, 0.15):  # easy mean 0.10
            scores.add(phase, "easy", value)
        scores.add(phase, "hard", 0.30)
    wps = scores.wps(higher_is_better=False)
    expected = (0.25 * 0.10 + 0.40 * 0.30) / 0.65
    for key in ("s_clutter", "s_interaction", "s_clean", "s_overall"):
        assert wps[key] == pytest.approx(expected)
    assert wps["delta_int"] == pytest.approx(0.0) and wps["delta_rec"] == pytest.approx(0.0)
    assert scores.count == 9 and scores.non_finite == 0


def test_single_difficulty_reduces_to_phase_mean():
    scores = PhaseScores()
    for value in (1.0, 2.0, 6.0):
        scores.add("clutter", "hard", value)
    for value in (4.0, 5.0):
        scores.add("interaction", "hard", value)
    scores.add("clean", "hard", 3.5)
    wps = scores.wps(higher_is_better=True)
    assert wps["s_clutter"] == pytest.approx(3.0)
    assert wps["s_interaction"] == pytest.approx(4.5)
    assert wps["s_clean"] == pytest.approx(3.5)
    assert wps["s_overall"] == pytest.approx((3.0 + 4.5 + 3.5) / 3)
    assert wps["delta_int"] == pytest.approx(1.5)
    assert wps["delta_rec"] == pytest.approx(-1.0)


def test_missing_phase_is_none_not_zero():
    scores = PhaseScores()
    scores.add("clutter", "easy", 0.2)
    scores.add("clean", "easy", 0.4)
    wps = scores.wps(higher_is_better=False)
    assert wps["s_interaction"] is None
    assert wps["s_overall"] == pytest.approx(0.3)  # mean over the two present phases
    assert wps["delta_int"] is None and wps["delta_rec"] is None
    assert wps["interaction_effect"] is None and wps["recovery_effect"] is None
    assert scores.str_block() == {
        "str_c_to_i": None,
        "str_i_to_l": None,
        "metric_clutter": pytest.approx(0.2),
        "metric_interaction": None,
        "metric_clean": pytest.approx(0.4),
    }


def test_no_samples_at_all():
    wps = PhaseScores().wps(higher_is_better=True)
    assert wps["s_clutter"] is wps["s_interaction"] is wps["s_clean"] is wps["s_overall"] is None
    assert wps["direction"] == "higher_is_better"


@pytest.mark.parametrize(
    "higher_is_better, interaction_word, recovery_word",
    [(False, "worse", "better"), (True, "better", "worse")],
)
def test_direction_words(higher_is_better, interaction_word, recovery_word):
    scores = PhaseScores()
    scores.add("clutter", "hard", 0.10)
    scores.add("interaction", "hard", 0.20)  # delta_int = +0.10
    scores.add("clean", "hard", 0.15)  # delta_rec = -0.05
    wps = scores.wps(higher_is_better)
    assert wps["direction"] == ("higher_is_better" if higher_is_better else "lower_is_better")
    assert wps["delta_int"] == pytest.approx(0.10)
    assert wps["delta_rec"] == pytest.approx(-0.05)
    assert wps["interaction_effect"] == interaction_word
    assert wps["recovery_effect"] == recovery_word


def test_unchanged_when_phases_are_equal():
    scores = PhaseScores()
    for phase in ("clutter", "interaction", "clean"):
        scores.add(phase, "medium", 0.5)
    wps = scores.wps(higher_is_better=True)
    assert wps["interaction_effect"] == wps["recovery_effect"] == "unchanged"


def test_str_block_uses_wps_phase_values():
    scores = PhaseScores()
    scores.add("clutter", "easy", 0.9)
    scores.add("clutter", "hard", 0.5)
    scores.add("interaction", "hard", 0.4)
    scores.add("clean", "medium", 0.8)
    wps = scores.wps(higher_is_better=True)
    block = scores.str_block()
    assert block["metric_clutter"] == pytest.approx((0.25 * 0.9 + 0.40 * 0.5) / 0.65)
    assert block["str_c_to_i"] == pytest.approx(wps["delta_int"])
    assert block["str_i_to_l"] == pytest.approx(wps["delta_rec"])
    assert (block["metric_interaction"], block["metric_clean"]) == (wps["s_interaction"], wps["s_clean"])
    assert "direction" not in block
    worded = scores.str_block(higher_is_better=True)
    assert worded["direction"] == "higher_is_better"
    assert worded["c_to_i_effect"] == wps["interaction_effect"] == "worse"  # 0.4 < 0.65
    assert worded["i_to_l_effect"] == wps["recovery_effect"] == "better"


def test_skips_missing_fields_and_counts_non_finite():
    scores = PhaseScores()
    scores.add(None, "hard", 1.0)
    scores.add("clutter", None, 1.0)
    scores.add("clutter", "hard", None)
    scores.add("clutter", "hard", float("nan"))
    scores.add("clutter", "hard", float("inf"))
    scores.add("clutter", "hard", 2.0)
    assert scores.non_finite == 2
    assert scores.count == 1
    assert scores.wps(higher_is_better=False)["s_clutter"] == 2.0


def test_unknown_phase_or_difficulty_raises():
    scores = PhaseScores()
    with pytest.raises(MetricError):
        scores.add("lunch", "hard", 1.0)
    with pytest.raises(MetricError):
        scores.add("clutter", "impossible", 1.0)


# ---------------------------------------------------------------- TS helpers


def opencv_rotate_reference(image: np.ndarray, angle_deg: float) -> np.ndarray:
    """cv2.warpAffine(image, cv2.getRotationMatrix2D((w/2, h/2), angle, 1), (w, h)) with
    INTER_LINEAR and BORDER_CONSTANT 0, written out pixel by pixel in float64: integer pixel
    centres, source position = inverse(M) @ (x, y, 1), neighbours outside the image = 0."""
    h, w = image.shape
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    cx, cy = w / 2, h / 2
    forward = np.array([[c, s, (1 - c) * cx - s * cy], [-s, c, s * cx + (1 - c) * cy], [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(forward)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    sx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    sy = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    fx, fy = sx - x0, sy - y0
    src = image.astype(np.float64)

    def at(yy, xx):
        inside = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
        values = np.zeros(xx.shape)
        values[inside] = src[yy[inside], xx[inside]]
        return values

    return (
        (1 - fx) * (1 - fy) * at(y0, x0)
        + fx * (1 - fy) * at(y0, x0 + 1)
        + (1 - fx) * fy * at(y0 + 1, x0)
        + fx * fy * at(y0 + 1, x0 + 1)
    )


def smooth_depth(h: int = 120, w: int = 160) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w]
    return (1.0 + xs / w + 0.4 * np.sin(ys / 9.0) * np.cos(xs / 13.0)).astype(np.float32)


def z_rotation_pose(angle_deg: float, translation=(0.0, 0.0, 0.0)) -> np.ndarray:
    a = math.radians(angle_deg)
    pose = np.eye(4)
    pose[:2, :2] = [[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]
    pose[:3, 3] = translation
    return pose


@pytest.mark.parametrize("angle", [3.0, -7.5, 30.0, 90.0, 123.4, -170.0])
def test_pillow_warp_matches_opencv_convention(angle):
    # Verified: the whole image, borders included, agrees to float32 rounding (~6e-8 here),
    # on a smooth map and on noise (noise has no smoothness to hide an off-by-half shift).
    rng = np.random.default_rng(0)
    for image in (smooth_depth(), rng.random((90, 131)).astype(np.float32)):
        got = rotate_about_centre(image, angle)
        want = opencv_rotate_reference(image, angle)
        assert got.shape == image.shape and got.dtype == np.float32
        assert np.max(np.abs(got - want)) < 1e-5
        assert np.array_equal(got > 0, want > 0)


@pytest.mark.parametrize("dtype, resample, border", [(np.float32, "BILINEAR", 0.0), (np.int32, "NEAREST", -1)])
def test_rotation_through_arrow_shares_memory_and_gives_the_copying_paths_pixels(dtype, resample, border, monkeypatch):
    from PIL import Image

    from rpx_tasks.readiness import rotation

    rng = np.random.default_rng(1)
    padded = rotation.ringed((96, 128), dtype, border)
    padded[1:-1, 1:-1] = (rng.random((96, 128)) * 9).astype(dtype)
    method = Image.Resampling[resample]
    via_arrow = [rotation.rotate_ringed(padded, angle, method, border) for angle in (2.5, -40.0)]
    # The copying path (Image.fromarray in, np.asarray out) on the same buffer gives the same pixels.
    monkeypatch.setattr(rotation, "_ARROW_MODES", {})
    copied = [rotation.rotate_ringed(padded, angle, method, border) for angle in (2.5, -40.0)]
    for got, want in zip(via_arrow, copied):
        assert got.dtype == want.dtype == dtype and np.array_equal(got, want)
    monkeypatch.undo()
    # The Arrow path is the one taken for a contiguous buffer (no copy in), and a strided one still works.
    monkeypatch.setattr(Image, "fromarray", lambda *a, **k: pytest.fail("copied the map into Pillow"))
    assert np.array_equal(rotation.rotate_ringed(padded, 2.5, method, border), via_arrow[0])
    monkeypatch.undo()
    strided = np.asfortranarray(padded)
    assert np.array_equal(rotation.rotate_ringed(strided, 2.5, method, border), via_arrow[0])


def test_rotation_direction_is_counter_clockwise_on_screen():
    image = np.zeros((101, 101), np.float32)
    image[50, 80] = 1.0  # right of the centre (50.5, 50.5)
    rotated = rotate_about_centre(image, 90.0)
    y, x = np.unravel_index(np.argmax(rotated), rotated.shape)
    assert x in (50, 51) and y < 40  # now above the centre


def test_zero_rotation_is_identity():
    image = smooth_depth()
    assert np.array_equal(rotate_about_centre(image, 0.0), image)


def test_inplane_rotation_from_poses():
    assert inplane_rotation_deg(z_rotation_pose(30, (1, 2, 3)), z_rotation_pose(50, (0, 1, 0))) == pytest.approx(20.0)
    assert inplane_rotation_deg(np.eye(4), np.eye(4)) == 0.0
    assert inplane_rotation_deg(None, np.eye(4)) is None
    bad = np.eye(4)
    bad[0, 3] = np.nan
    assert inplane_rotation_deg(np.eye(4), bad) is None
    with pytest.raises(MetricError):
        inplane_rotation_deg(np.eye(3), np.eye(4))


def test_depth_pair_score_by_hand():
    d_t = np.array([[1.0, 2.0], [3.0, 0.0]], np.float32)
    d_next = np.array([[1.5, 2.0], [0.0, 4.0]], np.float32)
    # valid: the two top pixels; L1 = 0.25, range = 2 - 1 = 1
    assert depth_pair_score(d_t, d_next) == pytest.approx(0.75)
    assert depth_pair_score(d_t, np.zeros_like(d_t)) == 1.0
    flat = np.full((2, 2), 2.0, np.float32)
    assert depth_pair_score(flat, flat + 1.0) == 0.0  # range floors at 1e-3, score at 0
    with pytest.raises(MetricError):
        depth_pair_score(d_t, np.zeros((3, 3), np.float32))


# ---------------------------------------------------------------- TS accumulator


def frame(idx: int, scene: str | None = "scene_1", phase: str | None = "clutter", pose=None) -> Sample:
    return Sample(
        id=f"{scene}-{phase}-{idx}",
        rgb=np.zeros((1, 1, 3), np.uint8),
        ground_truth=None,
        scene=scene,
        phase=phase,
        frame_idx=idx,
        camera_pose=pose,
    )


def run_ts(pairs) -> dict:
    ts = DepthTemporalStability()
    for sample, depth in pairs:
        ts.update(sample, depth)
    return ts.result()


def test_identical_frames_score_one():
    depth = smooth_depth()
    assert run_ts([(frame(i), depth) for i in range(3)]) == {"score": 1.0, "pairs": 2}


def test_single_frame_has_no_score():
    assert run_ts([(frame(0), smooth_depth())]) == {"score": None, "pairs": 0}
    assert DepthTemporalStability().result() == {"score": None, "pairs": 0}


def test_all_zero_frames_score_one():
    zeros = np.zeros((8, 8), np.float32)
    assert run_ts([(frame(0), zeros), (frame(1), zeros)]) == {"score": 1.0, "pairs": 1}


def test_frames_of_different_clips_are_never_paired():
    a, b = smooth_depth(), smooth_depth()[::-1].copy() * 3
    result = run_ts(
        [
            (frame(0, "scene_1", "clutter"), a),
            (frame(1, "scene_1", "clutter"), a),
            (frame(0, "scene_1", "interaction"), b),  # new phase: no pair with the frame before
            (frame(1, "scene_1", "interaction"), b),
            (frame(1, "scene_2", "interaction"), a),  # new scene
        ]
    )
    assert result == {"score": 1.0, "pairs": 2}


def test_frames_without_clip_or_out_of_order_are_not_paired():
    depth = smooth_depth()
    assert run_ts([(frame(0, None, "clutter"), depth), (frame(1, None, "clutter"), depth)])["pairs"] == 0
    assert run_ts([(frame(0, "s", None), depth), (frame(1, "s", None), depth)])["pairs"] == 0
    assert run_ts([(frame(5), depth), (frame(5), depth), (frame(3), depth), (frame(4), depth)])["pairs"] == 1


def test_rotated_pair_recovers_after_warp():
    d_t = smooth_depth(240, 320)
    theta = 12.0
    # The camera turned by theta, so the next map is the current one turned back by theta;
    # TS rotates it by +theta to line it up again (the lost corners are 0 and left out).
    d_next = rotate_about_centre(d_t, -theta)
    start = (frame(0, pose=z_rotation_pose(5.0)), d_t)
    with_poses = run_ts([start, (frame(1, pose=z_rotation_pose(5.0 + theta)), d_next)])
    without_poses = run_ts([(frame(0), d_t), (frame(1), d_next)])
    wrong_sign = run_ts([start, (frame(1, pose=z_rotation_pose(5.0 - theta)), d_next)])
    assert with_poses["pairs"] == without_poses["pairs"] == wrong_sign["pairs"] == 1
    assert with_poses["score"] > 0.97  # measured 0.996
    assert without_poses["score"] < with_poses["score"] - 0.05  # measured 0.862
    assert wrong_sign["score"] < with_poses["score"] - 0.05  # the sign convention matters


def test_zero_relative_rotation_skips_the_warp():
    depth = smooth_depth()
    pose = z_rotation_pose(25.0, (1.0, 0.0, 0.0))
    assert run_ts([(frame(0, pose=pose), depth), (frame(1, pose=pose.copy()), depth)]) == {"score": 1.0, "pairs": 1}


def test_keeps_its_own_copy_of_the_previous_frame():
    buffer = smooth_depth()
    ts = DepthTemporalStability()
    ts.update(frame(0), buffer)
    expected = buffer.copy()
    buffer *= 5.0  # a caller reusing its prediction buffer
    ts.update(frame(1), expected)
    assert ts.result() == {"score": 1.0, "pairs": 1}


def test_bad_predictions_raise_metric_error():
    ts = DepthTemporalStability()
    with pytest.raises(MetricError):
        ts.update(frame(0), np.zeros((2, 3, 3), np.float32))
    ts.update(frame(0), np.zeros((4, 4), np.float32))
    with pytest.raises(MetricError):
        ts.update(frame(1), np.zeros((5, 4), np.float32))
    with pytest.raises(MetricError):
        ts.update(frame(2, pose=np.eye(3)), np.zeros((4, 4), np.float32))


# ---------------------------------------------------------------- the accumulators a task asks for


def test_every_task_maps_to_its_accumulators_or_none():
    specs = iter_tasks()
    assert specs
    for spec in specs:
        temporal = temporal_accumulator(spec)
        if spec.temporal is None:
            assert temporal is None, spec.name
        else:
            assert type(temporal) is TEMPORAL_STABILITY_BY_KIND[spec.temporal], spec.name
            assert temporal.result() == {"score": None, "pairs": 0}
        coherence = coherence_accumulator(spec)
        assert isinstance(coherence, GeometricCoherence) if spec.geometric_coherence else coherence is None, spec.name
    assert {spec.temporal for spec in specs} - {None} == set(TEMPORAL_STABILITY_BY_KIND)  # every kind is used
    assert any(spec.geometric_coherence for spec in specs)


def test_each_call_gives_a_fresh_accumulator():
    spec = get_task("monocular_depth")
    assert temporal_accumulator(spec) is not temporal_accumulator(spec)


def test_unknown_temporal_kind_is_a_config_error():
    spec = dataclasses.replace(get_task("monocular_depth"), temporal="point_clouds")
    with pytest.raises(ConfigError, match="point_clouds"):
        temporal_accumulator(spec)
