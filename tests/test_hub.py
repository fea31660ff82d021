"""Dataset download against a real HTTP server speaking the Hub API (tests/support/hub_server.py): the
modality table and patterns, task-scoped and warm downloads, offline use, mirrors, the token, ``describe_split``.
Shards are in test_hub_shards.py, failures in test_hub_failures.py.

Fixtures ``hub_env`` / ``hub_server`` come from tests/conftest_hub.py (loaded by tests/conftest.py).
"""

from __future__ import annotations

import errno
import json
import sys

import pytest

from rpx_tasks.errors import ConfigError, DatasetError, DownloadError, TransientDownloadError
from rpx_tasks.hub import (
    MODALITY_FILES,
    allow_patterns,
    describe_split,
    resolved_manifest_path,
)
from rpx_tasks.hub.failures import translate
from rpx_tasks.manifest import manifest_relpath
from tests.support.hub_dataset import PHASE_FOLDERS, build_repo_files, files_of, write_repo_files
from tests.support.hub_download import DEPTH, HARD, assert_resolved_ok, download

TOKEN = "hf_SECRETtokenABCDEFG123456"


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
    expected = tmp_path / "ORG__NAME" / manifest_relpath("monocular_depth", "hard", ".depth+rgb")
    assert resolved_manifest_path("ORG/NAME", "monocular_depth", "hard", modalities=DEPTH) == expected
    assert resolved_manifest_path("ORG/NAME", "monocular_depth", "hard", modalities=("depth", "rgb")) == expected
    sized = resolved_manifest_path("ORG/NAME", "monocular_depth", "hard", 10, modalities=DEPTH)
    assert sized.name == "hard.depth+rgb.max10.json"
    plain = resolved_manifest_path("ORG/NAME", "object_segmentation", "hard", modalities=("rgb", "mask"))
    with_sgc = resolved_manifest_path("ORG/NAME", "object_segmentation", "hard", modalities=("rgb", "mask", "depth"))
    assert plain.name == "hard.mask+rgb.json" and with_sgc.name == "hard.depth+mask+rgb.json"
    with pytest.raises(ConfigError):
        resolved_manifest_path("ORG/NAME", "monocular_depth", "hard", modalities=())
    monkeypatch.setenv("RPX_HF_REPO", "A/B")
    assert resolved_manifest_path(None, "t", "easy", modalities=("rgb",)).parts[-4] == "A__B"


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
    assert set(fetched) == files_of("loose", HARD, modalities=DEPTH) | {manifest_relpath("monocular_depth", "hard")}
    assert len(fetched) == len(set(fetched))
    assert not any("/pose/" in f or "/mask/" in f or "scene_e1" in f for f in fetched)
    assert result.revision == server.repos["rpx-test/loose"].commit
    assert result.pairs == [(s, p) for s in HARD for p in PHASE_FOLDERS]
    assert result.manifest_path == hub_env.rpx_cache / "rpx-test__loose" / manifest_relpath(
        "monocular_depth", "hard", ".depth+rgb"
    )
    manifest = assert_resolved_ok(result, expected_samples=12)
    assert manifest["task"] == "monocular_depth" and manifest["source"]["commit"] == result.revision

    server.clear()
    again = download(hub_env)
    assert server.fetched_files() == [] and server.fetched_files("HEAD") == []
    assert again.manifest_path == result.manifest_path and again.root == result.root

    server.clear()
    seg = download(hub_env, task="object_segmentation", modalities=("rgb", "mask"))
    assert set(server.fetched_files()) == files_of("loose", HARD, modalities=("mask",)) | {
        manifest_relpath("object_segmentation", "hard")
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
        files_of("loose", ["scene_h1"], phases=["0"], modalities=DEPTH) | {manifest_relpath("monocular_depth", "hard")}
    )
    assert result.manifest_path.name == "hard.depth+rgb.max2.json"
    with pytest.raises(ConfigError):
        download(hub_env, max_samples=0)


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
    assert hub_env.server.fetched_files() == [manifest_relpath("monocular_depth", "hard")]

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


# ---------------------------------------------------------------------------------------------
# One resolved manifest per modality set, and the stat walk that says its files are all there
# ---------------------------------------------------------------------------------------------


def test_a_plain_and_an_sgc_download_keep_two_resolved_manifests(hub_env):
    from rpx_tasks.hub import resolved_files_present

    plain = download(hub_env, task="object_segmentation", modalities=("rgb", "mask"))
    with_sgc = download(hub_env, task="object_segmentation", modalities=("rgb", "mask", "depth"))
    assert plain.manifest_path != with_sgc.manifest_path
    assert plain.manifest_path.is_file() and with_sgc.manifest_path.is_file()
    assert json.loads(plain.manifest_path.read_text())["source"]["modalities"] == ["rgb", "mask"]
    assert json.loads(with_sgc.manifest_path.read_text())["source"]["modalities"] == ["rgb", "mask", "depth"]
    assert resolved_files_present(plain.manifest_path) and resolved_files_present(with_sgc.manifest_path)


def test_resolved_files_present_sees_a_deleted_data_file(hub_env):
    from rpx_tasks.hub import resolved_files_present

    result = download(hub_env)
    assert resolved_files_present(result.manifest_path)
    sample = json.loads(result.manifest_path.read_text())["samples"][3]
    (result.root / sample["depth"]).unlink()
    assert not resolved_files_present(result.manifest_path)
    result.manifest_path.unlink()
    assert not resolved_files_present(result.manifest_path)


def write_synthetic_resolved_manifest(folder, count: int, modalities=("rgb",)):
    """A resolved manifest of ``count`` samples, each naming one existing file per modality key."""
    root = folder / "root"
    (root / "rgb").mkdir(parents=True)
    for i in range(count):
        (root / "rgb" / f"{i:05d}.png").touch()
    samples = [{"id": f"s{i}", "rgb": f"rgb/{i:05d}.png", "depth": f"depth/{i:05d}.png"} for i in range(count)]
    manifest = folder / "hard.rgb.json"
    manifest.write_text(json.dumps({"root": str(root), "samples": samples, "source": {"modalities": list(modalities)}}))
    return manifest


def test_resolved_files_present_checks_only_the_downloaded_modalities_and_is_fast(tmp_path):
    import time

    from rpx_tasks.hub import resolved_files_present

    manifest = write_synthetic_resolved_manifest(tmp_path, 10_000)
    started = time.perf_counter()
    assert resolved_files_present(manifest)  # "depth" is named but was not downloaded: not checked
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0, f"stat walk of 10,000 files took {elapsed * 1000:.0f} ms"  # ~10 ms; generous bound
    (tmp_path / "root" / "rgb" / "09999.png").unlink()
    assert not resolved_files_present(manifest)
    assert not resolved_files_present(write_synthetic_resolved_manifest(tmp_path / "d", 3, modalities=("rgb", "depth")))
    (tmp_path / "bad.json").write_text("{not json")
    assert not resolved_files_present(tmp_path / "bad.json")
