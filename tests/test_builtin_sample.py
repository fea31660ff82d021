"""The built-in sample data (rpx_tasks.sample_data.builtin), the RPX cache folder and the manifest path scheme."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rpx_tasks
from rpx_tasks import tasks
from rpx_tasks.constants import (
    CAMERA_HEIGHT_M,
    RPX_FOCAL_PX,
    RPX_HEIGHT,
    RPX_WIDTH,
    WALL_DISTANCE_M,
    rpx_cache_dir,
    scaled_intrinsics,
)
from rpx_tasks.errors import ConfigError
from rpx_tasks.manifest import MANIFESTS_DIR, manifest_relpath
from rpx_tasks.sample_data import (
    BUILTIN_SAMPLE,
    builtin_manifest_path,
    ensure_sample_data,
    is_builtin,
    sample_data_dir,
    sample_tasks,
)
from rpx_tasks.sample_data.builtin import check_covered

# -- constants and the manifest path scheme ---------------------------------------------------


def test_rpx_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RPX_CACHE_DIR", str(tmp_path))
    assert rpx_cache_dir() == tmp_path
    monkeypatch.delenv("RPX_CACHE_DIR")
    assert rpx_cache_dir() == Path("~/.cache/rpx_benchmark").expanduser()


def test_manifest_relpath_scheme():
    assert manifest_relpath("monocular_depth", "hard") == "manifests/monocular_depth/hard.json"
    assert manifest_relpath("monocular_depth", "hard", ".max8") == "manifests/monocular_depth/hard.max8.json"


def test_rpx_camera_assumptions():
    assert (RPX_WIDTH, RPX_HEIGHT, RPX_FOCAL_PX) == (640, 480, 615.0)
    assert (CAMERA_HEIGHT_M, WALL_DISTANCE_M) == (1.2, 4.0)
    assert scaled_intrinsics(640, 480) == (615.0, 615.0, 320.0, 240.0)
    assert scaled_intrinsics(128, 96) == (123.0, 123.0, 64.0, 48.0)


def test_baselines_do_not_import_the_generator():
    import rpx_tasks.models.baselines as baselines

    source = Path(baselines.__file__).read_text(encoding="utf-8")
    assert "sample_data" not in source
    assert baselines.scaled_intrinsics is scaled_intrinsics


# -- names -------------------------------------------------------------------------------------


def test_is_builtin():
    assert is_builtin(BUILTIN_SAMPLE)
    assert not is_builtin(None)
    assert not is_builtin("manifests/monocular_depth/hard.json")
    assert not is_builtin("builtin:other")


def test_sample_tasks_are_the_tasks_with_a_sample_entry(no_samples_task):
    covered = sample_tasks()
    assert "monocular_depth" in covered and no_samples_task not in covered
    assert covered == [spec.name for spec in tasks.iter_tasks() if spec.sample_entry is not None]


def test_check_covered_accepts_only_tasks_with_sample_data(no_samples_task):
    assert check_covered("monocular_depth") is None
    with pytest.raises(ConfigError, match="does not cover 'no_samples'") as info:
        check_covered(no_samples_task)
    assert "monocular_depth" in info.value.hint and no_samples_task not in info.value.hint
    with pytest.raises(ConfigError, match="Unknown task 'no_such_task'"):
        check_covered("no_such_task")


def test_sample_data_dir_is_under_the_rpx_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("RPX_CACHE_DIR", str(tmp_path))
    folder = sample_data_dir()
    assert folder.parent == tmp_path
    assert folder.name.startswith(f"sample-data-{rpx_tasks.__version__}-")
    assert sample_data_dir() == folder  # stable for the same tasks


# -- writing once --------------------------------------------------------------------------------


def test_ensure_sample_data_writes_once(tmp_path):
    root = ensure_sample_data(tmp_path / "sample")
    assert root == tmp_path / "sample"
    manifest = root / manifest_relpath("monocular_depth", "hard")
    stamp = manifest.stat().st_mtime_ns
    marker = root / "untouched.txt"
    marker.write_text("left alone")
    assert ensure_sample_data(tmp_path / "sample") == root
    assert manifest.stat().st_mtime_ns == stamp  # reused, not rewritten
    assert marker.read_text() == "left alone"
    assert [p.name for p in tmp_path.iterdir()] == ["sample"]  # no staging folder left behind
    for task in sample_tasks():
        assert (root / manifest_relpath(task, "all")).is_file()


def test_ensure_sample_data_defaults_to_sample_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("RPX_CACHE_DIR", str(tmp_path))
    root = ensure_sample_data()
    assert root == sample_data_dir() and (root / MANIFESTS_DIR).is_dir()


@pytest.mark.parametrize("split", ["easy", "medium", "hard", "all"])
def test_builtin_manifest_path_returns_the_existing_manifest(tmp_path, split):
    path = builtin_manifest_path("monocular_depth", split, root=tmp_path / "sample")
    assert path == tmp_path / "sample" / "manifests" / "monocular_depth" / f"{split}.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    assert manifest["task"] == "monocular_depth" and manifest["split"] == split and manifest["samples"]


def test_builtin_manifest_path_defaults_to_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("RPX_CACHE_DIR", str(tmp_path))
    path = builtin_manifest_path("object_segmentation", "hard")
    assert path == sample_data_dir() / "manifests" / "object_segmentation" / "hard.json"
    assert path.is_file()


def test_builtin_manifest_path_rejects_an_unknown_task_before_writing(tmp_path):
    with pytest.raises(ConfigError, match="Unknown task 'no_such_task'") as info:
        builtin_manifest_path("no_such_task", "hard", root=tmp_path / "sample")
    assert info.value.hint
    assert not (tmp_path / "sample").exists()


def test_builtin_manifest_path_rejects_a_task_without_sample_data(tmp_path, no_samples_task):
    with pytest.raises(ConfigError, match="does not cover 'no_samples'") as info:
        builtin_manifest_path(no_samples_task, "hard", root=tmp_path / "sample")
    assert "monocular_depth" in info.value.hint
    assert not (tmp_path / "sample").exists()


def test_builtin_manifest_path_rejects_an_unknown_split(tmp_path):
    with pytest.raises(ConfigError, match="no split 'hardest'") as info:
        builtin_manifest_path("monocular_depth", "hardest", root=tmp_path / "sample")
    assert "all" in info.value.hint
    assert not (tmp_path / "sample").exists()
