"""Sharded repos through the test Hub: checksums, extraction only of the needed shards, tampering,
escaping members, concurrency and a full disk. Fixtures come from tests/conftest_hub.py."""

from __future__ import annotations

import errno
import io
import json
import tarfile
import threading

import pytest

from rpx_tasks.errors import DatasetError, DownloadError
from rpx_tasks.hub import (
    extract_shards,
    resolved_manifest_path,
)
from rpx_tasks.manifest import manifest_relpath
from tests.support.hub_dataset import build_repo_files, files_of
from tests.support.hub_download import DEPTH, HARD, assert_resolved_ok, download


def test_sharded_layout_downloads_verifies_and_extracts_only_needed_shards(hub_env, monkeypatch):
    server = hub_env.server
    result = download(hub_env, repo="rpx-test/sharded")
    assert set(server.fetched_files()) == files_of("sharded", HARD, modalities=DEPTH) | {
        manifest_relpath("monocular_depth", "hard"),
        "manifest/checksums.json",
    }
    manifest = assert_resolved_ok(result, expected_samples=12)
    assert manifest["samples"][0]["depth"].startswith("extracted/scenes/")
    assert not (result.root / "extracted/scenes/scene_e1").exists()
    assert not list(result.root.glob("extracted/scenes/*/*/sam2"))

    # Warm: no request for data, and no re-hashing or re-extraction either.
    import rpx_tasks.hub.shards as shards

    server.clear()
    with monkeypatch.context() as patch:
        patch.setattr(shards, "sha256_of", lambda path: pytest.fail(f"re-hashed {path}"))
        download(hub_env, repo="rpx-test/sharded")
    assert server.fetched_files() == []

    server.clear()
    seg = download(hub_env, repo="rpx-test/sharded", task="object_segmentation", modalities=("rgb", "mask"))
    assert set(server.fetched_files()) == files_of("sharded", HARD, modalities=("mask",)) | {
        manifest_relpath("object_segmentation", "hard")
    }
    assert_resolved_ok(seg, expected_samples=12)


def test_tampered_shard_is_refused_and_nothing_bad_is_left(hub_env):
    files = build_repo_files("sharded")
    bad = "scenes/scene_h2/1/depth.tar"
    files[bad] = files[bad][:-10] + b"x" * 10
    repo = hub_env.server.add_repo("rpx-test/tampered", files)
    snapshot = hub_env.hf_cache / "datasets--rpx-test--tampered/snapshots" / repo.commit
    stale = resolved_manifest_path("rpx-test/tampered", "monocular_depth", "hard", modalities=DEPTH)
    stale.parent.mkdir(parents=True)
    stale.write_text(json.dumps({"task": "monocular_depth", "root": str(snapshot), "samples": []}))
    with pytest.raises(DatasetError, match="scene_h2/1/depth.tar") as info:
        download(hub_env, repo="rpx-test/tampered")
    assert not isinstance(info.value, DownloadError)
    assert info.value.details["shard"] == bad
    assert not stale.exists()  # a resolved manifest pointing at the bad snapshot is gone
    assert not (snapshot / bad).exists()  # removed from the cache: a rerun fetches it again
    assert not (snapshot / "extracted/scenes/scene_h2/1/depth").exists()
    hub_env.server.clear()
    with pytest.raises(DatasetError, match="checksum"):
        download(hub_env, repo="rpx-test/tampered")
    assert hub_env.server.fetched_files() == [bad]


def _tar_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_extraction_refuses_escaping_members_and_skips_finished_ones(tmp_path):
    shard = "scenes/s/0/rgb.tar"
    (tmp_path / "scenes/s/0").mkdir(parents=True)
    (tmp_path / shard).write_bytes(_tar_bytes({"rgb/00000.png": b"a" * 5, "../../../../evil.txt": b"boom"}))
    with pytest.raises(DatasetError, match="escapes"):
        extract_shards(tmp_path, [shard], checksums={})
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path.parent / "evil.txt").exists()

    (tmp_path / shard).write_bytes(_tar_bytes({"rgb/00000.png": b"a" * 5, "rgb/00001.png": b"b" * 7}))
    target = tmp_path / "extracted/scenes/s/0/rgb"
    target.mkdir(parents=True, exist_ok=True)
    (target / "00000.png").write_bytes(b"z" * 5)  # same size: treated as already extracted
    assert extract_shards(tmp_path, [shard], checksums={}) == (1, 1)
    assert (target / "00001.png").read_bytes() == b"b" * 7
    assert not list(target.glob("*.part"))
    assert extract_shards(tmp_path, [shard], checksums={}) == (0, 0)  # marker: nothing to do


def test_concurrent_extractions_are_serialised(tmp_path):
    shard = "scenes/s/0/depth.tar"
    (tmp_path / "scenes/s/0").mkdir(parents=True)
    members = {f"depth/{i:05d}.png": bytes([i]) * (1000 + i) for i in range(40)}
    (tmp_path / shard).write_bytes(_tar_bytes(members))
    results, errors = [], []

    def work():
        try:
            results.append(extract_shards(tmp_path, [shard], checksums={}))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(written for written, _ in results) == 40  # each member written exactly once
    for name, data in members.items():
        assert (tmp_path / "extracted/scenes/s/0" / name).read_bytes() == data


def test_disk_full_during_extraction_is_a_dataset_error(tmp_path, monkeypatch):
    import rpx_tasks.hub.shards as shards

    shard = "scenes/s/0/rgb.tar"
    (tmp_path / "scenes/s/0").mkdir(parents=True)
    (tmp_path / shard).write_bytes(_tar_bytes({"rgb/00000.png": b"a"}))

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shards.shutil, "copyfileobj", no_space)
    with pytest.raises(DatasetError, match="Disk full") as info:
        extract_shards(tmp_path, [shard], checksums={})
    assert info.value.details["shard"] == shard


def test_concurrent_downloads_of_the_same_sharded_split(hub_env):
    results, errors = [], []

    def work():
        try:
            results.append(download(hub_env, repo="rpx-test/sharded", max_workers=2))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for result in results:
        assert_resolved_ok(result, expected_samples=12)
