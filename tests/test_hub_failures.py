"""Download failures against the test Hub: missing repos and revisions, broken manifests, transient
network trouble and resumption, timeouts, a full disk. Fixtures come from tests/conftest_hub.py."""

from __future__ import annotations

import errno
import json

import pytest

from rpx_tasks.errors import DatasetError, DownloadError, ManifestError, TransientDownloadError
from rpx_tasks.hub import (
    download_split,
    fetch_manifest,
    resolved_manifest_path,
)
from rpx_tasks.manifest import manifest_relpath
from tests.support.hub_dataset import build_repo_files, files_of
from tests.support.hub_download import DEPTH, assert_resolved_ok, download


def test_repo_revision_and_manifest_errors(hub_env):
    files = build_repo_files("loose")
    files[manifest_relpath("monocular_depth", "hard")] = b"{not json"
    files[manifest_relpath("monocular_depth", "easy")] = json.dumps(
        {"task": "monocular_depth", "samples": [{"id": "a", "rgb": "frames/a.png"}]}
    ).encode()
    files[manifest_relpath("object_segmentation", "hard")] = json.dumps(
        {
            "task": "object_segmentation",
            "samples": [{"id": "a", "rgb": "scenes/scene_h1/0/rgb/../../../../../../outside.png"}],
        }
    ).encode()
    files[manifest_relpath("object_segmentation", "easy")] = json.dumps(
        {
            "task": "object_segmentation",
            "samples": [
                {"id": "a", "rgb": "scenes/scene_e1/0/rgb/00000.png", "mask": "scenes/scene_e1/0/mask/00042.png"}
            ],
        }
    ).encode()
    hub_env.server.add_repo("rpx-test/broken", files)

    with pytest.raises(DownloadError, match="not found") as info:
        download(hub_env, repo="rpx-test/missing")
    assert not isinstance(info.value, TransientDownloadError) and "RPX_HF_REPO" in info.value.hint
    with pytest.raises(DownloadError, match="Revision 'nope'") as info:
        download(hub_env, revision="nope")
    assert "--revision" in info.value.hint
    with pytest.raises(ManifestError, match=manifest_relpath("monocular_depth", "medium")):
        download(hub_env, split="medium")
    with pytest.raises(ManifestError, match="not valid JSON"):
        fetch_manifest(
            "monocular_depth", "hard", repo_id="rpx-test/broken", revision="main", cache_dir=str(hub_env.hf_cache)
        )
    hub_env.server.clear()
    with pytest.raises(ManifestError, match="references no scenes"):
        download(hub_env, repo="rpx-test/broken", split="easy")
    assert not any("/tree/" in p for p in hub_env.server.api_calls())  # no snapshot call
    assert hub_env.server.fetched_files() == [manifest_relpath("monocular_depth", "easy")]
    with pytest.raises(ManifestError, match="escapes the dataset root"):
        download(hub_env, repo="rpx-test/broken", task="object_segmentation", modalities=("rgb", "mask"))
    with pytest.raises(DatasetError, match="mask/00042.png") as info:
        download(hub_env, repo="rpx-test/broken", task="object_segmentation", split="easy", modalities=("rgb", "mask"))
    assert not isinstance(info.value, DownloadError)


def test_env_overrides_the_default_repo_and_revision(hub_env):
    hub_env.monkeypatch.setenv("RPX_HF_REPO", "rpx-test/sharded")
    hub_env.monkeypatch.setenv("RPX_HF_REVISION", "v1")
    result = download_split("monocular_depth", "easy", modalities=DEPTH, cache_dir=str(hub_env.hf_cache))
    assert result.repo_id == "rpx-test/sharded" and result.revision == hub_env.server.repos["rpx-test/sharded"].commit
    assert "/api/datasets/rpx-test/sharded/revision/v1" in hub_env.server.api_calls()
    assert result.manifest_path == resolved_manifest_path(None, "monocular_depth", "easy", modalities=DEPTH)


def test_hub_unreachable_is_transient_and_fast(hub_env):
    hub_env.server.stop()
    with pytest.raises(TransientDownloadError) as info:
        download(hub_env)
    assert "HF_HUB_OFFLINE" in info.value.hint


