"""The two decoding engines (threads, one worker process) give the same samples, errors and runs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from rpx_tasks.bench import run_bench
from rpx_tasks.config import RunConfig
from rpx_tasks.dataset import open_split
from rpx_tasks.errors import ConfigError, ManifestError
from rpx_tasks.manifest import manifest_relpath
from rpx_tasks.prefetch import processes_available
from rpx_tasks.sample_data import write_sample_dataset
from rpx_tasks.tasks import get_task

DEPTH = get_task("monocular_depth")
pytestmark = pytest.mark.skipif(not processes_available(), reason="the process engine needs Linux memfd")


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory) -> Path:
    return write_sample_dataset(
        tmp_path_factory.mktemp("prefetch-data"), scenes_per_split=1, frames_per_clip=3, splits=["hard"]
    )


@pytest.fixture(scope="module")
def manifest(dataset_root) -> Path:
    return dataset_root / manifest_relpath("monocular_depth", "hard")


def _children() -> set[int]:
    path = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
    return {int(pid) for pid in path.read_text().split()}


def _shm() -> set[str]:
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()


def _same(a, b) -> None:
    assert (a.id, a.scene, a.phase, a.difficulty, a.frame_idx, a.metadata) == (
        b.id,
        b.scene,
        b.phase,
        b.difficulty,
        b.frame_idx,
        b.metadata,
    )
    for x, y in ((a.rgb, b.rgb), (a.ground_truth, b.ground_truth), (a.camera_pose, b.camera_pose)):
        assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_both_engines_give_identical_samples_in_identical_order(manifest, batch_size, monkeypatch):
    dataset = open_split(manifest, DEPTH)
    threads = list(dataset.iter_batches(batch_size, engine="threads"))
    monkeypatch.setenv("RPX_DECODE_ENGINE", "processes")
    assert dataset.decode_engine() == "processes"
    processes = list(dataset.iter_batches(batch_size))
    assert [len(b) for b in threads] == [len(b) for b in processes]
    assert len(threads[0]) == batch_size and sum(map(len, threads)) == len(dataset) == 9
    for a, b in zip([s for batch in threads for s in batch], [s for batch in processes for s in batch]):
        _same(a, b)


def test_engine_choice(manifest, monkeypatch):
    dataset = open_split(manifest, DEPTH)
    monkeypatch.delenv("RPX_DECODE_ENGINE", raising=False)
    assert dataset.decode_engine() == "threads"  # a small split does not repay the worker's start-up
    monkeypatch.setenv("RPX_DECODE_ENGINE", "threads")
    assert dataset.decode_engine() == "threads"
    assert dataset.decode_engine("processes") == "processes"
    with pytest.raises(ConfigError):
        dataset.decode_engine("fibers")


def test_a_broken_file_raises_the_manifest_error_at_its_sample(dataset_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(dataset_root, root)
    manifest = root / manifest_relpath("monocular_depth", "hard")
    entries = open_split(manifest, DEPTH).entries
    broken = entries[4]
    # Pixel data zeroed in the middle: header and IEND intact (the split opens), the pixels do not decode.
    data = (root / broken["depth"]).read_bytes()
    middle = len(data) // 2
    (root / broken["depth"]).write_bytes(data[:middle] + bytes(len(data) // 4) + data[middle + len(data) // 4 :])
    expected = None
    try:
        open_split(manifest, DEPTH).decode(broken)
    except ManifestError as exc:
        expected = exc
    seen = []
    with pytest.raises(ManifestError) as raised:
        for batch in open_split(manifest, DEPTH).iter_batches(1, engine="processes"):
            seen.extend(s.id for s in batch)
    assert seen == [e["id"] for e in entries[:4]]
    assert type(raised.value) is ManifestError
    assert (raised.value.message, raised.value.hint, raised.value.details) == (
        expected.message,
        expected.hint,
        expected.details,
    )


def test_closing_early_leaves_no_worker_and_no_shared_memory(manifest):
    before_children, before_shm = _children(), _shm()
    batches = open_split(manifest, DEPTH).iter_batches(1, engine="processes")
    next(batches)
    assert len(_children() - before_children) == 1
    batches.close()
    assert _children() == before_children
    assert _shm() == before_shm


def test_run_bench_gives_the_same_metrics_with_both_engines(manifest, tmp_path, monkeypatch):
    tables = {}
    for engine in ("threads", "processes"):
        monkeypatch.setenv("RPX_DECODE_ENGINE", engine)
        config = RunConfig(
            task="monocular_depth",
            model_name="constant_depth",
            manifest=str(manifest),
            device="cpu",
            output_dir=str(tmp_path / engine),
        )
        paths, payload = run_bench(config)
        table = pq.read_table(paths.per_sample).drop_columns(["latency_ms"]).to_pylist()
        tables[engine] = (table, json.loads(Path(paths.result_json).read_text())["readiness"])
    (threads, threads_readiness), (processes, processes_readiness) = tables["threads"], tables["processes"]
    assert len(threads) == 9
    assert threads == processes
    assert threads_readiness == processes_readiness


def test_a_dead_worker_raises_a_dataset_error(manifest):
    from rpx_tasks.errors import DatasetError

    before = _children()
    batches = open_split(manifest, DEPTH).iter_batches(1, engine="processes")
    next(batches)
    (worker,) = _children() - before
    os.kill(worker, 9)
    with pytest.raises(DatasetError, match="decoding worker exited"):
        for _ in batches:
            pass
    assert _children() == before
