"""A full disk while a run writes (issue 10, requirement 5): a clear OutputError, earlier reports intact,
and the run resumes once space is freed.

The run folder lives on a 6 MB tmpfs mounted in a private mount namespace (``unshare``), and the
model fills that disk when it predicts sample 10, so the run's next commit fails with ENOSPC.
Skipped where mount namespaces are not available.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.support.run_folders import REPORT_FILES

REPO = Path(__file__).resolve().parents[1]
RPX = Path(sys.executable).with_name("rpx")

SCRIPT = textwrap.dedent(
    """
    set -u
    mount -t tmpfs -o size=6m rpx-full-disk "$DISK" || exit 77
    bench() {{ "{rpx}" bench monocular_depth --model tests.support.killable_models:build --manifest builtin:sample \\
        --device cpu --batch-size 2 --checkpoint-every 4 --output-dir "$DISK/run" --plain; }}
    bench > /dev/null 2> "$HOST/first.err"; echo $? > "$HOST/first.code"
    cp -a "$DISK/run" "$HOST/earlier"
    export RPX_TEST_FILL_DISK_AT="$FILL_ID:$DISK/filler"
    bench > /dev/null 2> "$HOST/second.err"
    echo $? > "$HOST/second.code"
    cp -a "$DISK/run" "$HOST/after_full"
    unset RPX_TEST_FILL_DISK_AT
    bench > /dev/null 2> "$HOST/still_full.err"; echo $? > "$HOST/still_full.code"
    rm "$DISK/filler"
    RPX_TEST_CALL_LOG="$HOST/third.log" bench > /dev/null 2> "$HOST/third.err"; echo $? > "$HOST/third.code"
    cp -a "$DISK/run" "$HOST/final"
    """
)


def unshare_prefix() -> list[str] | None:
    """The command that runs a shell in a private mount namespace, or None where there is none."""
    if shutil.which("unshare") is None or sys.platform != "linux":
        return None
    prefix = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-Urm"]
    probe = subprocess.run([*prefix, "true"], capture_output=True)
    return prefix if probe.returncode == 0 else None


def test_disk_full_is_an_output_error_and_the_run_resumes_once_space_is_freed(tmp_path, sample_dataset):
    prefix = unshare_prefix()
    if prefix is None:
        pytest.skip("no private mount namespace here (unshare)")
    disk, host = tmp_path / "disk", tmp_path / "host"
    disk.mkdir()
    host.mkdir()
    from rpx_tasks.dataset import open_split
    from rpx_tasks.sample_data.builtin import builtin_manifest_path
    from rpx_tasks.tasks import get_task

    order = open_split(builtin_manifest_path("monocular_depth", "hard"), get_task("monocular_depth")).entries
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DISK": str(disk),
        "HOST": str(host),
        "FILL_ID": order[10]["id"],
    }
    done = subprocess.run(
        [*prefix, "bash", "-c", SCRIPT.format(rpx=RPX)], env=env, capture_output=True, text=True, timeout=300
    )
    if done.returncode == 77:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    read = lambda name: (host / name).read_text()  # noqa: E731
    assert read("first.code").strip() == "0", read("first.err")

    # The full disk: exit 1 with an OutputError that says what to do, the earlier report untouched.
    assert read("second.code").strip() == "1", read("second.err")
    err = read("second.err")
    assert "error: The disk holding" in err and "is full" in err and "run the same command again" in err, err
    for name in ("result.json", "summary.md", "cells.parquet", "per_sample_metrics.parquet", "run.json"):
        assert (host / "after_full" / name).read_bytes() == (host / "earlier" / name).read_bytes(), name
    # Run again while the disk is still full: the same clear error, now before anything runs.
    assert read("still_full.code").strip() == "1", read("still_full.err")
    assert "is full" in read("still_full.err") and "Traceback" not in read("still_full.err")
    staged = json.loads((host / "after_full" / ".run.json.running").read_text())
    assert staged["status"] in ("running", "failed") and staged["samples_done"] == 8

    # Space freed: the same command resumes after the 8 committed samples and completes.
    assert read("third.code").strip() == "0", read("third.err")
    assert "resuming run" in read("third.err") and "8 of 24 samples done" in read("third.err")
    assert len(read("third.log").splitlines()) == 16
    result = json.loads((host / "final" / "result.json").read_text())
    assert result["run"]["id"] == staged["id"] and result["run"]["resumed_from"] == 8
    earlier = json.loads((host / "earlier" / "result.json").read_text())
    assert result["aggregated"] == earlier["aggregated"] and result["readiness"] == earlier["readiness"]
    final_rows = pq.read_table(host / "final" / "per_sample_metrics.parquet").drop(["latency_ms"])
    assert final_rows.equals(pq.read_table(host / "earlier" / "per_sample_metrics.parquet").drop(["latency_ms"]))
    assert sorted(p.name for p in (host / "final").iterdir()) == REPORT_FILES
