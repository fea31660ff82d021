"""Crash-safe resume, proven with SIGKILL (issue 10, requirement 3 and its first acceptance test).

``rpx bench`` is killed 20 times at random points and rerun with the same command each time; the
last run completes. Its per-sample and cells Parquet and result.json's scores equal those of an
uninterrupted run, every attempt predicted only samples after the last durable commit (each
once), and the run folder holds the report and nothing else: no partial file, no lock, no journal.

The kills: the model (``tests.support.killable_models``) sends its own process SIGKILL when it
predicts a randomly chosen sample 4 to 11 samples after its start, after a random delay (0 to 60 ms: inference,
scoring, a commit; for the last 6 kills, at the last sample, within the time the uninterrupted
run took from its last prediction to its complete record: the last scores, the final commit, the report write);
an attempt with nothing left to predict is killed from here after a random 0.3 to 1.5 s (start-up).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from rpx_tasks.manifest import manifest_relpath
from rpx_tasks.run_journal import CHECKPOINT_DIR, COMMIT_FILE
from rpx_tasks.run_lock import LOCK_FILE
from tests.support.run_folders import REPORT_FILES

REPO = Path(__file__).resolve().parents[1]
RPX = Path(sys.executable).with_name("rpx")
KILLS = 20


@pytest.fixture(scope="module")
def clip_manifest(tmp_path_factory) -> Path:
    """A 96-sample monocular_depth split: 4 scenes x 3 phases x 8 frames of 96x128 (temporal pairs in every clip)."""
    from rpx_tasks.sample_data import write_sample_dataset

    root = write_sample_dataset(
        tmp_path_factory.mktemp("clips"), scenes_per_split=4, frames_per_clip=8, height=96, width=128
    )
    return root / manifest_relpath("monocular_depth", "hard")


def bench_command(manifest: Path, out: Path) -> list[str]:
    return [
        str(RPX),
        "bench",
        "monocular_depth",
        "--model",
        "tests.support.killable_models:build",
        "--manifest",
        str(manifest),
        "--split",
        "hard",
        "--device",
        "cpu",
        "--batch-size",
        "4",
        "--checkpoint-every",
        "6",
        "--output-dir",
        str(out),
        "--plain",
    ]


def attempt(command: list[str], log: Path, kill_at: str | None = None, kill_after_s: float | None = None):
    """Run ``command`` once (killing it from here after ``kill_after_s`` if given); returns the CompletedProcess-like
    (returncode, stderr)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "RPX_TEST_CALL_LOG": str(log),
        "RPX_TEST_KILL_AT": kill_at or "",
        "RPX_TEST_SLEEP_S": "0.004",
    }
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if kill_after_s is not None:
        try:
            process.wait(timeout=kill_after_s)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
    _, err = process.communicate(timeout=300)
    return process.returncode, err


def completed(out: Path) -> bool:
    """Whether the folder's run completed (a kill after its record was published: the next command starts a
    new run in the folder)."""
    record = out / "run.json"
    staged = out / ".run.json.running"
    return record.exists() and json.loads(record.read_text())["status"] == "complete" and not staged.exists()


def committed(out: Path) -> int:
    """Samples the next attempt will not predict again: the journal's commit (0 without one, or when the run
    completed and the next attempt starts a new one)."""
    commit = out / CHECKPOINT_DIR / COMMIT_FILE
    if completed(out) or not commit.exists():
        return 0
    return json.loads(commit.read_text())["samples_done"]


def calls_by_attempt(log: Path) -> list[list[str]]:
    """The sample ids each attempt predicted, attempts in order (one pid each)."""
    attempts: dict[str, list[str]] = {}
    for line in log.read_text().splitlines():
        pid, sample_id = line.split()[:2]
        attempts.setdefault(pid, []).append(sample_id)
    return list(attempts.values())


