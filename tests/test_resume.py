"""Sample-level resume (issue 10, requirements 3 to 5): the same command continues an incomplete run.

In-process runs: a model raising at a chosen sample stands for a crash (``tests.support.killable_models``
for the CLI and the flow; small Model classes for the library). The SIGKILL proof is
``test_kill_resume.py``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from rpx_tasks.bench import run_bench
from rpx_tasks.cli import main
from rpx_tasks.config import RunConfig
from rpx_tasks.errors import ConfigError, ModelError, ModelRuntimeError, OutputError
from rpx_tasks.model_selection import resolve_model
from rpx_tasks.models.hf_batches import forward_error
from rpx_tasks.run_journal import CHECKPOINT_DIR, COMMIT_FILE
from rpx_tasks.run_lock import LOCK_FILE
from rpx_tasks.run_record import RUN_FILE, STAGED_RUN_FILE, latest_run, pending_record
from rpx_tasks.tasks import get_task
from tests.support.run_folders import REPORT_FILES

REPO = Path(__file__).resolve().parents[1]
PREFECT = Path(sys.executable).with_name("prefect")


class CrashingBaseline:
    """The task's baseline, recording every sample it predicts and raising RuntimeError (or returning a
    wrong prediction, ``bad=True``) at prediction number ``fail_at``."""

    def __init__(self, task: str, fail_at: int | None = None, bad: bool = False) -> None:
        self.task = task
        self.name = f"crashing_{task}"
        self.fail_at = fail_at
        self.bad = bad
        self.calls: list[str] = []
        self.inner = resolve_model(get_task(task), model_name="baseline", device="cpu")

    def setup(self) -> None:
        self.inner.setup()

    def predict(self, batch):
        predictions = []
        for sample in batch:
            if self.fail_at is not None and len(self.calls) == self.fail_at:
                if not self.bad:
                    raise RuntimeError("simulated crash")
                predictions.append("not a prediction")
                self.calls.append(sample.id)
                continue
            predictions.append(self.inner.predict([sample])[0])
            self.calls.append(sample.id)
        return predictions


def library_run(task: str, model, out: Path, **options):
    config = RunConfig(task=task, manifest="builtin:sample", model=model, device="cpu", output_dir=str(out), **options)
    return run_bench(config)


def table_without_latency(path: Path):
    table = pq.read_table(path)
    return table.drop([name for name in table.column_names if name == "latency_ms"])


def assert_same_report(folder: Path, reference: Path) -> dict:
    assert table_without_latency(folder / "per_sample_metrics.parquet").equals(
        table_without_latency(reference / "per_sample_metrics.parquet")
    )
    assert pq.read_table(folder / "cells.parquet").equals(pq.read_table(reference / "cells.parquet"))
    mine, theirs = (json.loads((path / "result.json").read_text()) for path in (folder, reference))
    assert mine["aggregated"] == theirs["aggregated"] and mine["readiness"] == theirs["readiness"]
    return mine


@pytest.mark.parametrize(
    "task, options",
    [
        ("object_segmentation", {"geometric_coherence": True}),  # TS of label maps, SGC
        ("monocular_depth", {}),  # TS of depth maps
        ("object_detection", {}),
        ("relative_camera_pose", {}),
    ],
)
def test_a_crashed_run_resumes_to_the_uninterrupted_result(task, options, tmp_path):
    reference = tmp_path / "reference"
    library_run(task, CrashingBaseline(task), reference, batch_size=2, checkpoint_every=5, **options)

    crashing = CrashingBaseline(task, fail_at=13)
    with pytest.raises(RuntimeError, match="simulated crash"):
        library_run(task, crashing, tmp_path / "run", batch_size=2, checkpoint_every=5, **options)
    record = json.loads((tmp_path / "run" / RUN_FILE).read_text())
    assert record["status"] == "failed" and record["resumable"] and record["samples_done"] == 12
    assert not (tmp_path / "run" / LOCK_FILE).exists()

    # The same configuration with another batch size (not part of the fingerprint) resumes it.
    again = CrashingBaseline(task)
    _, payload = library_run(task, again, tmp_path / "run", batch_size=3, checkpoint_every=5, **options)
    assert again.calls[0] == crashing.calls[12] and len(again.calls) == payload["num_samples"] - 12
    mine = assert_same_report(tmp_path / "run", reference)
    assert mine["run"]["id"] == record["id"] and mine["run"]["resumed_from"] == 12 and mine["run"]["attempts"] == 2
    assert any("resumed after 12" in note for note in mine["notes"])
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == REPORT_FILES


def test_an_rpx_error_fails_the_run_for_good(tmp_path):
    with pytest.raises(ModelError):
        library_run(
            "monocular_depth", CrashingBaseline("monocular_depth", fail_at=9, bad=True), tmp_path, checkpoint_every=4
        )
    record = json.loads((tmp_path / RUN_FILE).read_text())
    assert record["status"] == "failed" and not record["resumable"]
    assert not (tmp_path / CHECKPOINT_DIR).exists() and not (tmp_path / LOCK_FILE).exists()
    fresh = CrashingBaseline("monocular_depth")
    _, payload = library_run("monocular_depth", fresh, tmp_path, checkpoint_every=4)
    assert len(fresh.calls) == payload["num_samples"]  # started afresh
    assert payload["run"]["id"] != record["id"] and payload["run"]["resumed_from"] is None


def test_an_incomplete_run_of_another_configuration_in_output_dir_is_a_config_error(tmp_path):
    with pytest.raises(RuntimeError):
        library_run("monocular_depth", CrashingBaseline("monocular_depth", fail_at=9), tmp_path, checkpoint_every=4)
    commit = (tmp_path / CHECKPOINT_DIR / COMMIT_FILE).read_bytes()
    other = CrashingBaseline("monocular_depth")
    with pytest.raises(ConfigError) as caught:
        library_run("monocular_depth", other, tmp_path, max_samples=20, checkpoint_every=4)
    assert "another configuration" in caught.value.message and "8 of 24" in caught.value.message
    assert "--no-resume" in caught.value.hint
    assert other.calls == [] and (tmp_path / CHECKPOINT_DIR / COMMIT_FILE).read_bytes() == commit  # left as it was
    assert not (tmp_path / LOCK_FILE).exists()

    # --no-resume starts afresh in the folder.
    _, payload = library_run("monocular_depth", other, tmp_path, max_samples=20, checkpoint_every=4, resume=False)
    assert len(other.calls) == 20 and payload["run"]["attempts"] == 1 and payload["run"]["resumed_from"] is None


def test_a_failed_resumed_run_leaves_the_earlier_report_intact(tmp_path):
    library_run("monocular_depth", CrashingBaseline("monocular_depth"), tmp_path, max_samples=12)
    before = {name: (tmp_path / name).read_bytes() for name in REPORT_FILES}
    for _ in range(2):  # fail, then fail again while resuming
        with pytest.raises(RuntimeError):
            library_run("monocular_depth", CrashingBaseline("monocular_depth", fail_at=5), tmp_path, checkpoint_every=2)
        assert {name: (tmp_path / name).read_bytes() for name in REPORT_FILES} == before
        staged = json.loads((tmp_path / STAGED_RUN_FILE).read_text())
        assert staged["status"] == "failed" and staged["resumable"]
    assert staged["attempts"] == 2 and staged["samples_done"] == 8  # 4 the first time, 4 more the second
    _, payload = library_run("monocular_depth", CrashingBaseline("monocular_depth"), tmp_path, checkpoint_every=2)
    assert payload["num_samples"] == 24 and payload["run"]["resumed_from"] == 8
    assert json.loads((tmp_path / RUN_FILE).read_text())["id"] == payload["run"]["id"]
    assert sorted(path.name for path in tmp_path.iterdir()) == REPORT_FILES


def test_a_checkpoint_that_does_not_fit_the_split_is_refused(tmp_path):
    with pytest.raises(RuntimeError):
        library_run("monocular_depth", CrashingBaseline("monocular_depth", fail_at=9), tmp_path, checkpoint_every=4)
    commit_path = tmp_path / CHECKPOINT_DIR / COMMIT_FILE
    commit = json.loads(commit_path.read_text())
    commit_path.write_text(json.dumps({**commit, "last_id": "scene_999__0__00000"}))
    with pytest.raises(ConfigError, match="does not match this split"):
        library_run("monocular_depth", CrashingBaseline("monocular_depth"), tmp_path, checkpoint_every=4)
    assert commit_path.exists() and not (tmp_path / LOCK_FILE).exists()


def killable_bench(*extra: str) -> int:
    return main(
        [
            "bench",
            "monocular_depth",
            "--model",
            "tests.support.killable_models:build",
            "--manifest",
            "builtin:sample",
            "--device",
            "cpu",
            "--batch-size",
            "4",
            "--checkpoint-every",
            "8",
            "--plain",
            *extra,
        ]
    )


def test_the_same_default_command_resumes_its_run_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    crashed = CrashingBaseline("monocular_depth", fail_at=17)
    config = RunConfig(
        task="monocular_depth",
        manifest="builtin:sample",
        model_name="tests.support.killable_models:build",
        device="cpu",
        checkpoint_every=8,
        batch_size=4,
    )
    from rpx_tasks import bench

    dataset = bench.open_prepared(config, bench.prepare_split(config))
    crashed.task = "monocular_depth"
    with pytest.raises(RuntimeError):
        bench.run_split(config, crashed, dataset, "cpu")
    results = tmp_path / config.results_path
    (folder,) = list(results.iterdir())
    # An incomplete run of another configuration (fewer samples) beside it is not resumed.
    with pytest.raises(RuntimeError):
        bench.run_split(dataclasses.replace(config, max_samples=20), crashed, dataset, "cpu")
    assert len(list(results.iterdir())) == 2
    # Failed on a crash, not on an RPX error: `rpx runs` lists both as incomplete, with their progress.
    capsys.readouterr()
    assert main(["runs", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted((run["status"], run["samples_done"], run["samples_total"]) for run in listed) == [
        ("incomplete", 0, 24),  # the second crashed at its first sample
        ("incomplete", 16, 24),
    ]

    log = tmp_path / "calls.log"
    monkeypatch.setenv("RPX_TEST_CALL_LOG", str(log))
    assert killable_bench() == 0
    err = capsys.readouterr().err
    assert f"resuming run {folder.name}: 16 of 24 samples done" in err
    assert len(log.read_text().splitlines()) == 8
    assert latest_run(results).resolve() == folder.resolve()
    assert sorted(path.name for path in folder.iterdir()) == REPORT_FILES
    assert len(list(results.iterdir())) == 3  # the two runs and latest: no new folder


def test_a_concurrent_run_into_the_same_output_dir_fails_at_once(tmp_path, capsys):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from rpx_tasks.run_lock import RunLock; "
            "RunLock.acquire(Path(sys.argv[1]), run_id='first'); print('held', flush=True); time.sleep(60)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert killable_bench("--output-dir", str(tmp_path)) == 1
        err = capsys.readouterr().err
        assert f"Another run is writing into {tmp_path}: pid {holder.pid}" in err and "hint:" in err
        assert sorted(path.name for path in tmp_path.iterdir()) == [LOCK_FILE]  # nothing written
    finally:
        holder.kill()
        holder.wait()
    assert killable_bench("--output-dir", str(tmp_path)) == 0  # the dead holder's lock is taken over
    assert sorted(path.name for path in tmp_path.iterdir()) == REPORT_FILES


def test_a_transient_error_in_run_benchmark_is_retried_by_prefect_and_resumes(tmp_path, monkeypatch, capsys):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    ids = [row["id"] for row in pq.read_table(_reference_run(tmp_path, monkeypatch)).to_pylist()]
    log = tmp_path / "calls.log"
    monkeypatch.setenv("RPX_TEST_CALL_LOG", str(log))
    monkeypatch.setenv("RPX_TEST_RAISE_AT", ids[18])  # after the commit of 16 samples
    out = tmp_path / "retried"
    assert killable_bench("--output-dir", str(out)) == 0
    err = capsys.readouterr().err
    record = json.loads((out / "result.json").read_text())["run"]
    assert f"resuming run {record['id']}: 16 of 24 samples done" in err
    assert record["attempts"] == 2 and record["resumed_from"] == 16
    # Samples 16 and 17 were predicted before the failure and again after it; every other one once.
    predicted = [line.split()[1] for line in log.read_text().splitlines()]
    assert predicted == ids[:18] + ids[16:]
    assert_same_report(out, tmp_path / "reference")
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[record["orchestration"]["flow_run_id"]]))
        )
    (benchmark,) = [run for run in runs if run.name.startswith("run-benchmark")]
    assert benchmark.run_count == 2 and benchmark.state.is_completed()


def _reference_run(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.delenv("RPX_TEST_RAISE_AT", raising=False)
    assert killable_bench("--output-dir", str(tmp_path / "reference")) == 0
    return tmp_path / "reference" / "per_sample_metrics.parquet"


def test_resume_state_keeps_float_sums_bit_exact(tmp_path):
    """Temporal stability's running sum crosses the journal as JSON: it must come back bit for bit."""
    from rpx_tasks.readiness.temporal_stability import DepthTemporalStability

    accumulator = DepthTemporalStability()
    for value in (0.1, 0.2, 1e-17):  # an exact sum: partials that no single float holds
        accumulator._score_sum.add(value)
    restored = DepthTemporalStability()
    state = json.loads(json.dumps({k: v for k, v in accumulator.state_dict().items() if not isinstance(v, np.ndarray)}))
    restored.load_state_dict(state)
    assert restored.state_dict()["score_partials"] == accumulator.state_dict()["score_partials"]
    assert len(state["score_partials"]) > 1 and restored.state_dict()["score_sum"] == accumulator._score_sum.value


