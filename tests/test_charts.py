"""Charts: valid PNGs of the documented size (read from the PNG header; no pixel comparisons), written where the
report, compare, runs and the leaderboard say."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from rpx_tasks.charts import CHART_HEIGHT_PX, CHART_WIDTH_PX, write_comparison_chart, write_runs_trend
from rpx_tasks.comparison import compare_runs
from rpx_tasks.comparison.trend import trend_points
from rpx_tasks.leaderboard import leaderboard_rows, write_leaderboard
from rpx_tasks.runs_listing import list_runs
from tests.support.synthetic_runs import base_values, bench_baseline, frame_grid, write_run


def png_size(path: Path) -> tuple[int, int]:
    """Return (width, height) from a PNG's signature and IHDR chunk; fails on anything else."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("charts")
    return bench_baseline("ground_plane_prior", root / "a"), bench_baseline("constant_depth", root / "b")


def test_documented_size():
    assert (CHART_WIDTH_PX, CHART_HEIGHT_PX) == (1200, 700)


def test_every_run_folder_holds_phase_scores_and_summary_shows_it(real_runs):
    for folder in real_runs:
        assert png_size(folder / "phase_scores.png") == (1200, 700)
        assert "![phase scores](phase_scores.png)" in (folder / "summary.md").read_text()
        assert not list(folder.glob(".phase_scores.png.*"))  # written via a temp name, renamed into place


def test_comparison_and_trend_charts(real_runs, tmp_path):
    a, b = real_runs
    assert png_size(write_comparison_chart(compare_runs(a, b, resamples=200), tmp_path / "cmp.png")) == (1200, 700)
    runs = list_runs(a.parent, model="ground_plane_prior")
    trend = write_runs_trend(trend_points(runs, resamples=200), tmp_path / "trend.png", title="trend")
    assert png_size(trend) == (1200, 700)


def test_leaderboard_ranks_by_wps_in_the_metric_direction_with_cis(real_runs, tmp_path):
    payloads = []
    for folder in real_runs:
        payload = json.loads((folder / "result.json").read_text())
        payloads.append({**payload, "folder": str(folder)})
    no_folder = json.loads((real_runs[0] / "result.json").read_text())  # no run folder: no CI
    no_folder["model"] = "copy_without_folder"
    paths = write_leaderboard(payloads[::-1] + [no_folder], tmp_path / "board", title="monocular_depth / hard")
    assert set(paths) == {"parquet", "markdown", "chart"}
    rows = pq.read_table(paths["parquet"]).to_pylist()
    assert [row["rank"] for row in rows] == [1, 2, 3]
    assert rows[-1]["model"] == "constant_depth"  # absrel: lower WPS is better
    by_model = {row["model"]: row for row in rows}
    best = by_model["ground_plane_prior"]
    assert best["ci_low"] <= best["primary_mean"] <= best["ci_high"] and best["wps_overall"] is not None
    assert by_model["copy_without_folder"]["ci_low"] is None and by_model["copy_without_folder"]["ci_high"] is None
    assert {"ts", "latency_ms_p50", "throughput_sps", "primary_metric"} <= set(best)
    assert "| 3 | `constant_depth` |" in paths["markdown"].read_text()
    assert png_size(paths["chart"]) == (1200, 700)


def test_leaderboard_rows_rank_higher_is_better_metrics_descending_and_missing_wps_last(tmp_path):
    keys = frame_grid(scenes=2)
    payloads = []
    for model, level, wps in (("low", 0.2, 0.2), ("none", 0.5, None), ("high", 0.8, 0.8)):
        folder = write_run(
            tmp_path / model, keys, {"delta1": np.full(len(keys["id"]), level)}, model=model, primary="delta1"
        )
        payload = json.loads((folder / "result.json").read_text())
        payload["readiness"]["wps"]["s_overall"] = wps
        payloads.append(payload)
    assert [row["model"] for row in leaderboard_rows(payloads)] == ["high", "low", "none"]


def test_phase_scores_of_a_hand_written_run_with_several_difficulties(tmp_path):
    from rpx_tasks.phase_chart import write_phase_scores

    keys = {
        key: np.concatenate([frame_grid(2, difficulty=level)[key] for level in ("easy", "hard")])
        for key in frame_grid(2)
    }
    keys["id"] = np.char.add(keys["id"].astype(str), keys["difficulty"].astype(str))
    folder = write_run(tmp_path / "run", keys, {"absrel": base_values(keys)})
    payload = json.loads((folder / "result.json").read_text())
    assert png_size(write_phase_scores(folder, payload)) == (1200, 700)


