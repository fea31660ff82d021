"""``rpx runs`` (issue 10, requirement 7): complete, incomplete and failed runs under a results folder."""

from __future__ import annotations

import json

import pytest

from rpx_tasks.cli import main
from rpx_tasks.config import RunConfig
from rpx_tasks.run_record import begin_run
from rpx_tasks.sample_data.builtin import BUILTIN_SAMPLE


def bench(model: list[str], split: str) -> int:
    """``rpx bench monocular_depth`` of ``model`` on the built-in sample data of ``split``, 4 samples, CPU."""
    return main(
        ["bench", "monocular_depth", *model, "--manifest", BUILTIN_SAMPLE, "--split", split]
        + ["--device", "cpu", "--max-samples", "4", "--plain"]
    )


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    """A results folder with one complete run (hard), one failed run (a model whose predict returns a
    string) and one incomplete run (started, never finished: what a killed run leaves), both easy."""
    root = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        assert bench(["--model", "ground_plane_prior"], "hard") == 0
        wrong = ["--model", "tests.support.bad_models:WrongType", "--model-kwarg", "task=monocular_depth"]
        assert bench(wrong, "easy") == 1
        config = RunConfig(
            task="monocular_depth", split="easy", model_name="ground_plane_prior", manifest=BUILTIN_SAMPLE, device="cpu"
        )
        incomplete = begin_run(config, "cpu", samples_total=8)
    return {"root": root / "rpx_results", "incomplete": incomplete.id}


def rpx_runs_json(capsys, *options: str) -> list[dict]:
    """The runs ``rpx runs --json`` prints (fails the test unless it exits 0)."""
    capsys.readouterr()
    code = main(["runs", *options, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_lists_complete_incomplete_and_failed_runs(results, capsys):
    runs = {run["status"]: run for run in rpx_runs_json(capsys, str(results["root"]))}
    assert sorted(runs) == ["complete", "failed", "incomplete"]
    complete, failed, incomplete = runs["complete"], runs["failed"], runs["incomplete"]
    assert (complete["task"], complete["model"], complete["split"]) == ("monocular_depth", "ground_plane_prior", "hard")
    assert complete["samples_done"] == complete["samples_total"] == 4
    assert complete["primary_metric"] == "absrel" and 0 < complete["primary_value"] < 10
    assert complete["device"] == "cpu" and complete["data_revision"].startswith("builtin:sample@")
    assert (failed["model"], failed["split"], failed["samples_total"]) == (
        "tests.support.bad_models:WrongType",
        "easy",
        4,
    )
    assert failed["primary_value"] is None
    assert incomplete["id"] == results["incomplete"]
    assert (incomplete["samples_done"], incomplete["samples_total"]) == (0, 8)


def test_filters(results, capsys):
    root = str(results["root"])
    assert [run["status"] for run in rpx_runs_json(capsys, root, "--split", "hard")] == ["complete"]
    assert [run["id"] for run in rpx_runs_json(capsys, root, "--status", "incomplete")] == [results["incomplete"]]
    assert [run["status"] for run in rpx_runs_json(capsys, root, "--model", "tests.support.bad_models:WrongType")] == [
        "failed"
    ]
    assert len(rpx_runs_json(capsys, root, "--task", "monocular_depth")) == 3
    assert rpx_runs_json(capsys, root, "--task", "semantic_segmentation") == []


def test_default_folder_and_plain_table(results, capsys, monkeypatch):
    monkeypatch.chdir(results["root"].parent)
    capsys.readouterr()
    assert main(["runs", "--plain", "--status", "incomplete"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["id", "task", "model", "split", "status"]
    assert lines[1].split()[:5] == [
        results["incomplete"],
        "monocular_depth",
        "ground_plane_prior",
        "easy",
        "incomplete",
    ]
    assert "0/8" in lines[1].split()


def test_a_missing_results_folder_is_an_error_with_a_hint(tmp_path, capsys):
    assert main(["runs", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert "No results folder" in err and "hint:" in err
