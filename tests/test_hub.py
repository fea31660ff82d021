"""Dataset download against a real HTTP server speaking the Hub API (tests/hub_server.py).

Fixtures ``hub_env`` / ``hub_server`` come from tests/conftest_hub.py (loaded by tests/conftest.py).
"""

from __future__ import annotations

import errno
import io
import json
import sys
import tarfile
import threading
from pathlib import Path

import pytest

from rpx_tasks.errors import ConfigError, DatasetError, DownloadError, ManifestError, TransientDownloadError
from rpx_tasks.hub import (
    MODALITY_FILES,
    allow_patterns,
    describe_split,
    download_split,
    extract_shards,
    fetch_manifest,
    resolved_manifest_path,
)
from rpx_tasks.hub.failures import translate
from tests.support.hub_server import PHASE_FOLDERS, SPLIT_SCENES, build_repo_files, files_of, write_repo_files

HARD = SPLIT_SCENES["hard"]
DEPTH = ("rgb", "depth")
TOKEN = "hf_SECRETtokenABCDEFG123456"


def download(env, repo="rpx-test/loose", task="monocular_depth", split="hard", modalities=DEPTH, **kwargs):
    kwargs.setdefault("revision", "main")
    kwargs.setdefault("cache_dir", str(env.hf_cache))
    return download_split(task, split, modalities=modalities, repo_id=repo, **kwargs)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def assert_resolved_ok(result, expected_samples: int) -> dict:
    manifest = read_json(result.manifest_path)
    assert manifest["root"] == str(result.root)
    assert len(manifest["samples"]) == result.num_samples == expected_samples
    for sample in manifest["samples"]:
        for key in ("rgb", "depth", "mask", "pose"):
            if key in sample:
                assert (result.root / sample[key]).is_file(), sample[key]
    return manifest


# ---------------------------------------------------------------------------------------------
# The table, the patterns, the cache path, the error mapping
# ---------------------------------------------------------------------------------------------


def test_modality_table_and_patterns():
    for name in (
        "rgb",
        "depth",
        "mask",
        "pose",
        "tracklets",
        "questionnaires",
        "spatial_qa",
        "general_qa",
        "keypoints",
        "sparse_depth",
        "sam2_meta",
        "fisheye",
    ):
        assert name in MODALITY_FILES
    patterns = allow_patterns([("s2", "1"), ("s1", "0")], ["rgb", "depth"])
    assert patterns == [
        "scenes/s1/0/rgb/*",
        "scenes/s1/0/rgb.tar",
        "scenes/s1/0/depth/*",
        "scenes/s1/0/depth.tar",
        "scenes/s2/1/rgb/*",
        "scenes/s2/1/rgb.tar",
        "scenes/s2/1/depth/*",
        "scenes/s2/1/depth.tar",
    ]
    assert "scenes/s/0/labels/masks/v1.tar" in allow_patterns([("s", "0")], ["mask"])
    assert allow_patterns([("a[1]", "0")], ["tracklets"]) == ["scenes/a[[]1]/0/tracklets.json"]
    with pytest.raises(ConfigError, match="nope"):
        allow_patterns([("s", "0")], ["rgb", "nope"])


def test_resolved_manifest_path(monkeypatch, tmp_path):
    monkeypatch.setenv("RPX_CACHE_DIR", str(tmp_path))
    assert (
        resolved_manifest_path("ORG/NAME", "monocular_depth", "hard")
        == tmp_path / "ORG__NAME/manifests/monocular_depth/hard.json"
    )
    assert resolved_manifest_path("ORG/NAME", "monocular_depth", "hard", 10).name == "hard.max10.json"
    monkeypatch.setenv("RPX_HF_REPO", "A/B")
    assert resolved_manifest_path(None, "t", "easy").parts[-4] == "A__B"