def test_sigkill_at_20_random_points_then_resume_equals_an_uninterrupted_run(clip_manifest, tmp_path):
    rng = random.Random(20261207)
    reference, out = tmp_path / "reference", tmp_path / "killed"
    code, err = attempt(bench_command(clip_manifest, reference), tmp_path / "reference.log")
    assert code == 0, err
    # How long the run went on after its last prediction until its record said complete (the last scores,
    # the final commit, the report write).
    last_call = float((tmp_path / "reference.log").read_text().splitlines()[-1].split()[2])
    tail_s = (reference / "run.json").stat().st_mtime - last_call
    order = pq.read_table(reference / "per_sample_metrics.parquet").column("id").to_pylist()
    total = len(order)
    assert total == 96

    log = tmp_path / "calls.log"
    commits_before = []  # what the journal held when each attempt started
    phases = []
    kills = 0
    while kills < KILLS:
        start = committed(out)
        commits_before.append(start)
        if start < total:
            # 4 to 11 samples on (a commit comes every 8), then at the last sample for the last 6 kills.
            if kills < KILLS - 6:
                target, delay = min(total - 1, start + rng.randrange(4, 12)), rng.uniform(0.0, 0.06)
            else:
                target, delay = total - 1, rng.uniform(0.0, tail_s)
            code, err = attempt(bench_command(clip_manifest, out), log, kill_at=f"{order[target]}:{delay:.4f}")
        else:
            code, err = attempt(bench_command(clip_manifest, out), log, kill_after_s=rng.uniform(0.3, 1.5))
        if code == -signal.SIGKILL:
            kills += 1
            phases.append("completed" if completed(out) else "report" if committed(out) == total else "loop")
        else:  # the kill came too late: the run completed; the remaining kills need a fresh run
            assert code == 0, err
            pytest.fail(f"attempt {len(commits_before)} completed before its kill; adjust the kill points")
    commits_before.append(committed(out))
    code, err = attempt(bench_command(clip_manifest, out), log)
    assert code == 0, err
    assert "resuming run" in err or commits_before[-1] == 0

    # The same numbers as the uninterrupted run (latency excepted).
    def metrics(folder: Path, name: str):
        table = pq.read_table(folder / name)
        return table.drop([c for c in table.column_names if c == "latency_ms"])

    assert metrics(out, "per_sample_metrics.parquet").equals(metrics(reference, "per_sample_metrics.parquet"))
    assert metrics(out, "cells.parquet").equals(metrics(reference, "cells.parquet"))
    mine, theirs = (json.loads((folder / "result.json").read_text()) for folder in (out, reference))
    assert mine["aggregated"] == theirs["aggregated"]
    assert mine["readiness"] == theirs["readiness"] and mine["readiness"]["ts"]["pairs"] == 84
    assert mine["compute"]["timed_samples"] > 0

    # Each attempt predicted samples in order, each once, starting right after the last commit.
    attempts = calls_by_attempt(log)
    # Every attempt of the final run that got as far as claiming the folder counts (a kill at start-up may
    # come before; a kill after a run completed leaves that run complete, and the next command starts anew).
    assert mine["run"]["status"] == "complete" and 1 <= mine["run"]["attempts"] <= KILLS + 1
    started = [start for start in commits_before if start < total]
    assert len(attempts) == len(started), (len(attempts), commits_before)
    for ids, start in zip(attempts, started):
        assert ids == order[start : start + len(ids)], (start, ids[:3])
    predicted = [sample for ids in attempts for sample in ids]
    assert set(predicted) == set(order)

    # Nothing but the report: no partial file, no lock, no journal.
    assert sorted(entry.name for entry in out.iterdir()) == REPORT_FILES
    assert not (out / LOCK_FILE).exists() and not (out / CHECKPOINT_DIR).exists()
    assert phases.count("loop") >= 10 and phases.count("report") + phases.count("completed") >= 1, phases
    assert len(set(commits_before)) >= 6, commits_before  # the loop kills came after commits, not all before the first
    print(
        f"kills: {phases.count('loop')} in the loop, {phases.count('report')} after the last commit, "
        f"{phases.count('completed')} after the run completed; {len(predicted)} predictions for {total} samples"
    )
