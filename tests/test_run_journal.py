"""The run journal (issue 10, requirement 3): commits are durable and exact, and a cut-short commit is ignored."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from rpx_tasks.errors import OutputError
from rpx_tasks.reports import per_sample_schema
from rpx_tasks.run_journal import CHECKPOINT_DIR, COMMIT_FILE, RunJournal

SCHEMA = per_sample_schema(["abs_rel", "delta1"])


def row(index: int) -> dict:
    return {
        "id": f"s{index:03d}",
        "scene": "scene_a",
        "phase": "clutter",
        "difficulty": "hard",
        "frame_idx": index,
        "abs_rel": 0.1 + index / 3.0,  # not exactly representable in decimal: must round-trip bit for bit
        "delta1": None if index % 3 == 0 else float("nan") if index % 3 == 1 else 1.0 / 7.0,
        "latency_ms": 1.5,
    }


def state(index: int) -> dict:
    return {
        "timing": {"steady_seconds": np.arange(index, dtype=np.float64) / 3.0},
        "temporal": {
            "score_sum": 2.0 / 3.0,
            "pairs": index,
            "prev": np.full((3, 4), index, np.float32),
            "clip": ["a", None],
        },
        "flops": {"flops_g": None, "skipped_reason": "none"},
    }


def test_commits_round_trip_rows_and_state_exactly(tmp_path):
    journal = RunJournal(tmp_path, SCHEMA, every_samples=4)
    assert journal.open() is None
    for index in range(10):
        journal.write(row(index))
        if journal.due(index + 1):
            journal.commit(index + 1, state(index + 1))
    assert journal.committed == 8  # commits at 4 and 8; rows 9 and 10 are not durable yet

    reopened = RunJournal(tmp_path, SCHEMA)
    checkpoint = reopened.open()
    assert checkpoint.samples_done == 8 and checkpoint.last_id == "s007"
    expected = state(8)
    assert np.array_equal(checkpoint.state["timing"]["steady_seconds"], expected["timing"]["steady_seconds"])
    assert checkpoint.state["temporal"]["prev"].dtype == np.float32
    assert np.array_equal(checkpoint.state["temporal"]["prev"], expected["temporal"]["prev"])
    assert checkpoint.state["temporal"]["score_sum"] == 2.0 / 3.0 and checkpoint.state["temporal"]["clip"] == [
        "a",
        None,
    ]
    rows = list(reopened.rows())
    assert [r["id"] for r in rows] == [f"s{i:03d}" for i in range(8)]
    assert [r["abs_rel"] for r in rows] == [0.1 + i / 3.0 for i in range(8)]
    assert rows[0]["delta1"] is None and np.isnan(rows[1]["delta1"]) and rows[2]["delta1"] == 1.0 / 7.0
    # Only the last commit's state file is kept.
    assert len(list((tmp_path / CHECKPOINT_DIR).glob("state-*.npz"))) == 1


def test_a_commit_cut_short_leaves_the_previous_one_valid(tmp_path):
    journal = RunJournal(tmp_path, SCHEMA, every_samples=2)
    journal.open()
    for index in range(4):
        journal.write(row(index))
    journal.commit(4, state(4))
    folder = tmp_path / CHECKPOINT_DIR
    # What a kill between writing the next row file and replacing checkpoint.json leaves behind.
    (folder / "rows-000002.parquet").write_bytes(b"PAR1 half written")
    (folder / ".checkpoint.json.tmp").write_text("{")
    (folder / "state-000002-6.npz").write_bytes(b"partial")
    checkpoint = RunJournal(tmp_path, SCHEMA).open()
    assert checkpoint.samples_done == 4
    assert sorted(path.name for path in folder.iterdir()) == [COMMIT_FILE, "rows-000001.parquet", "state-000001-4.npz"]


def test_assemble_writes_every_committed_row_in_order(tmp_path):
    journal = RunJournal(tmp_path, SCHEMA, every_samples=3)
    journal.open()
    for index in range(7):
        journal.write(row(index))
        if journal.due(index + 1):
            journal.commit(index + 1, {})
    journal.commit(7, {})
    temp = journal.assemble(tmp_path / "per_sample_metrics.parquet", metadata={"rpx_run_id": "r1"})
    table = pq.read_table(temp)
    assert table.column("id").to_pylist() == [f"s{i:03d}" for i in range(7)]
    assert table.schema.metadata[b"rpx_run_id"] == b"r1"
    assert table.schema.remove_metadata().equals(SCHEMA)


def test_due_by_seconds(tmp_path):
    journal = RunJournal(tmp_path, SCHEMA, every_samples=1000, every_seconds=0.05)
    journal.open()
    journal.write(row(0))
    assert not journal.due(1)
    import time

    time.sleep(0.06)
    assert journal.due(1) and not journal.due(0)


def test_an_unreadable_commit_is_an_output_error_that_says_no_resume(tmp_path):
    journal = RunJournal(tmp_path, SCHEMA)
    journal.open()
    journal.write(row(0))
    journal.commit(1, {})
    commit = tmp_path / CHECKPOINT_DIR / COMMIT_FILE
    commit.write_text("{not json")
    with pytest.raises(OutputError) as caught:
        RunJournal(tmp_path, SCHEMA).open()
    assert "--no-resume" in caught.value.hint
    commit.write_text(json.dumps({"version": 1, "samples_done": 1, "chunks": ["rows-000009.parquet"], "state": {}}))
    with pytest.raises(OutputError, match="rows-000009"):
        RunJournal(tmp_path, SCHEMA).open()
