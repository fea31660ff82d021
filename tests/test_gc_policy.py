"""The `rpx` console script's garbage-collector policy (rpx_tasks.gc_policy): off while the command starts,
on (with the imports frozen out of view) once the run starts, everything frozen before exit; `main` called
in a longer-lived process (tests, notebooks) leaves the collector alone."""

from __future__ import annotations

import gc
import json
import subprocess
import sys

from rpx_tasks import gc_policy

PROBE = """
import gc, json, sys
from rpx_tasks import cli, gc_policy

seen = {}
real = gc_policy.collect_from_now_on

def probe():
    seen["before"] = gc.isenabled()
    real()
    seen["after"] = gc.isenabled()
    seen["frozen"] = gc.get_freeze_count()

cli.collect_from_now_on = probe
sys.argv = ["rpx", *sys.argv[1:]]
code = cli.entry()
seen["exit_frozen"] = gc.get_freeze_count()
seen["enabled_at_exit"] = gc.isenabled()
print(json.dumps({"code": code, **seen}))
"""


def run_entry(*args: str, cwd) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120, check=True, cwd=cwd
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_bench_defers_collection_until_the_run_starts_and_freezes_before_exit(tmp_path):
    seen = run_entry("demo", "--plain", "--output-dir", str(tmp_path / "out"), cwd=tmp_path)
    assert seen["code"] == 0
    assert seen["before"] is False and seen["after"] is True  # off while starting, on for the run
    assert seen["frozen"] > 10_000  # the imports are out of the collector's view
    assert seen["exit_frozen"] >= seen["frozen"] and seen["enabled_at_exit"] is True


def test_other_commands_turn_collection_back_on_at_once(tmp_path):
    seen = run_entry("ls", cwd=tmp_path)
    assert seen["code"] == 0 and seen["before"] is False and seen["after"] is True


def test_collect_from_now_on_leaves_a_collector_that_was_never_deferred_alone():
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    gc_policy.collect_from_now_on()  # main() called by a test: nothing frozen, nothing changed
    assert gc.isenabled() and gc.get_freeze_count() == frozen
