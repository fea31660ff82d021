"""rpx compare: the scene-cluster bootstrap, verdicts, pairing, identity warnings and typed errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rpx_tasks.comparison import SCHEMA_VERSION, compare_runs, comparison_markdown
from rpx_tasks.comparison.bootstrap import bootstrap_replicates, resample_counts, scene_bootstrap
from rpx_tasks.comparison.verdicts import default_min_delta, verdict
from rpx_tasks.errors import ConfigError
from rpx_tasks.run_record import point_latest
from tests.support.synthetic_runs import base_values, frame_grid, write_run


def test_resample_counts_draw_every_scene_count_with_replacement_reproducibly():
    counts = resample_counts(5, 300, seed=7)
    assert counts.shape == (300, 5) and (counts.sum(axis=1) == 5).all()
    assert (counts == resample_counts(5, 300, seed=7)).all()
    assert not (counts == resample_counts(5, 300, seed=8)).all()


def test_bootstrap_of_two_scenes_matches_the_enumerated_distribution():
    """Scene a: one frame with delta 1; scene b: three frames with delta 0. Drawing 2 scenes with replacement gives
    {a, a} (mean 1) with p = 1/4, {a, b} (mean 1/4: frames weigh, not scenes) with p = 1/2, {b, b} (mean 0) with
    p = 1/4. So the estimate is 1/4 and the 2.5% / 97.5% quantiles are 0 and 1."""
    values, scenes = np.array([1.0, 0.0, 0.0, 0.0]), np.array(["a", "b", "b", "b"])
    replicates = bootstrap_replicates(values[:, None], scenes, resamples=4000, seed=0)[:, 0]
    outcomes, counts = np.unique(replicates, return_counts=True)
    assert outcomes.tolist() == [0.0, 0.25, 1.0]
    assert np.allclose(counts / 4000, [0.25, 0.5, 0.25], atol=0.03)
    result = scene_bootstrap(values, scenes, resamples=4000, seed=0)
    assert result.estimate[0] == 0.25 and result.low[0] == 0.0 and result.high[0] == 1.0 and result.frames[0] == 4


def test_bootstrap_of_three_single_frame_scenes_has_the_enumerated_mean_and_spread():
    """Scenes with one frame each, values 0, 3, 6: the 27 equally likely draws give replicate means on a grid of
    1/3 steps (0 .. 6) with mean 3 and variance Var(x) / 3 = 6 / 3 = 2."""
    replicates = bootstrap_replicates(
        np.array([[0.0], [3.0], [6.0]]), np.array(["x", "y", "z"]), resamples=20000, seed=1
    )
    assert np.allclose(replicates * 3 % 1, 0) or np.allclose(np.round(replicates * 3), replicates * 3)
    assert replicates.mean() == pytest.approx(3.0, abs=0.05) and replicates.var() == pytest.approx(2.0, rel=0.05)


def test_bootstrap_leaves_missing_values_out_metric_by_metric_and_is_seeded():
    values = np.array([[1.0, np.nan], [2.0, 4.0], [3.0, np.nan], [5.0, 6.0]])
    scenes = np.array(["a", "a", "b", "b"])
    result = scene_bootstrap(values, scenes, resamples=500, seed=3)
    assert result.estimate.tolist() == [2.75, 5.0] and result.frames.tolist() == [4, 2]
    again = scene_bootstrap(values, scenes, resamples=500, seed=3)
    assert (result.low == again.low).all() and (result.high == again.high).all()


@pytest.mark.parametrize(
    ("delta", "low", "high", "higher", "minimum", "expected"),
    [
        (0.1, 0.05, 0.15, True, 0.01, "improved"),
        (0.1, 0.05, 0.15, False, 0.01, "regressed"),
        (-0.1, -0.15, -0.05, False, 0.01, "improved"),
        (0.1, -0.01, 0.2, True, 0.01, "no change"),  # the interval holds 0
        (0.004, 0.003, 0.005, True, 0.005, "no change"),  # below min-delta
        (float("nan"), float("nan"), float("nan"), True, 0.01, "n/a"),
    ],
)
def test_verdict_rule(delta, low, high, higher, minimum, expected):
    assert verdict(delta, low, high, higher, minimum) == expected


def test_default_min_delta_table_range_variants_and_fallback():
    assert default_min_delta("absrel", 0.2) == 0.005 and default_min_delta("absrel_near", 7.0) == 0.005
    assert default_min_delta("rotation_error_deg", 3.0) == 0.1
    assert default_min_delta("unlisted_score", 40.0) == pytest.approx(0.2)  # 0.5% of A's mean


def test_identical_runs_give_zero_deltas_and_no_change_everywhere(tmp_path):
    keys = frame_grid(scenes=4)
    metrics = {"absrel": base_values(keys), "delta1": 1.0 - base_values(keys, seed=1)}
    a = write_run(tmp_path / "a", keys, metrics)
    b = write_run(tmp_path / "b", keys, metrics, run_id="20260102T000000Z-bbbbbb")
    comparison = compare_runs(a, b)
    entries = comparison["metrics"] + [entry for group in comparison["by_phase"] for entry in group["metrics"]]
    entries += [entry for group in comparison["by_difficulty"] for entry in group["metrics"]]
    entries += comparison["by_phase_difficulty"]
    assert entries and all(e["delta"] == 0 and e["ci"] == [0, 0] and e["verdict"] == "no change" for e in entries)
    assert all(entry["delta"] == 0 for entry in comparison["readiness"] + comparison["compute"])
    assert comparison["primary"]["verdict"] == "no change" and comparison["regressed"] is False
    assert comparison["warnings"] == []
    json.dumps(comparison, allow_nan=False)  # strict JSON


def test_a_model_worse_on_one_phase_regresses_on_that_phase_only(tmp_path):
    keys = frame_grid(scenes=6)
    absrel = base_values(keys)
    worse = absrel + np.where(keys["phase"] == "interaction", 0.05, 0.0)
    a = write_run(tmp_path / "a", keys, {"absrel": absrel})
    b = write_run(tmp_path / "b", keys, {"absrel": worse}, model="model_b", run_id="20260102T000000Z-bbbbbb")
    comparison = compare_runs(a, b)
    by_phase = {group["phase"]: group["metrics"][0] for group in comparison["by_phase"]}
    assert by_phase["interaction"]["verdict"] == "regressed"
    assert by_phase["interaction"]["delta"] == pytest.approx(0.05)
    assert by_phase["clutter"]["verdict"] == by_phase["clean"]["verdict"] == "no change"
    cells = {cell["phase"]: cell["verdict"] for cell in comparison["by_phase_difficulty"]}
    assert cells == {"clutter": "no change", "interaction": "regressed", "clean": "no change"}
    assert comparison["primary"]["delta"] == pytest.approx(0.05 / 3)
    # The same change read in the other direction is an improvement.
    assert compare_runs(b, a)["by_phase"][1]["metrics"][0]["verdict"] == "improved"
    # A min-delta above the change silences it.
    quiet = compare_runs(a, b, min_delta={"absrel": 0.1})
    assert all(group["metrics"][0]["verdict"] == "no change" for group in quiet["by_phase"])


def test_samples_are_paired_by_id_and_the_rest_counted(tmp_path):
    keys = frame_grid(scenes=3)
    values = base_values(keys)
    a = write_run(tmp_path / "a", keys, {"absrel": values})
    keep = keys["scene"] != "scene_002"
    keys_b = {key: column[keep] for key, column in keys.items()}
    keys_b["id"] = np.where(keys_b["frame_idx"] == 0, np.char.add(keys_b["id"].astype(str), "x"), keys_b["id"])
    b = write_run(tmp_path / "b", keys_b, {"absrel": values[keep]}, run_id="20260102T000000Z-bbbbbb")
    pairing = compare_runs(a, b)["pairing"]
    assert pairing == {"paired": 18, "only_in_a": 18, "only_in_b": 6, "scenes": 2}


def test_warnings_name_data_device_and_model_revision_differences(tmp_path):
    keys = frame_grid(scenes=2)
    metrics = {"absrel": base_values(keys)}
    a = write_run(tmp_path / "a", keys, metrics)
    b = write_run(tmp_path / "b", keys, metrics, device="cuda:0", data={"repo_id": "r", "revision": "abc"})
    codes = {warning["code"] for warning in compare_runs(a, b)["warnings"]}
    assert codes == {"data_revision_differs", "device_class_differs"}
    c = write_run(tmp_path / "c", keys, metrics)
    result = json.loads((c / "result.json").read_text())
    result["run"]["fingerprint"] = "another"
    (c / "result.json").write_text(json.dumps(result))
    assert [w["code"] for w in compare_runs(a, c)["warnings"]] == ["model_revision_differs"]


def test_runs_are_named_by_folder_result_json_or_latest(tmp_path):
    keys = frame_grid(scenes=2)
    results = tmp_path / "results"
    run = write_run(results / "20260101T000000Z-aaaaaa", keys, {"absrel": base_values(keys)})
    point_latest(results, run.name)
    for name in (run, run / "result.json", results, results / "latest"):
        assert compare_runs(name, run)["runs"]["a"]["folder"] == str(run)


def test_user_errors_are_config_errors_with_hints(tmp_path):
    keys = frame_grid(scenes=2)
    a = write_run(tmp_path / "a", keys, {"absrel": base_values(keys)})
    other = write_run(tmp_path / "b", keys, {"f1": base_values(keys)}, task="object_detection", primary="f1")
    (tmp_path / "empty").mkdir()
    for b, words in (
        (tmp_path / "missing", "does not exist"),
        (tmp_path / "empty", "not a finished run"),
        (other, "different tasks"),
    ):
        with pytest.raises(ConfigError, match=words) as caught:
            compare_runs(a, b)
        assert caught.value.hint
    with pytest.raises(ConfigError, match="resamples"):
        compare_runs(a, a, resamples=0)


def test_markdown_names_runs_verdicts_and_groups(tmp_path):
    keys = frame_grid(scenes=3)
    a = write_run(tmp_path / "a", keys, {"absrel": base_values(keys)})
    b = write_run(
        tmp_path / "b", keys, {"absrel": base_values(keys) + 0.1}, model="model_b", run_id="20260102T000000Z-bbbbbb"
    )
    text = comparison_markdown(compare_runs(a, b, resamples=200))
    assert text.startswith("# RPX comparison — monocular_depth")
    assert "**absrel regressed" in text and "| phase interaction |" in text and "models differ" in text
    assert "20260102T000000Z-bbbbbb" in text and "## Compute" in text
    assert SCHEMA_VERSION == 1


def test_one_scene_gives_no_interval_and_no_verdict(tmp_path):
    """Resampling a single scene always draws that scene: the interval would have width 0 and any delta
    would 'change'. The comparison says n/a instead."""
    import numpy as np

    from rpx_tasks.comparison.compare import _metric_entries

    rng = np.random.default_rng(3)
    a = rng.normal(0.5, 0.1, size=(50, 1))
    b = a + rng.normal(0.0, 0.3, size=(50, 1))
    scenes = np.array(["scene_1"] * 50, dtype=object)
    (entry,) = _metric_entries(a, b, scenes, ["absrel"], {"absrel": False}, {"absrel": 0.0}, resamples=200, seed=0)
    assert entry["scenes"] == 1 and entry["ci"] == [None, None] and entry["verdict"] == "n/a"
    assert entry["delta"] is not None
    scenes[25:] = "scene_2"
    (entry,) = _metric_entries(a, b, scenes, ["absrel"], {"absrel": False}, {"absrel": 0.0}, resamples=200, seed=0)
    assert entry["scenes"] == 2 and None not in entry["ci"]