def test_phase_chart_bars_are_drawn_to_scale_with_grey_levels_and_hatches():
    from rpx_tasks.phase_chart import draw_grouped_bars

    values = {("clutter", "easy"): 0.2, ("clean", "easy"): 0.4, ("clutter", "hard"): 0.3, ("clean", "hard"): math.nan}
    image = draw_grouped_bars(
        [("clutter", "WPS 0.2"), ("clean", "")],
        ["easy", "hard"],
        values,
        title="t",
        x_label="phase",
        y_label="absrel [unitless] (lower is better)",
        legend_title="difficulty",
    )
    pixels = np.asarray(image)
    assert pixels.shape == (700, 1200)
    easy_grey = round(0.85 * 255)
    columns = np.flatnonzero((pixels == easy_grey).sum(axis=0) > 50)  # the two plain (unhatched) easy bars
    bars = np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1)
    assert len(bars) == 2
    heights = [int((pixels[:, bar[len(bar) // 2]] == easy_grey).sum()) for bar in bars]
    assert abs(heights[1] / heights[0] - 2.0) < 0.03  # 0.4 is twice 0.2
    hard_grey = round(0.55 * 255)  # hatched '//': its grey and black lines in one bar, none for NaN
    hatched = np.flatnonzero((pixels == hard_grey).sum(axis=0) > 50)
    assert hatched.size and hatched.min() > bars[0].max() and hatched.max() < bars[1].min()
    inside = pixels[pixels.shape[0] // 2 :, hatched[len(hatched) // 2]]
    assert (inside == 0).sum() >= 5  # hatch lines cross the bar


def test_phase_chart_ticks_are_round_and_cover_the_range():
    from rpx_tasks.phase_chart import nice_ticks

    assert nice_ticks(0.0, 0.43) == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert nice_ticks(-0.11, 0.7) == [-0.2, 0.0, 0.2, 0.4, 0.6, 0.8]
    ticks = nice_ticks(3.0, 1234.5)
    assert ticks[0] <= 3.0 and ticks[-1] >= 1234.5 and len(ticks) <= 8
    assert nice_ticks(0.0, 2e-12) == [0.0, 5e-13, 1e-12, 1.5e-12, 2e-12]  # tiny ranges: distinct ticks
    assert nice_ticks(0.0, math.inf) == [0.0, math.inf] and nice_ticks(1.0, 1.0) == [1.0]


@pytest.mark.parametrize(
    "values, series",
    [
        ({("clutter", "easy"): 1.7e308}, ["easy"]),  # the axis range would overflow
        ({("clutter", "easy"): 1e308, ("clean", "easy"): -1e308}, ["easy"]),
        ({("clutter", "easy"): math.inf, ("clean", "easy"): math.nan}, ["easy"]),
        ({}, []),
        ({("clutter", "e" * 200): 0.5}, ["e" * 200]),  # a legend entry longer than the chart is wide
        ({("clutter", "easy"): 0.0}, ["easy"]),
    ],
)
def test_phase_chart_draws_absurd_values_and_long_labels_without_failing(values, series):
    from rpx_tasks.phase_chart import draw_grouped_bars

    image = draw_grouped_bars(
        [("clutter", "WPS 0.1"), ("clean", "")],
        series,
        values,
        title="t",
        x_label="x",
        y_label="y",
        legend_title="difficulty",
    )
    assert image.size == (1200, 700)


def test_writing_phase_scores_does_not_import_matplotlib(tmp_path):
    import subprocess
    import sys

    folder = write_run(tmp_path / "run", frame_grid(2), {"absrel": base_values(frame_grid(2))})
    code = (
        "import sys, json, pathlib\n"
        "from rpx_tasks.phase_chart import write_phase_scores\n"
        f"folder = pathlib.Path({str(folder)!r})\n"
        "png = write_phase_scores(folder, json.loads((folder / 'result.json').read_text()))\n"
        "print(png.name, 'matplotlib' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["phase_scores.png", "False"]
    assert png_size(folder / "phase_scores.png") == (1200, 700)