@pytest.mark.parametrize("kind", ["status", "reset"])
def test_data_file_failures_are_transient_and_a_rerun_resumes(hub_env, kind):
    server = hub_env.server
    server.add_fault("*/scene_h2/*/depth/*", kind, times=-1)
    with pytest.raises(TransientDownloadError):
        download(hub_env)
    finished = {r.repo_file for r in server.requests if r.method == "GET" and r.status == 200 and r.repo_file}
    assert finished and not any("scene_h2" in f and "/depth/" in f for f in finished)
    assert not resolved_manifest_path("rpx-test/loose", "monocular_depth", "hard", modalities=DEPTH).exists()

    server.clear()
    result = download(hub_env)
    refetched = set(server.fetched_files())
    assert refetched and not (refetched & finished)  # finished files are not fetched again
    assert files_of("loose", ["scene_h2"], modalities=("depth",)) <= refetched
    assert_resolved_ok(result, expected_samples=12)


def test_timeouts_are_transient(hub_env):
    from huggingface_hub import constants

    hub_env.monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 0.1)
    hub_env.server.add_fault("*/scene_h1/2/rgb/00001.png", "slow", times=-1, delay=0.5)
    with pytest.raises(TransientDownloadError, match="Timeout"):
        download(hub_env)


def test_api_503_is_transient(hub_env):
    hub_env.server.add_fault("/api/*", "status", times=-1, status=503)
    with pytest.raises(TransientDownloadError, match="503"):
        download(hub_env)


def test_truncated_body_and_slow_answer_are_retried_by_huggingface_hub(hub_env):
    server = hub_env.server
    server.add_fault("*/scene_h1/0/depth/00001.png", "truncate", times=1)
    server.add_fault("*/scene_h1/1/rgb/00000.png", "slow", times=1, delay=0.3)
    result = download(hub_env)
    assert_resolved_ok(result, expected_samples=12)
    cut = "scenes/scene_h1/0/depth/00001.png"
    attempts = [r.status for r in server.requests if r.method == "GET" and r.repo_file == cut]
    assert attempts == [None, 200]  # cut short, then fetched again (with Range when bytes had arrived)
    assert (result.root / cut).read_bytes() == build_repo_files("loose")[cut]


def test_server_speaks_enough_of_the_hub_api(hub_server):
    import httpx2

    repo = hub_server.repos["rpx-test/loose"]
    path = "scenes/scene_h1/0/rgb/00000.png"
    data = repo.files[path]
    url = f"{hub_server.url}/datasets/rpx-test/loose/resolve/main/{path}"
    head = httpx2.head(url)
    assert head.headers["X-Repo-Commit"] == repo.commit and head.headers["ETag"].strip('"') == repo.etag(path)
    assert int(head.headers["Content-Length"]) == len(data)
    ranged = httpx2.get(url, headers={"Range": "bytes=10-"})
    assert ranged.status_code == 206 and ranged.content == data[10:]
    assert ranged.headers["Content-Range"] == f"bytes 10-{len(data) - 1}/{len(data)}"
    tree = httpx2.get(
        f"{hub_server.url}/api/datasets/rpx-test/loose/tree/{repo.commit}/scenes%2Fscene_h1?recursive=true"
    ).json()
    assert {"type": "file", "oid": repo.tree_entry(path)["oid"], "size": len(data), "path": path} | {
        "lfs": repo.tree_entry(path)["lfs"]
    } in tree
    for url, code in [
        ("/api/datasets/rpx-test/nope/revision/main", "RepoNotFound"),
        ("/api/datasets/rpx-test/loose/revision/nope", "RevisionNotFound"),
        ("/datasets/rpx-test/loose/resolve/main/nope.txt", "EntryNotFound"),
    ]:
        answer = httpx2.get(hub_server.url + url)
        assert answer.status_code == 404 and answer.headers["X-Error-Code"] == code


def test_disk_full_while_downloading_is_a_download_error(hub_env, monkeypatch):
    import huggingface_hub

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_space)
    with pytest.raises(DownloadError, match="Disk full") as info:
        download(hub_env)
    assert not isinstance(info.value, TransientDownloadError)
