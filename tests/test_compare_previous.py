"""Step compare-previous without a server: which earlier run is "the previous run", and that a comparison
problem never fails the run. (With a server, the event and the automations: tests/test_alerts_e2e.py.)"""

from __future__ import annotations

import json
from pathlib import Path

from rpx_tasks.config import RunConfig
from rpx_tasks.steps.artifacts import RunLabels
from rpx_tasks.steps.compare_previous import (
    RunFolder,
    choose_previous,
    comparable_runs,
    compare_previous_step,
    regression_payload,
    regression_resource_id,
)

LABELS = RunLabels("monocular_depth", "ground_plane_prior", "hard", "sample", "cpu")
SAMPLE_DATA = {"builtin": "builtin:sample", "version": "0.1.0"}


def write_run(
    results: Path,
    run_id: str,
    *,
    finished: str,
    status: str = "complete",
    data: dict | None = None,
    device: str = "cpu",
    result_id: str | None = None,
    flow_run_id: str | None = None,
) -> Path:
    folder = results / run_id
    folder.mkdir(parents=True)
    record = {
        "id": run_id,
        "status": status,
        "started": finished,
        "finished": finished,
        "task": "monocular_depth",
        "model": "ground_plane_prior",
        "split": "hard",
        "device": device,
        "data": data or SAMPLE_DATA,
        "orchestration": {"flow_run_id": flow_run_id} if flow_run_id else None,
    }
    (folder / "run.json").write_text(json.dumps(record))
    (folder / "result.json").write_text(json.dumps({"run": {"id": result_id or run_id}}))
    return folder


def test_only_complete_runs_of_the_same_task_model_split_data_and_device_class_are_comparable(tmp_path):
    results = tmp_path / "rpx_results" / "ground_plane_prior" / "hard"
    write_run(results, "r2", finished="2026-01-02T00:00:00Z")
    write_run(results, "r1", finished="2026-01-01T00:00:00Z")
    write_run(results, "hub", finished="2026-01-03T00:00:00Z", data={"repo_id": "x/y", "revision": "a" * 40})
    write_run(results, "gpu", finished="2026-01-03T00:00:00Z", device="cuda:0")
    write_run(results, "killed", finished="2026-01-03T00:00:00Z", status="running")
    write_run(results, "stale", finished="2026-01-03T00:00:00Z", result_id="older")  # result.json of another run
    (results / "latest").symlink_to("r2")
    current = write_run(results, "now", finished="2026-01-04T00:00:00Z")

    found = comparable_runs(current, LABELS, "now")
    assert [run.id for run in found] == ["r1", "r2"]  # oldest first; this run, links and the rest left out
    assert choose_previous(found, []).id == "r2"
    assert (
        comparable_runs(current, RunLabels("monocular_depth", "ground_plane_prior", "hard", "sample", "cuda"), "now")[
            0
        ].id
        == "gpu"
    )


def test_the_deployments_previous_flow_run_breaks_the_tie():
    runs = [
        RunFolder("r1", Path("r1"), "2026-01-01", "flow-a"),
        RunFolder("r2", Path("r2"), "2026-01-02", None),  # an `rpx bench` run, newer
    ]
    assert choose_previous(runs, ["flow-z", "flow-a"]).id == "r1"
    assert choose_previous(runs, ["flow-z"]).id == "r2"
    assert choose_previous([], ["flow-a"]) is None


def test_regression_payload_names_metric_delta_ci_and_both_runs():
    comparison = {
        "runs": {"a": {"id": "old"}, "b": {"id": "new"}},
        "primary": {"metric": "absrel", "delta": 0.5, "ci": [0.4, 0.6], "verdict": "regressed"},
    }
    payload = regression_payload(comparison, LABELS, "http://ui/runs/flow-run/1")
    assert payload["metric"] == "absrel" and payload["delta"] == 0.5 and payload["ci"] == [0.4, 0.6]
    assert (payload["previous_run_id"], payload["run_id"]) == ("old", "new")
    assert payload["flow_run_url"] == "http://ui/runs/flow-run/1"
    assert regression_resource_id(LABELS) == "rpx.benchmark.monocular_depth.ground_plane_prior.hard"


def test_a_comparison_problem_is_a_warning_not_a_failure(tmp_path, caplog):
    config = RunConfig(task="monocular_depth", model_name="ground_plane_prior", manifest="builtin:sample")
    results = tmp_path / "results"
    write_run(results, "r1", finished="2026-01-01T00:00:00Z")  # "complete", but its report files are missing
    current = write_run(results, "now", finished="2026-01-02T00:00:00Z")
    with caplog.at_level("WARNING"):
        outcome = compare_previous_step.fn(config, "cpu", {"output_dir": str(current), "run_id": "now"})
    assert outcome["status"] == "error" and "compare-previous" in caplog.text
    assert compare_previous_step.fn(config, "cpu", {})["status"] == "error"  # no run folder at all
    alone = write_run(tmp_path / "other", "only", finished="2026-01-02T00:00:00Z")
    assert compare_previous_step.fn(config, "cpu", {"output_dir": str(alone), "run_id": "only"}) == {
        "status": "no previous run"
    }
