"""`rpx compare` and `rpx runs --plot` on real runs of two baselines on the built-in sample data."""

from __future__ import annotations

import json

import pytest

from rpx_tasks.cli import main
from tests.support.synthetic_runs import bench_baseline, frame_grid, write_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """(A, B): ground_plane_prior and the worse constant_depth, monocular_depth on the built-in hard split."""
    root = tmp_path_factory.mktemp("compare")
    return bench_baseline("ground_plane_prior", root / "a"), bench_baseline("constant_depth", root / "b")


def test_compare_json_prints_the_documented_schema(two_runs, capsys):
    a, b = two_runs
    assert main(["compare", str(a), str(b), "--json"]) == 0
    comparison = json.loads(capsys.readouterr().out)
    assert comparison["schema_version"] == 1 and comparison["task"] == "monocular_depth"
    assert set(comparison) == {
        "schema_version",
        "task",
        "bootstrap",
        "runs",
        "pairing",
        "primary",
        "regressed",
        "metrics",
        "by_phase",
        "by_difficulty",
        "by_phase_difficulty",
        "readiness",
        "compute",
        "warnings",
    }
    assert comparison["bootstrap"] == {
        "unit": "scene",
        "resamples": 2000,
        "seed": 0,
        "confidence": 0.95,
        "interval": "percentile",
    }
    runs = comparison["runs"]
    assert runs["a"]["model"] == "ground_plane_prior" and runs["b"]["model"] == "constant_depth"
    assert {"id", "folder", "model", "split", "device_class", "data_revision", "fingerprint"} <= set(runs["a"])
    assert runs["a"]["folder"] == str(a) and runs["a"]["device_class"] == "cpu"
    primary = comparison["primary"]
    assert primary["metric"] == "absrel" and primary["delta"] > 0 and primary["verdict"] == "regressed"
    assert primary["ci"][0] <= primary["delta"] <= primary["ci"][1]
    entry_keys = {"metric", "higher_is_better", "n", "scenes", "a", "b", "delta", "ci", "min_delta", "verdict"}
    assert all(set(entry) == entry_keys for entry in comparison["metrics"])
    assert [group["phase"] for group in comparison["by_phase"]] == ["clutter", "interaction", "clean"]
    assert {entry["name"] for entry in comparison["readiness"]} >= {"wps.s_overall", "delta_int", "delta_rec", "ts"}
    assert {entry["name"] for entry in comparison["compute"]} >= {"latency_ms_p50", "throughput_sps"}
    assert comparison["pairing"]["paired"] == 24 and comparison["pairing"]["only_in_a"] == 0
    assert [warning["code"] for warning in comparison["warnings"]] == ["model_differs"]


def test_fail_on_regression_exits_3_only_when_b_is_worse(two_runs, capsys):
    a, b = two_runs
    assert main(["compare", str(a), str(b), "--fail-on-regression", "--plain"]) == 3
    out = capsys.readouterr().out
    assert "absrel regressed" in out and "All metrics" in out and "Readiness" in out
    assert main(["compare", str(b), str(a), "--fail-on-regression", "--plain"]) == 0
    assert main(["compare", str(a), str(a), "--fail-on-regression", "--plain"]) == 0
    assert "absrel no change" in capsys.readouterr().out


def test_compare_writes_markdown_and_plot(two_runs, tmp_path, capsys):
    a, b = two_runs
    markdown, plot = tmp_path / "cmp.md", tmp_path / "cmp.png"
    assert main(["compare", str(a), str(b), "--plain", "--markdown", str(markdown), "--plot", str(plot)]) == 0
    assert markdown.read_text().startswith("# RPX comparison — monocular_depth")
    assert plot.read_bytes()[:8] == PNG_SIGNATURE


def test_compare_user_errors_exit_1_with_a_hint(two_runs, tmp_path, capsys):
    a, _ = two_runs
    assert main(["compare", str(a), str(tmp_path / "nowhere")]) == 1
    assert "hint:" in capsys.readouterr().err
    keys = frame_grid(scenes=2)
    other = write_run(tmp_path / "det", keys, {"f1": keys["frame_idx"] / 10.0}, task="object_detection", primary="f1")
    assert main(["compare", str(a), str(other)]) == 1
    assert "different tasks" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["compare", str(a), str(a), "--min-delta", "absrel"])
    assert usage.value.code == 2
    # Output paths are checked before anything is compared; a file in a run folder other than result.json is refused.
    assert main(["compare", str(a), str(a), "--markdown", str(tmp_path)]) == 1
    assert "is a folder" in capsys.readouterr().err
    assert main(["compare", str(a), str(a), "--plot", str(tmp_path / "missing" / "x.png")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["compare", str(a), str(a / "summary.md")]) == 1
    assert "must be its result.json" in capsys.readouterr().err
    # Rows without ids cannot be paired.
    import shutil

    import pyarrow.parquet as pq

    no_ids = tmp_path / "no_ids"
    shutil.copytree(a, no_ids)
    table = pq.read_table(no_ids / "per_sample_metrics.parquet")
    pq.write_table(table.drop(["id"]), no_ids / "per_sample_metrics.parquet")
    assert main(["compare", str(a), str(no_ids)]) == 1
    assert "no `id` column" in capsys.readouterr().err


def test_runs_plot_draws_one_series_and_refuses_a_mix(two_runs, tmp_path, capsys):
    a, b = two_runs
    results = a.parent
    plot = tmp_path / "trend.png"
    assert main(["runs", str(results), "--model", "ground_plane_prior", "--plot", str(plot), "--plain"]) == 0
    assert plot.read_bytes()[:8] == PNG_SIGNATURE
    assert main(["runs", str(results), "--plot", str(tmp_path / "mixed.png"), "--plain"]) == 1
    err = capsys.readouterr().err
    assert "mix models" in err and "hint:" in err and not (tmp_path / "mixed.png").exists()
