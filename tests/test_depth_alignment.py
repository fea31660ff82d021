"""Relative-depth alignment (``--alignment``, issue 12 requirement 3): the fit on hand-computed cases,
the config rules, the registry default and its override, the fingerprint, and whole runs on the
built-in sample data whose predictions are exact affine transforms of the ground truth."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rpx_tasks import model_selection
from rpx_tasks.alignment_record import AlignmentStats, resolve_alignment
from rpx_tasks.bench import run_bench
from rpx_tasks.config import RunConfig
from rpx_tasks.contracts.spec import ModelEntry
from rpx_tasks.errors import ConfigError, MetricError
from rpx_tasks.metrics.depth_alignment import DISPARITY_FLOOR, apply_alignment, fit_alignment
from rpx_tasks.reports import alignment_summary_line
from rpx_tasks.run_identity import config_fingerprint
from rpx_tasks.tasks._depth_maps import align_depth as align_prediction
from tests.support.affine_depth_models import SCALE, SHIFT, AffineDepthModel

RELATIVE_MODEL = "depth_anything_v2_relative_small"


# --- the fit -------------------------------------------------------------------------------------


def test_ls_affine_two_pixels_by_hand():
    # Valid pixels (x, y) = (1, 2), (3, 8): s = (8 - 2) / (3 - 1) = 3, t = 2 - 3 * 1 = -1; gt 0 is left out.
    fit = fit_alignment(np.array([1.0, 3.0, 5.0]), np.array([2.0, 8.0, 0.0]), "ls_affine")
    assert fit == pytest.approx({"scale": 3.0, "shift": -1.0})


def test_ls_affine_three_pixels_least_squares_by_hand():
    # x = 0, 1, 2; y = 1, 2, 4: x̄ = 1, ȳ = 7/3, Σ(x-x̄)(y-ȳ) = 3, Σ(x-x̄)² = 2: s = 1.5, t = 7/3 - 1.5.
    fit = fit_alignment(np.array([[0.0, 1.0, 2.0]]), np.array([[1.0, 2.0, 4.0]]), "ls_affine")
    assert fit["scale"] == pytest.approx(1.5)
    assert fit["shift"] == pytest.approx(7 / 3 - 1.5)


def test_ls_disparity_fits_inverse_depth_by_hand():
    # gt = 1, 2, 4 m -> disparity 1, 0.5, 0.25; pred = 2 * disparity + 1 = 3, 2, 1.5: s = 0.5, t = -0.5.
    gt = np.array([1.0, 2.0, 4.0])
    fit = fit_alignment(np.array([3.0, 2.0, 1.5]), gt, "ls_disparity")
    assert fit == pytest.approx({"scale": 0.5, "shift": -0.5})
    aligned = apply_alignment(np.array([3.0, 2.0, 1.5]), fit["scale"], fit["shift"], "ls_disparity")
    np.testing.assert_allclose(aligned, gt, rtol=1e-6)


def test_ls_disparity_guards_non_positive_disparities():
    aligned = apply_alignment(np.array([-1.0, 0.0, 1.0]), 1.0, 0.0, "ls_disparity")
    np.testing.assert_allclose(aligned, [1 / DISPARITY_FLOOR, 1 / DISPARITY_FLOOR, 1.0])
    assert aligned.dtype == np.float32


def test_stacked_frames_get_one_fit_per_clip():
    gt = np.random.default_rng(0).uniform(0.5, 4.0, (3, 4, 5))
    fit = fit_alignment(2.0 * gt - 0.3, gt, "ls_affine")
    assert fit == pytest.approx({"scale": 0.5, "shift": 0.15})


@pytest.mark.parametrize(
    ("pred", "gt"),
    [
        (np.array([[1.0, 2.0]]), np.array([[3.0, 0.0]])),  # one valid pixel
        (np.ones((3, 3)), np.zeros((3, 3))),  # none valid
        (np.full((2, 3), 2.0), np.arange(1.0, 7.0).reshape(2, 3)),  # constant prediction: singular
        (np.array([1.0, np.nan, 2.0]), np.array([1.0, 2.0, np.inf])),  # non-finite pixels left out: one valid
    ],
    ids=["one_valid", "none_valid", "singular", "nonfinite"],
)
@pytest.mark.parametrize("mode", ["ls_affine", "ls_disparity"])
def test_degenerate_fits_are_none(pred, gt, mode):
    assert fit_alignment(pred, gt, mode) == {"scale": None, "shift": None}


def test_degenerate_fit_scores_the_raw_prediction():
    pred = np.full((2, 2), 3.0, np.float32)
    aligned, fit = align_prediction(pred, np.ones((2, 2), np.float32), "ls_affine")
    assert aligned is pred and fit == {"scale": None, "shift": None}


def test_fit_errors_are_metric_errors():
    with pytest.raises(MetricError, match="Unknown depth alignment 'median'"):
        fit_alignment(np.ones(3), np.ones(3), "median")
    with pytest.raises(MetricError, match="does not match ground truth shape"):
        fit_alignment(np.ones((2, 3)), np.ones((3, 2)), "ls_affine")


def test_stats_count_fits_and_percentiles_and_survive_a_state_round_trip():
    stats = AlignmentStats("ls_affine")
    for scale in np.arange(1.0, 21.0):
        stats.add({"scale": float(scale), "shift": -float(scale)})
    stats.add({"scale": None, "shift": None})
    restored = AlignmentStats("ls_affine")
    restored.load_state_dict(stats.state_dict())
    record = restored.record("config")
    assert record["frames_fitted"] == 20 and record["frames_unfitted"] == 1
    assert record["scale"] == pytest.approx(
        {"mean": 10.5, "p5": float(np.percentile(np.arange(1, 21), 5)), "p95": 19.05}
    )
    assert record["shift"]["mean"] == pytest.approx(-10.5)
    assert alignment_summary_line(record).startswith("- Alignment: ls_affine (config), 20 frames fitted, 1 unfitted")
    assert AlignmentStats("ls_affine").record("config")["scale"] == {"mean": None, "p5": None, "p95": None}


# --- config, registry default, fingerprint ------------------------------------------------------


def test_unknown_alignment_is_a_config_error():
    with pytest.raises(ConfigError) as info:
        RunConfig(task="monocular_depth", model_name="baseline", alignment="ls_afine")
    assert info.value.message == "Unknown alignment 'ls_afine'."
    assert "did you mean 'ls_affine'" in info.value.hint


def test_alignment_on_a_task_without_depth_is_a_config_error():
    with pytest.raises(ConfigError, match="object_segmentation takes no alignment") as info:
        RunConfig(task="object_segmentation", model_name="baseline", alignment="ls_affine")
    assert "only depth tasks" in info.value.hint


def test_registry_default_applies_and_the_option_overrides_it():
    assert model_selection.get_entry(RELATIVE_MODEL).alignment == "ls_disparity"
    assert resolve_alignment("monocular_depth", None, RELATIVE_MODEL) == ("ls_disparity", "model default")
    assert resolve_alignment("monocular_depth", "none", RELATIVE_MODEL) == ("none", "config")
    assert resolve_alignment("monocular_depth", None, "depth_pro") == ("none", "model default")
    assert resolve_alignment("monocular_depth", None, "tests.support.regressing_models:depth") == ("none", "default")
    assert resolve_alignment("object_segmentation", None, "baseline") == ("none", "default")


def test_a_registry_entry_with_an_unknown_or_misplaced_alignment_is_refused():
    with pytest.raises(ConfigError, match="unknown alignment 'median'"):
        model_selection.register_model(ModelEntry("x_rel", "monocular_depth", "hf", "org/x", "d", alignment="median"))
    with pytest.raises(ConfigError, match="object_segmentation does not align"):
        model_selection.register_model(ModelEntry("x_rel", "object_segmentation", "hf", "org/x", "d", "ls_affine"))


def test_alignment_changes_the_fingerprint_and_the_default_equals_its_explicit_mode():
    def fingerprint(**options):
        return config_fingerprint(RunConfig(task="monocular_depth", model_name=RELATIVE_MODEL, **options), data={})

    assert fingerprint() == fingerprint(alignment="ls_disparity")
    assert len({fingerprint(), fingerprint(alignment="none"), fingerprint(alignment="ls_affine")}) == 3
    plain = RunConfig(task="monocular_depth", model_name="depth_pro")
    explicit_none = RunConfig(task="monocular_depth", model_name="depth_pro", alignment="none")
    assert config_fingerprint(plain, data={}) == config_fingerprint(explicit_none, data={})


# --- whole runs on the built-in sample data ------------------------------------------------------


def _run(tmp_path, model, **options):
    config = RunConfig(
        task="monocular_depth",
        manifest="builtin:sample",
        model=model,
        device="cpu",
        output_dir=str(tmp_path / "run"),
        count_flops=False,
        **options,
    )
    paths, payload = run_bench(config)
    return paths, json.loads(paths.result_json.read_text())


@pytest.mark.parametrize(("space", "mode"), [("depth", "ls_affine"), ("disparity", "ls_disparity")])
def test_an_exact_affine_prediction_scores_absrel_zero_once_aligned(tmp_path, sample_dataset, space, mode):
    paths, result = _run(tmp_path, AffineDepthModel(space), alignment=mode)
    assert result["aggregated"]["absrel"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert result["aggregated"]["delta1"]["mean"] == 1.0
    alignment = result["alignment"]
    assert (alignment["mode"], alignment["source"]) == (mode, "config")
    assert alignment["frames_fitted"] == result["num_samples"] and alignment["frames_unfitted"] == 0
    # The fit inverts the model's transform: depth (or disparity) = (pred - SHIFT) / SCALE.
    assert alignment["scale"]["mean"] == pytest.approx(1 / SCALE, rel=1e-5)
    assert alignment["shift"]["mean"] == pytest.approx(-SHIFT / SCALE, rel=1e-5)
    assert f"- Alignment: {mode} (config), {result['num_samples']} frames fitted" in paths.summary_md.read_text()


def test_without_alignment_the_same_prediction_scores_as_metric_depth(tmp_path, sample_dataset):
    _, result = _run(tmp_path, AffineDepthModel("depth"))
    assert result["aggregated"]["absrel"]["mean"] > 0.05
    assert result["alignment"] == {"mode": "none", "source": "default"}


def test_a_registry_default_aligns_and_the_option_overrides_it(tmp_path, sample_dataset, monkeypatch):
    entry = ModelEntry(
        "affine_relative_test",
        "monocular_depth",
        "import",
        "tests.support.affine_depth_models:affine_depth_model",
        "an exact affine transform of the ground truth",
        alignment="ls_affine",
    )
    monkeypatch.setitem(model_selection._EXTRA, entry.name, entry)
    config = {"task": "monocular_depth", "manifest": "builtin:sample", "device": "cpu", "count_flops": False}
    _, aligned = run_bench(RunConfig(model_name=entry.name, output_dir=str(tmp_path / "a"), **config))
    assert aligned["alignment"]["mode"] == "ls_affine" and aligned["alignment"]["source"] == "model default"
    assert aligned["aggregated"]["absrel"]["mean"] == pytest.approx(0.0, abs=1e-6)
    _, raw = run_bench(RunConfig(model_name=entry.name, alignment="none", output_dir=str(tmp_path / "b"), **config))
    assert raw["alignment"] == {"mode": "none", "source": "config"}
    assert raw["aggregated"]["absrel"]["mean"] > 0.05


class CrashingAffineModel(AffineDepthModel):
    """``AffineDepthModel`` (inverse-depth space) raising RuntimeError at prediction ``fail_at`` (None: never)."""

    def __init__(self, fail_at: int | None) -> None:
        super().__init__("disparity")
        self.fail_at = fail_at
        self.predicted = 0

    def predict(self, batch):
        if self.fail_at is not None and self.predicted + len(batch) > self.fail_at:
            raise RuntimeError("simulated crash")
        self.predicted += len(batch)
        return super().predict(batch)


def test_a_resumed_run_records_the_fits_of_every_attempt(tmp_path, sample_dataset):
    model = CrashingAffineModel(fail_at=13)
    options = {"alignment": "ls_disparity", "checkpoint_every": 4}
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(tmp_path, model, **options)
    model.fail_at = None
    _, resumed = _run(tmp_path, model, **options)
    # 13 predicted before the crash (12 committed), the other 12 after it: only the resumed ones twice.
    assert resumed["run"]["resumed_from"] == 12 and model.predicted == 13 + 12
    assert resumed["alignment"]["frames_fitted"] == resumed["num_samples"] == 24
    assert resumed["alignment"]["scale"]["mean"] == pytest.approx(1 / SCALE, rel=1e-5)