def test_error_mapping_is_transient_only_for_network_trouble():
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    def http_error(status):
        request = httpx2.Request("GET", "http://127.0.0.1/x")
        return HfHubHTTPError(f"{status} error", response=httpx2.Response(status, request=request))

    args = dict(doing="testing", repo_id="o/n", revision="main", offline=False)
    for exc in (
        httpx2.ConnectError("refused"),
        httpx2.ReadTimeout("slow"),
        http_error(503),
        http_error(429),
        ConnectionResetError(104, "reset"),
    ):
        assert isinstance(translate(exc, **args), TransientDownloadError), exc
    for exc in (http_error(404), http_error(400), ValueError("bad")):
        error = translate(exc, **args)
        assert isinstance(error, DownloadError) and not isinstance(error, TransientDownloadError)
    full = translate(OSError(errno.ENOSPC, "No space left on device"), **args)
    assert type(full) is DownloadError and "Disk full" in full.message and "--cache-dir" in full.hint


# ---------------------------------------------------------------------------------------------
# Task-scoped download, warm cache, a second task
# ---------------------------------------------------------------------------------------------


def test_download_fetches_only_the_task_files_then_nothing_then_only_the_new_modality(hub_env):
    server = hub_env.server
    result = download(hub_env)
    fetched = server.fetched_files()
    assert set(fetched) == files_of("loose", HARD, modalities=DEPTH) | {"manifests/monocular_depth/hard.json"}
    assert len(fetched) == len(set(fetched))
    assert not any("/pose/" in f or "/mask/" in f or "scene_e1" in f for f in fetched)
    assert result.revision == server.repos["rpx-test/loose"].commit
    assert result.pairs == [(s, p) for s in HARD for p in PHASE_FOLDERS]
    assert result.manifest_path == hub_env.rpx_cache / "rpx-test__loose/manifests/monocular_depth/hard.json"
    manifest = assert_resolved_ok(result, expected_samples=12)
    assert manifest["task"] == "monocular_depth" and manifest["source"]["commit"] == result.revision

    server.clear()
    again = download(hub_env)
    assert server.fetched_files() == [] and server.fetched_files("HEAD") == []
    assert again.manifest_path == result.manifest_path and again.root == result.root

    server.clear()
    seg = download(hub_env, task="object_segmentation", modalities=("rgb", "mask"))
    assert set(server.fetched_files()) == files_of("loose", HARD, modalities=("mask",)) | {
        "manifests/object_segmentation/hard.json"
    }
    assert seg.root == result.root
    assert_resolved_ok(seg, expected_samples=12)


def test_pinned_commit_with_warm_cache_makes_no_request_at_all(hub_env):
    commit = hub_env.server.repos["rpx-test/loose"].commit
    download(hub_env, revision=commit)
    hub_env.server.clear()
    result = download(hub_env, revision=commit)
    assert hub_env.server.requests == []
    assert result.revision == commit


def test_max_samples_limits_the_clips_before_anything_else(hub_env):
    result = download(hub_env, max_samples=2)
    assert result.pairs == [("scene_h1", "0")] and result.num_samples == 2
    assert set(hub_env.server.fetched_files()) == (
        files_of("loose", ["scene_h1"], phases=["0"], modalities=DEPTH) | {"manifests/monocular_depth/hard.json"}
    )
    assert result.manifest_path.name == "hard.max2.json"
    with pytest.raises(ConfigError):
        download(hub_env, max_samples=0)


# ---------------------------------------------------------------------------------------------
# Shards
# ---------------------------------------------------------------------------------------------


def test_sharded_layout_downloads_verifies_and_extracts_only_needed_shards(hub_env, monkeypatch):
    server = hub_env.server
    result = download(hub_env, repo="rpx-test/sharded")
    assert set(server.fetched_files()) == files_of("sharded", HARD, modalities=DEPTH) | {
        "manifests/monocular_depth/hard.json",
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
        "manifests/object_segmentation/hard.json"
    }
    assert_resolved_ok(seg, expected_samples=12)


