"""The Hub acceptance path through the real `rpx` CLI, in subprocesses, against the loopback Hub."""

import json
import os
import subprocess
import sys

import pytest

from rpx_tasks.manifest import MANIFESTS_DIR, manifest_relpath
from tests.support.hub_dataset import SPLIT_SCENES, build_repo_files, files_of


def _rpx(args, env, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "rpx_tasks.cli", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


@pytest.fixture()
def cli_env(hub_env):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "RPX_HF"))}
    env.update(
        HF_ENDPOINT=hub_env.endpoint,
        HF_HOME=str(hub_env.tmp_path / "hf-home"),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        RPX_CACHE_DIR=str(hub_env.rpx_cache),
        RPX_NO_BANNER="1",
    )
    return env


def test_download_then_bench_then_offline_bench(hub_env, cli_env, tmp_path):
    cache = str(tmp_path / "hf")
    common = ["--split", "hard", "--repo", "rpx-test/loose", "--revision", "main", "--cache-dir", cache]
    done = _rpx(["download", "monocular_depth", *common], cli_env)
    assert done.returncode == 0, done.stderr
    assert "Manifest:" in done.stdout and "Samples: 12" in done.stdout
    assert "manifests/monocular_depth/hard.depth+rgb.json" in done.stdout  # one resolved manifest per modality set
    data_files = {f for f in hub_env.server.fetched_files() if not f.startswith(f"{MANIFESTS_DIR}/")}
    assert data_files == files_of("loose", SPLIT_SCENES["hard"], modalities=("rgb", "depth"))
    assert manifest_relpath("monocular_depth", "hard") in hub_env.server.fetched_files()

    hub_env.server.clear()
    bench = [
        "bench",
        "monocular_depth",
        *common,
        "--model",
        "rpx_tasks.models.baselines:constant_depth",
        "--device",
        "cpu",
        "--plain",
    ]
    done = _rpx([*bench, "--output-dir", str(tmp_path / "out1")], cli_env)
    assert done.returncode == 0, done.stderr
    assert [f for f in hub_env.server.fetched_files() if not f.startswith(f"{MANIFESTS_DIR}/")] == []
    result = json.loads((tmp_path / "out1" / "result.json").read_text())
    assert result["num_samples"] == 12 and result["repo_id"] == "rpx-test/loose"
    assert len(result["revision"]) == 40

    hub_env.server.stop()
    offline = dict(cli_env, HF_HUB_OFFLINE="1")
    done = _rpx([*bench, "--output-dir", str(tmp_path / "out2")], offline)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out2" / "result.json").read_text())["num_samples"] == 12


def test_info_reads_only_the_manifest(hub_env, cli_env, tmp_path):
    done = _rpx(
        [
            "info",
            "monocular_depth",
            "--split",
            "hard",
            "--repo",
            "rpx-test/loose",
            "--revision",
            "main",
            "--cache-dir",
            str(tmp_path),
        ],
        cli_env,
    )
    assert done.returncode == 0, done.stderr
    assert "Scenes: 2" in done.stdout and "(scene, phase) pairs: 6" in done.stdout and "Samples: 12" in done.stdout
    assert "Estimated download" in done.stdout
    assert "/rpx-test__loose/manifests/monocular_depth/hard.depth+rgb.json (not downloaded)" in done.stdout
    assert [f for f in hub_env.server.fetched_files() if not f.startswith(f"{MANIFESTS_DIR}/")] == []


def test_tampered_shard_stops_the_bench_naming_it(hub_env, cli_env, tmp_path):
    files = build_repo_files("sharded")
    shard = "scenes/scene_h1/0/depth.tar"
    files[shard] = files[shard][:-10] + b"x" * 10
    hub_env.server.add_repo("rpx-test/tampered", files)
    done = _rpx(
        [
            "bench",
            "monocular_depth",
            "--split",
            "hard",
            "--repo",
            "rpx-test/tampered",
            "--revision",
            "main",
            "--cache-dir",
            str(tmp_path / "hf"),
            "--model",
            "constant_depth",
            "--device",
            "cpu",
            "--plain",
            "--output-dir",
            str(tmp_path / "out"),
        ],
        cli_env,
    )
    assert done.returncode == 1
    assert shard in done.stderr and "hint:" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out" / "result.json").exists()
    assert not list(hub_env.rpx_cache.rglob("hard*.json"))


# A user module for the model mistakes below: a numpy function of the wrong arity, a factory.
_USER_MODELS = """
import numpy as np

def two_frames(rgb_a, rgb_b):
    return np.ones(rgb_a.shape[:2], np.float32)

def make(device="cpu", scale=1.0):
    raise RuntimeError("a factory that must not be called before the split is downloaded")
"""


@pytest.mark.parametrize(
    "task, model_args, fragments",
    [
        ("monocular_depth", ["--model", "no_such_model"], ["Unknown model", "did you mean one of", "constant_depth"]),
        ("monocular_depth", ["--model", "constant_dept"], ["Unknown model", "did you mean 'constant_depth'?"]),
        ("monocular_depth", ["--model", "rpx_no_such_user_module:predict"], ["Cannot import module", "PYTHONPATH"]),
        (
            "monocular_depth",
            ["--model", "rpx_tasks.models.baselines:constant_dept"],
            ["has no attribute 'constant_dept'", "did you mean 'constant_depth'?"],
        ),
        ("monocular_depth", ["--model", "rpx_cli_user_models:two_frames"], ["cannot be called as", "fn(rgb)"]),
        ("relative_camera_pose", ["--hf-checkpoint", "org/x"], ["no --hf-checkpoint fast path", "fn(rgb_a"]),
        (
            "monocular_depth",
            ["--model", "rpx_cli_user_models:make", "--model-kwarg", "colour=red"],
            ["does not accept the model kwargs ['colour']", "it accepts: ['scale']"],
        ),
        (
            "monocular_depth",
            ["--model", "depth_pro", "--model-kwarg", "threshold=0.3"],
            ["does not accept the model kwargs ['threshold']", "attn_implementation"],
        ),
    ],
    ids=[
        "unknown-name",
        "misspelt-name",
        "missing-module",
        "missing-attribute",
        "wrong-arity",
        "hf-without-fast-path",
        "factory-kwarg",
        "hf-loader-kwarg",
    ],
)
def test_a_wrong_model_fails_before_any_request(hub_env, cli_env, tmp_path, task, model_args, fragments):
    (tmp_path / "rpx_cli_user_models.py").write_text(_USER_MODELS)
    env = dict(cli_env, PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]))
    out = tmp_path / "out"
    done = _rpx(
        [
            "bench",
            task,
            *model_args,
            "--split",
            "hard",
            "--repo",
            "rpx-test/loose",
            "--revision",
            "main",
            "--cache-dir",
            str(tmp_path / "hf"),
            "--device",
            "cpu",
            "--plain",
            "--output-dir",
            str(out),
        ],
        env,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("error: ") and "hint:" in done.stderr and "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in done.stderr
    assert hub_env.server.requests == []  # not even the revision or the manifest
    assert not out.exists() and not (tmp_path / "hf").exists()
