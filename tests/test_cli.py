"""End-to-end CLI runs on the built-in sample data."""

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from rpx_tasks.cli import main
from rpx_tasks.tasks import get_task
from tests.support.run_folders import REPORT_FILES

DEPTH = get_task("monocular_depth")


def _bench(args, capsys):
    code = main(["bench", "monocular_depth", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_and_ls_and_models(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "RPX" in text and "rank" in text and "bench" in text
    assert main(["ls"]) == 0
    listing = capsys.readouterr().out
    assert "monocular_depth" in listing and "rgb/*" in listing and "Splits: easy, medium, hard" in listing
    assert main(["models"]) == 0
    models = capsys.readouterr().out
    assert "depth_anything_v2_metric_indoor_small" in models and "ground_plane_prior" in models


def test_no_subcommand_and_no_model_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["bench", "monocular_depth", "--split", "hard"])
    assert info.value.code == 2
    assert "--model or --hf-checkpoint" in capsys.readouterr().err


def test_bench_options_left_out_take_the_run_config_defaults(capsys, monkeypatch):
    from rpx_tasks.cli import build_parser
    from rpx_tasks.config import RunConfig

    args = build_parser().parse_args(["bench", "monocular_depth", "--model", "constant_depth"])
    assert args.batch_size is None and args.device is None  # validate_config drops None: RunConfig's apply
    monkeypatch.setenv("COLUMNS", "200")  # no line breaks inside the help below
    with pytest.raises(SystemExit):
        main(["bench", "monocular_depth", "--help"])
    help_text = capsys.readouterr().out
    assert f"default: {RunConfig.batch_size}" in help_text and f"default: {RunConfig.device};" in help_text


def test_two_model_selectors_exit_1_with_hint_before_any_download(capsys, tmp_path):
    code, out, err = _bench(
        ["--model", "a", "--hf-checkpoint", "b", "--split", "hard", "--cache-dir", str(tmp_path / "c")], capsys
    )
    assert code == 1
    assert "exactly one of" in err and "hint:" in err and "Traceback" not in err
    assert not (tmp_path / "c").exists()


def _check_per_sample_rows(rows: list[dict], manifest: dict) -> None:
    """per_sample_metrics.parquet: one row per sample, the fixed columns, the depth metrics, a latency."""
    assert len(rows) == len(manifest["samples"])
    columns = list(rows[0])
    assert columns[:5] == ["id", "scene", "phase", "difficulty", "frame_idx"] and columns[-1] == "latency_ms"
    assert set(DEPTH.metric_names) <= set(columns)
    assert {r["phase"] for r in rows} == {"clutter", "interaction", "clean"}
    assert {r["difficulty"] for r in rows} == {"hard"}
    assert all(r["latency_ms"] > 0 for r in rows)


def _check_cells(cells: list[dict], rows: list[dict], scenes: set[str]) -> None:
    """cells.parquet: one cell per (scene, phase), each the mean of its rows."""
    assert len(cells) == 3 * len(scenes)
    one = [r for r in rows if (r["scene"], r["phase"]) == (cells[0]["scene"], cells[0]["phase"])]
    assert cells[0]["absrel"] == pytest.approx(sum(r["absrel"] for r in one) / len(one), rel=1e-9)


def _check_result(result: dict, rows: list[dict], scenes: set[str]) -> None:
    """result.json: aggregated metrics, readiness (WPS, TS), compute and environment records."""
    assert result["task"] == "monocular_depth" and result["split"] == "hard" and result["num_samples"] == len(rows)
    assert result["aggregated"]["absrel"]["mean"] == pytest.approx(sum(r["absrel"] for r in rows) / len(rows), rel=1e-9)
    assert result["aggregated"]["absrel"]["nan_count"] == 0
    assert result["aggregated"]["absrel"]["higher_is_better"] is False
    wps = result["readiness"]["wps"]
    assert set(wps) >= {"s_clutter", "s_interaction", "s_clean", "s_overall", "delta_int", "delta_rec"}
    assert result["readiness"]["ts"]["pairs"] == len(rows) - 3 * len(scenes)
    assert 0.0 < result["readiness"]["ts"]["score"] <= 1.0
    compute = result["compute"]
    assert set(compute) >= {
        "params_m",
        "flops_g",
        "latency_ms_p50",
        "latency_ms_p95",
        "throughput_sps",
        "peak_host_memory_mb",
        "peak_gpu_memory_mb",
    }
    assert compute["params_m"] is None and compute["flops_g"] is None
    assert compute["latency_ms_p95"] >= compute["latency_ms_p50"] > 0
    env = result["environment"]
    assert env["device"] == "cpu" and env["versions"]["numpy"]


def test_bench_with_import_path_writes_the_four_files(depth_manifest, tmp_path, capsys):
    out_dir = tmp_path / "out"
    code, out, err = _bench(
        [
            "--model",
            "rpx_tasks.models.baselines:ground_plane_depth",
            "--manifest",
            str(depth_manifest),
            "--split",
            "hard",
            "--device",
            "cpu",
            "--output-dir",
            str(out_dir),
            "--plain",
        ],
        capsys,
    )
    assert code == 0, err
    assert "Aggregated metrics" in out and "Weighted Phase Score" in out and "Efficiency" in out
    assert sorted(p.name for p in out_dir.iterdir()) == REPORT_FILES
    manifest = json.loads(depth_manifest.read_text())
    scenes = {s["scene_id"] for s in manifest["samples"]}
    rows = pq.read_table(out_dir / "per_sample_metrics.parquet").to_pylist()
    _check_per_sample_rows(rows, manifest)
    _check_cells(pq.read_table(out_dir / "cells.parquet").to_pylist(), rows, scenes)
    _check_result(json.loads((out_dir / "result.json").read_text()), rows, scenes)
    summary = (out_dir / "summary.md").read_text()
    assert summary.startswith("# RPX benchmark — monocular_depth") and "Weighted Phase Score" in summary
    assert "lower is better" in summary


def test_demo_runs_the_baseline_on_the_builtin_sample_data(tmp_path, capsys):
    from rpx_tasks.sample_data.builtin import builtin_manifest_path

    assert main(["demo", "--output-dir", str(tmp_path / "demo"), "--plain"]) == 0
    out = capsys.readouterr().out
    assert "Aggregated metrics" in out and "builtin:sample" in out
    result = json.loads((tmp_path / "demo" / "result.json").read_text())
    assert (result["task"], result["model"], result["split"]) == ("monocular_depth", "ground_plane_prior", "hard")
    assert result["manifest"] == str(builtin_manifest_path("monocular_depth", "hard"))


def test_manifest_with_escaping_path_exits_1_naming_it(depth_manifest, tmp_path, capsys):
    manifest = json.loads(depth_manifest.read_text())
    manifest["samples"][0]["depth"] = "../../../etc/passwd"
    bad = depth_manifest.parent / "escape.json"
    bad.write_text(json.dumps(manifest))
    try:
        code, out, err = _bench(
            [
                "--model",
                "constant_depth",
                "--manifest",
                str(bad),
                "--device",
                "cpu",
                "--output-dir",
                str(tmp_path),
                "--plain",
            ],
            capsys,
        )
    finally:
        bad.unlink()
    assert code == 1
    assert "../../../etc/passwd" in err and manifest["samples"][0]["id"] in err and "Traceback" not in err


def test_failed_run_keeps_the_previous_report(depth_manifest, tmp_path, capsys):
    out_dir = tmp_path / "out"
    args = ["--manifest", str(depth_manifest), "--device", "cpu", "--output-dir", str(out_dir), "--plain"]
    assert _bench(["--model", "constant_depth", *args], capsys)[0] == 0
    before = {p.name: p.read_bytes() for p in out_dir.iterdir()}
    module = tmp_path / "broken_model.py"
    module.write_text("import numpy as np\ndef fn(rgb):\n    return np.full(rgb.shape[:2], np.nan, np.float32)\n")
    sys.path.insert(0, str(tmp_path))
    try:
        code, out, err = _bench(["--model", "broken_model:fn", *args], capsys)
    finally:
        sys.path.remove(str(tmp_path))
    assert code == 1 and "NaN" in err
    assert {p.name: p.read_bytes() for p in out_dir.iterdir()} == before


def test_console_script_with_prefect_runs_the_flow_on_the_temporary_server(depth_manifest, tmp_path):
    # No PREFECT_API_URL, but --prefect: the flow runs on Prefect's temporary server under PREFECT_HOME.
    # (Without --prefect the run is in-process: tests/test_cli_run_path.py.)
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rpx_tasks.cli",
            "bench",
            "monocular_depth",
            "--model",
            "ground_plane_prior",
            "--manifest",
            str(depth_manifest),
            "--device",
            "cpu",
            "--output-dir",
            str(tmp_path / "out"),
            "--max-samples",
            "5",
            "--plain",
            "--prefect",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "prefect" not in done.stderr.lower()
    assert "prefect    flow run on a temporary server (--prefect)" in done.stdout
    assert (tmp_path / "prefect-home").is_dir()
    assert json.loads((tmp_path / "out" / "run.json").read_text())["orchestration"]["flow_run_id"]
    assert json.loads((tmp_path / "out" / "result.json").read_text())["num_samples"] == 5


def test_model_kwargs_reach_the_factory(depth_manifest, tmp_path, capsys, monkeypatch):
    (tmp_path / "scaled_model.py").write_text(
        "import numpy as np\n"
        "from rpx_tasks.models.numpy_function import wrap_numpy_function\n"
        "from rpx_tasks.tasks import get_task\n"
        "def make(depth_m=1.0):\n"
        "    constant = lambda rgb: np.full(rgb.shape[:2], depth_m, np.float32)\n"
        "    return wrap_numpy_function(get_task('monocular_depth'), constant, 'scaled')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    common = ["--manifest", str(depth_manifest), "--device", "cpu", "--max-samples", "4", "--plain"]
    results = {}
    for value in ("2.0", "3.5"):
        out = tmp_path / value
        code, _, err = _bench(
            ["--model", "scaled_model:make", "--model-kwarg", f"depth_m={value}", "--output-dir", str(out), *common],
            capsys,
        )
        assert code == 0, err
        results[value] = json.loads((out / "result.json").read_text())["aggregated"]["absrel"]["mean"]
    code, _, err = _bench(["--model", "constant_depth", "--output-dir", str(tmp_path / "c"), *common], capsys)
    assert code == 0, err
    assert results["2.0"] == pytest.approx(
        json.loads((tmp_path / "c" / "result.json").read_text())["aggregated"]["absrel"]["mean"]
    )
    assert results["3.5"] != pytest.approx(results["2.0"])
    with pytest.raises(SystemExit) as info:
        main(["bench", "monocular_depth", "--model", "constant_depth", "--model-kwarg", "no-equals-sign"])
    assert info.value.code == 2


def test_output_piped_into_a_reader_that_stops_early_ends_quietly():
    import subprocess
    import sys

    listing = subprocess.Popen(
        [sys.executable, "-m", "rpx_tasks.cli", "ls"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    listing.stdout.close()  # the reader is gone before rpx prints anything, like `rpx ls | head -0`
    err = listing.stderr.read().decode()
    assert listing.wait(timeout=60) == 0 and "Traceback" not in err, err