def test_tampered_shard_is_refused_and_nothing_bad_is_left(hub_env):
    files = build_repo_files("sharded")
    bad = "scenes/scene_h2/1/depth.tar"
    files[bad] = files[bad][:-10] + b"x" * 10
    repo = hub_env.server.add_repo("rpx-test/tampered", files)
    snapshot = hub_env.hf_cache / "datasets--rpx-test--tampered/snapshots" / repo.commit
    stale = resolved_manifest_path("rpx-test/tampered", "monocular_depth", "hard")
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


# ---------------------------------------------------------------------------------------------
# Failures
# ---------------------------------------------------------------------------------------------


def test_repo_revision_and_manifest_errors(hub_env):
    files = build_repo_files("loose")
    files["manifests/monocular_depth/hard.json"] = b"{not json"
    files["manifests/monocular_depth/easy.json"] = json.dumps(
        {"task": "monocular_depth", "samples": [{"id": "a", "rgb": "frames/a.png"}]}
    ).encode()
    files["manifests/object_segmentation/hard.json"] = json.dumps(
        {
            "task": "object_segmentation",
            "samples": [{"id": "a", "rgb": "scenes/scene_h1/0/rgb/../../../../../../outside.png"}],
        }
    ).encode()
    files["manifests/object_segmentation/easy.json"] = json.dumps(
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
    with pytest.raises(ManifestError, match="manifests/monocular_depth/medium.json"):
        download(hub_env, split="medium")
    with pytest.raises(ManifestError, match="not valid JSON"):
        fetch_manifest(
            "monocular_depth", "hard", repo_id="rpx-test/broken", revision="main", cache_dir=str(hub_env.hf_cache)
        )
    hub_env.server.clear()
    with pytest.raises(ManifestError, match="references no scenes"):
        download(hub_env, repo="rpx-test/broken", split="easy")
    assert not any("/tree/" in p for p in hub_env.server.api_calls())  # no snapshot call
    assert hub_env.server.fetched_files() == ["manifests/monocular_depth/easy.json"]
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
    assert result.manifest_path == resolved_manifest_path(None, "monocular_depth", "easy")


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
    assert not resolved_manifest_path("rpx-test/loose", "monocular_depth", "hard").exists()

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


# ---------------------------------------------------------------------------------------------
# Offline, hub down, mirrors
# ---------------------------------------------------------------------------------------------


def test_offline_with_warm_cache_succeeds_without_network(hub_env):
    first = download(hub_env, repo="rpx-test/sharded")
    hub_env.server.stop()
    hub_env.go_offline()
    again = download(hub_env, repo="rpx-test/sharded")
    assert again.manifest_path == first.manifest_path and again.revision == first.revision
    assert_resolved_ok(again, expected_samples=12)
    info = describe_split(
        "monocular_depth",
        "hard",
        modalities=DEPTH,
        repo_id="rpx-test/sharded",
        revision="main",
        cache_dir=str(hub_env.hf_cache),
    )
    assert info.estimated_bytes == 0 and info.num_files == 12 and info.revision == first.revision
    # A modality that was never fetched: fails fast, says what to do.
    with pytest.raises(DownloadError, match="HF_HUB_OFFLINE") as info:
        download(hub_env, repo="rpx-test/sharded", task="object_segmentation", modalities=("rgb", "mask"))
    assert not isinstance(info.value, TransientDownloadError) and "unset HF_HUB_OFFLINE" in info.value.hint


def test_offline_with_cold_cache_fails_fast_with_a_hint(hub_env):
    hub_env.go_offline()
    with pytest.raises(DownloadError) as info:
        download(hub_env)
    assert not isinstance(info.value, TransientDownloadError)
    assert "HF_HUB_OFFLINE" in info.value.message and "--cache-dir" in info.value.hint
    assert hub_env.server.requests == []


def test_hub_down_with_warm_cache_still_runs(hub_env):
    download(hub_env)
    hub_env.server.stop()
    result = download(hub_env)  # revision "main" falls back to the cached ref
    assert_resolved_ok(result, expected_samples=12)


def test_local_mirror_needs_no_huggingface_hub_and_copies_nothing(hub_env, monkeypatch):
    loose = hub_env.mirror("loose")
    sharded = hub_env.mirror("sharded")
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # importing it now fails
    before = sorted(p for p in loose.rglob("*"))
    result = download(hub_env, repo=str(loose))
    assert result.root == loose.resolve() and result.revision is None
    assert sorted(p for p in loose.rglob("*")) == before
    assert_resolved_ok(result, expected_samples=12)
    assert result.manifest_path.parent.parent.parent.name.startswith("local__")

    result = download(hub_env, repo=str(sharded))
    assert_resolved_ok(result, expected_samples=12)
    extracted = {p.parent.name for p in (sharded / "extracted").rglob("*.png")}
    assert extracted == {"rgb", "depth"}  # only the task's shards were extracted
    assert hub_env.server.requests == []


def test_tampered_shard_in_a_mirror_is_refused_and_left_alone(hub_env):
    files = build_repo_files("sharded")
    bad = "scenes/scene_h1/0/rgb.tar"
    files[bad] = files[bad] + b"\0" * 512
    mirror = write_repo_files(files, hub_env.tmp_path / "bad-mirror")
    with pytest.raises(DatasetError, match="scene_h1/0/rgb.tar"):
        download(hub_env, repo=str(mirror))
    assert (mirror / bad).is_file()
    with pytest.raises(DownloadError, match="does not exist"):
        download(hub_env, repo=str(hub_env.tmp_path / "no-such-folder"))


# ---------------------------------------------------------------------------------------------
# Token, info
# ---------------------------------------------------------------------------------------------


def test_token_is_sent_but_never_shown(hub_env, monkeypatch):
    hub_env.server.add_repo("rpx-test/private", build_repo_files("loose"), token=TOKEN)
    with pytest.raises(DownloadError, match="not found") as info:
        download(hub_env, repo="rpx-test/private")
    assert "HF_TOKEN" in info.value.hint

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    hub_env.server.clear()
    result = download(hub_env, repo="rpx-test/private")
    assert all(r.authorized for r in hub_env.server.requests)
    assert all(TOKEN not in json.dumps(r.headers) for r in hub_env.server.requests)
    assert TOKEN not in result.manifest_path.read_text()
    with pytest.raises(DownloadError) as info:
        download(hub_env, repo="rpx-test/private", revision="nope")
    error = info.value
    assert TOKEN not in str(error) and TOKEN not in json.dumps(error.details, default=str)
    hub_env.server.add_fault("/api/*", "status", times=-1)
    with pytest.raises(TransientDownloadError) as info:
        download(hub_env, repo="rpx-test/private", cache_dir=str(hub_env.tmp_path / "cold"))
    assert TOKEN not in str(info.value) and TOKEN not in json.dumps(info.value.details, default=str)


def test_describe_split_reads_only_the_manifest_and_sizes(hub_env):
    files = build_repo_files("loose")
    expected = files_of("loose", HARD, modalities=DEPTH)
    info = describe_split(
        "monocular_depth",
        "hard",
        modalities=DEPTH,
        repo_id="rpx-test/loose",
        revision="main",
        cache_dir=str(hub_env.hf_cache),
    )
    assert info.scenes == list(HARD) and len(info.pairs) == 6 and info.num_samples == 12
    assert info.modalities == DEPTH and info.num_files == len(expected)
    assert info.estimated_bytes == info.total_bytes == sum(len(files[p]) for p in expected)
    assert hub_env.server.fetched_files() == ["manifests/monocular_depth/hard.json"]

    download(hub_env)
    warm = describe_split(
        "monocular_depth",
        "hard",
        modalities=DEPTH,
        repo_id="rpx-test/loose",
        revision="main",
        cache_dir=str(hub_env.hf_cache),
        max_samples=2,
    )
    assert warm.estimated_bytes == 0 and warm.pairs == [("scene_h1", "0")] and warm.num_samples == 2

    mirror = describe_split("monocular_depth", "hard", modalities=DEPTH, repo_id=str(hub_env.mirror("loose")))
    assert mirror.total_bytes == info.total_bytes and mirror.estimated_bytes == 0 and mirror.revision is None


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