def test_prefect_flow_run_retry_of_a_failed_run_resumes_its_folder(tmp_path, monkeypatch, capsys):
    """A flow run whose run-benchmark failed on both tries is retried with `prefect flow-run retry`: the new
    attempt resumes the same run folder from its last commit."""
    from prefect.client.orchestration import get_client

    ids = [row["id"] for row in pq.read_table(_reference_run(tmp_path, monkeypatch)).to_pylist()]
    out = tmp_path / "failed"
    monkeypatch.setenv("RPX_TEST_RAISE_AT", f"{ids[18]}:2")  # fails the step and its retry
    with pytest.raises(RuntimeError, match="transient failure"):
        killable_bench("--output-dir", str(out))
    record = json.loads((out / RUN_FILE).read_text())
    assert record["status"] == "failed" and record["resumable"] and record["samples_done"] == 16
    flow_run_id = record["orchestration"]["flow_run_id"]
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(flow_run_id).state.is_failed()

    log = tmp_path / "calls.log"
    env = {key: value for key, value in os.environ.items() if key != "RPX_TEST_RAISE_AT"}
    env.update(PYTHONPATH=str(REPO), RPX_TEST_CALL_LOG=str(log))
    retried = subprocess.run(
        [str(PREFECT), "flow-run", "retry", flow_run_id, "--entrypoint", "flows/rpx_bench.py:rpx_bench"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert retried.returncode == 0, retried.stdout + retried.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["run"]["id"] == record["id"] and result["run"]["resumed_from"] == 16
    assert len(log.read_text().splitlines()) == 8  # only the 8 samples after the commit
    assert_same_report(out, tmp_path / "reference")
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(flow_run_id).state.is_completed()


class AdapterCrash(CrashingBaseline):
    """The baseline, failing as an HF fast path's forward pass does on CUDA out of memory at prediction ``fail_at``."""

    def predict(self, batch):
        if self.fail_at is not None and len(self.calls) + len(batch) > self.fail_at:
            raise forward_error(self.name, f"a batch of {len(batch)}", RuntimeError("CUDA out of memory (simulated)"))
        return super().predict(batch)


def test_an_adapter_error_such_as_out_of_memory_keeps_the_run_resumable(tmp_path):
    with pytest.raises(ModelRuntimeError, match="lower --batch-size|out of memory"):
        library_run("monocular_depth", AdapterCrash("monocular_depth", fail_at=10), tmp_path, checkpoint_every=4)
    record = json.loads((tmp_path / RUN_FILE).read_text())
    assert record["status"] == "failed" and record["resumable"] and record["samples_done"] == 8
    again = AdapterCrash("monocular_depth")  # the same model class: the same fingerprint
    _, payload = library_run("monocular_depth", again, tmp_path, checkpoint_every=4, batch_size=2)
    assert len(again.calls) == 16 and payload["run"]["resumed_from"] == 8


def test_a_checkpoint_of_another_run_is_never_resumed(tmp_path, caplog):
    with pytest.raises(RuntimeError):
        library_run("monocular_depth", CrashingBaseline("monocular_depth", fail_at=9), tmp_path, checkpoint_every=4)
    commit = json.loads((tmp_path / CHECKPOINT_DIR / COMMIT_FILE).read_text())
    record = json.loads((tmp_path / RUN_FILE).read_text())
    assert (commit["run_id"], commit["fingerprint"]) == (record["id"], record["fingerprint"])
    # What a kill between claiming the folder for a new run and clearing the old journal used to leave.
    (tmp_path / RUN_FILE).write_text(json.dumps({**record, "id": "20261207T000000Z-000000"}))
    fresh = CrashingBaseline("monocular_depth")
    _, payload = library_run("monocular_depth", fresh, tmp_path, checkpoint_every=4)
    assert len(fresh.calls) == 24 and "belongs to another run" in caplog.text


def test_no_resume_in_the_default_layout_abandons_the_incomplete_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def default_run(model, **options):
        config = RunConfig(
            task="monocular_depth", manifest="builtin:sample", model=model, device="cpu", checkpoint_every=4, **options
        )
        return run_bench(config)

    with pytest.raises(RuntimeError):
        default_run(CrashingBaseline("monocular_depth", fail_at=9))
    (broken,) = [p for p in (tmp_path / "rpx_results").rglob(RUN_FILE)]
    (broken.parent / CHECKPOINT_DIR / COMMIT_FILE).write_text("{not json")
    with pytest.raises(OutputError) as caught:
        default_run(CrashingBaseline("monocular_depth"))
    assert "--no-resume" in caught.value.hint
    _, fresh = default_run(CrashingBaseline("monocular_depth"), resume=False)
    abandoned = json.loads(broken.read_text())
    assert (
        abandoned["status"] == "failed"
        and not abandoned["resumable"]
        and abandoned["abandoned_by"] == fresh["run"]["id"]
    )
    assert not (broken.parent / CHECKPOINT_DIR).exists()
    _, plain = default_run(CrashingBaseline("monocular_depth"))  # no longer picks the abandoned run
    assert plain["run"]["resumed_from"] is None and plain["run"]["id"] not in (abandoned["id"], fresh["run"]["id"])


def test_a_staged_record_of_a_run_that_completed_is_not_pending(tmp_path):
    record = {"id": "20261207T000000Z-abcdef", "fingerprint": "f", "status": "complete"}
    (tmp_path / RUN_FILE).write_text(json.dumps(record))
    (tmp_path / STAGED_RUN_FILE).write_text(json.dumps({**record, "status": "running"}))
    assert pending_record(tmp_path) is None
    (tmp_path / RUN_FILE).write_text(json.dumps({**record, "id": "20261206T000000Z-000000"}))
    assert pending_record(tmp_path)[0]["id"] == record["id"]


def test_a_journal_left_in_a_completed_run_folder_is_tidied(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = RunConfig(task="monocular_depth", manifest="builtin:sample", model_name="ground_plane_prior", device="cpu")
    run_bench(config)
    (done,) = [p.parent for p in (tmp_path / "rpx_results").rglob(RUN_FILE)]
    (done / CHECKPOINT_DIR).mkdir()  # what a kill after publishing the record leaves
    (done / CHECKPOINT_DIR / COMMIT_FILE).write_text("{}")
    run_bench(config)
    assert not (done / CHECKPOINT_DIR).exists() and {p.name for p in done.iterdir()} >= {"result.json", RUN_FILE}
