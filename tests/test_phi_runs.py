"""Φ and J_min of real runs: result.json, summary.md, the terminal, the artifact table, `rpx phi`, `rpx compare`."""

from __future__ import annotations

import json
import math

import pytest

from rpx_tasks import bench
from rpx_tasks.cli import main
from rpx_tasks.comparison.compare import readiness_deltas
from rpx_tasks.config import RunConfig
from rpx_tasks.sample_data import write_sample_dataset
from rpx_tasks.steps.artifacts import phase_table

DEPTH_PHI = ["absrel", "rmse", "silog", "delta1"]


def _run(tmp_path, name, **options):
    config = RunConfig(
        task="monocular_depth",
        model_name="ground_plane_prior",
        device="cpu",
        output_dir=str(tmp_path / name),
        **options,
    )
    return bench.run_bench(config)


@pytest.fixture(scope="module")
def many_scenes(tmp_path_factory):
    """A sample dataset with 6 scenes per split (18 in `all`): N > K, so Φ is a number."""
    root = tmp_path_factory.mktemp("phi-data")
    write_sample_dataset(root, scenes_per_split=6, frames_per_clip=2, height=48, width=64)
    return root / "manifests" / "monocular_depth" / "all.json"


def test_builtin_depth_run_reports_phi_null_with_reason_and_j_min(tmp_path):
    paths, payload = _run(tmp_path, "hard", manifest="builtin:sample")
    result = json.loads(paths.result_json.read_text())
    phi, jedi = result["readiness"]["phi"], result["readiness"]["jedi"]
    assert phi["phi"] is None and phi["reason"].startswith("MANOVA singular")  # 2 scenes, K = 4
    assert phi["metrics_used"] == DEPTH_PHI and phi["n_eff"] == 2 and phi["n_dropped"] == 0
    assert set(phi["per_transition"]) == {"clutter→interaction", "interaction→clean", "clutter→clean"}
    assert jedi["metrics_used"] == DEPTH_PHI and list(jedi["per_phase"]) == ["clutter", "interaction", "clean"]
    assert jedi["j_min"] == pytest.approx(min(jedi["per_phase"].values()))
    assert 0.0 <= jedi["j_min"] <= jedi["overall"] <= 1.0
    summary = paths.summary_md.read_text()
    assert "## Phase robustness (Φ, J_min)" in summary and "MANOVA singular" in summary
    assert f"{jedi['j_min']:.4f}" in summary
    rows = {row["phase"]: row["score"] for row in phase_table(payload)}
    assert rows["Φ (phase robustness)"] is None and rows["J_min (worst phase)"] == round(jedi["j_min"], 6)


def test_single_scene_run_reports_phi_null_with_reason(tmp_path):
    # The built-in hard split lists its first scene's 12 frames (3 phases x 4) first.
    paths, _ = _run(tmp_path, "one", manifest="builtin:sample", max_samples=12)
    phi = json.loads(paths.result_json.read_text())["readiness"]["phi"]
    assert phi["phi"] is None and phi["n_eff"] == 1
    assert phi["reason"].startswith("insufficient data") and phi["interpretation"] is None


def test_many_scenes_give_a_number_then_rpx_phi_and_compare_read_it(tmp_path, many_scenes, capsys):
    paths, payload = _run(tmp_path, "many", manifest=str(many_scenes))
    phi = payload["readiness"]["phi"]
    assert phi["reason"] is None and phi["n_eff"] == 18
    assert 0.0 <= phi["phi"] <= 1.0 and phi["phi"] == min(phi["phi_wilks"], phi["phi_pillai"])
    assert phi["interpretation"] in {"negligible", "small", "medium", "large"}
    assert 0.0 <= phi["p_value"] <= 1.0
    assert main(["phi", str(paths.output_dir), "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["source"] == "result.json" and record["phi"]["phi"] == pytest.approx(phi["phi"])
    # An older run (no Φ in its result.json): rpx phi computes it from per_sample_metrics.parquet.
    older = json.loads(paths.result_json.read_text())
    for key in ("phi", "jedi"):
        del older["readiness"][key]
    paths.result_json.write_text(json.dumps(older))
    assert main(["phi", str(paths.result_json)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("ground_plane_prior  monocular_depth/") and f"Φ {phi['phi']:.4f}" in line
    assert f"J_min {payload['readiness']['jedi']['j_min']:.4f}" in line and "clutter" in line
    deltas = {d["name"]: d for d in readiness_deltas(payload, payload, primary_higher=False)}
    assert deltas["phi"]["a"] == pytest.approx(phi["phi"]) and deltas["phi"]["delta"] == 0.0
    assert math.isclose(deltas["j_min"]["a"], payload["readiness"]["jedi"]["j_min"])


def test_rpx_phi_on_something_that_is_not_a_run_exits_1(tmp_path, capsys):
    assert main(["phi", str(tmp_path / "nothing")]) == 1
    assert "No run at" in capsys.readouterr().err


def test_terminal_shows_phi_and_j_min(tmp_path, capsys):
    assert main(["demo", "--output-dir", str(tmp_path / "demo"), "--plain"]) == 0
    out = capsys.readouterr().out
    assert "Phase robustness" in out and "Φ (phase robustness)" in out and "J_min (worst phase)" in out


def test_leaderboard_carries_phi_and_j_min(tmp_path, many_scenes):
    from rpx_tasks.leaderboard import leaderboard_markdown, leaderboard_rows

    _, payload = _run(tmp_path, "board", manifest=str(many_scenes))
    (row,) = leaderboard_rows([payload])
    assert row["phi"] == pytest.approx(payload["readiness"]["phi"]["phi"])
    assert row["j_min"] == pytest.approx(payload["readiness"]["jedi"]["j_min"])
    assert "| Φ | J_min |" in leaderboard_markdown([row], title="t")
