"""The Prefect steps, called directly (``.fn``) or as plain helpers: no Prefect API is started here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prefect.states import Failed

from rpx_tasks import bench
from rpx_tasks.config import RunConfig
from rpx_tasks.errors import ConfigError, DownloadError, ManifestError, TransientDownloadError
from rpx_tasks.manifest import manifest_relpath
from rpx_tasks.sample_data.builtin import BUILTIN_SAMPLE
from rpx_tasks.steps import (
    STEP_VERSION,
    SplitCachePolicy,
    artifact_key,
    download_cache_key,
    download_needs_refresh,
    download_split_step,
    metrics_table,
    phase_table,
    resolve_device_step,
    retry_transient_only,
    run_labels,
    run_summary,
    split_files_present,
    validate_config_step,
)

BASELINE = "ground_plane_prior"


def params(**overrides):
    values = {"task": "monocular_depth", "split": "hard", "model_name": BASELINE, "device": "cpu"}
    values.update(overrides)
    return values


# -- validate config -------------------------------------------------------------------------


def test_validate_config_builds_a_run_config(depth_manifest):
    config = validate_config_step.fn(params(manifest=str(depth_manifest), max_samples=3, batch_size=2))
    assert isinstance(config, RunConfig)
    assert (config.model_name, config.max_samples, config.batch_size, config.manifest) == (
        BASELINE,
        3,
        2,
        str(depth_manifest),
    )


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"split": "hardest"}, "Unknown difficulty split"),
        ({"model_name": None}, "exactly one of"),
        ({"hf_checkpoint": "org/ckpt"}, "exactly one of"),
        ({"batch_size": 0}, "batch_size"),
        ({"device": "tpu"}, "Unknown device"),
        ({"manifest": "/no/such/manifest.json"}, "Manifest file not found"),
    ],
)
def test_validate_config_rejects_bad_values(overrides, match):
    with pytest.raises(ConfigError, match=match) as info:
        validate_config_step.fn(params(**overrides))
    assert info.value.hint


def test_an_unresolved_deployment_template_never_reaches_a_run():
    with pytest.raises(ConfigError, match="unresolved template variable") as info:
        validate_config_step.fn(params(output_dir="{{ $RPX_RESULTS_DIR }}/smoke"))
    assert info.value.details["parameter"] == "output_dir"
    assert "prefect deploy" in info.value.hint


def test_builtin_sample_covers_every_task_with_a_sample_entry(monkeypatch, tmp_path):
    import dataclasses

    from rpx_tasks import tasks

    monkeypatch.setenv("RPX_CACHE_DIR", str(tmp_path))
    config = validate_config_step.fn(params(manifest=BUILTIN_SAMPLE))
    assert config.manifest == BUILTIN_SAMPLE
    assert list(tmp_path.iterdir()) == []  # validating writes nothing: the download step writes the data
    config = validate_config_step.fn(params(task="object_segmentation", model_name="baseline", manifest=BUILTIN_SAMPLE))
    assert config.model_name == "colour_segmentation"
    bare = dataclasses.replace(tasks.get_task("monocular_depth"), name="no_samples", sample_entry=None)
    monkeypatch.setitem(tasks._REGISTRY, "no_samples", bare)
    with pytest.raises(ConfigError, match="does not cover 'no_samples'") as info:
        validate_config_step.fn(params(task="no_samples", manifest=BUILTIN_SAMPLE))
    assert "monocular_depth" in info.value.hint


# -- resolve device --------------------------------------------------------------------------


def test_resolve_device_keeps_cpu_and_rejects_nonsense():
    assert resolve_device_step.fn("cpu") == "cpu"
    with pytest.raises(ConfigError):
        resolve_device_step.fn("gpu0")


def test_cuda_falls_back_to_cpu_without_cuda(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device_step.fn("cuda:0") == "cpu"
    with pytest.raises(ConfigError, match="GPU is required"):
        resolve_device_step.fn("cuda", require_cuda=True)


# -- download split --------------------------------------------------------------------------


def test_download_step_with_a_local_manifest_returns_it(depth_manifest):
    config = validate_config_step.fn(params(manifest=str(depth_manifest)))
    prepared = download_split_step.fn(config)
    assert prepared.manifest_path == depth_manifest.resolve() and prepared.source == "local"


def test_builtin_sample_data_is_written_once(tmp_path):
    from rpx_tasks.sample_data.builtin import ensure_sample_data

    root = ensure_sample_data(tmp_path / "sample")
    manifest = root / manifest_relpath("monocular_depth", "hard")
    stamp = manifest.stat().st_mtime_ns
    assert ensure_sample_data(tmp_path / "sample") == root
    assert manifest.stat().st_mtime_ns == stamp  # reused, not rewritten
    assert [p.name for p in tmp_path.iterdir()] == ["sample"]  # no staging folder left behind


def test_download_step_with_builtin_sample(monkeypatch, tmp_path):
    from rpx_tasks.sample_data.builtin import sample_data_dir

    monkeypatch.setenv("RPX_CACHE_DIR", str(tmp_path))
    config = validate_config_step.fn(params(manifest=BUILTIN_SAMPLE, split="easy"))
    prepared = download_split_step.fn(config)
    assert prepared.manifest_path == sample_data_dir() / manifest_relpath("monocular_depth", "easy")
    assert prepared.manifest_path.is_file() and prepared.manifest_path.is_relative_to(tmp_path)
    assert prepared.source == "local" and prepared.root is None


def test_download_step_fetches_a_hub_split(hub_env):
    config = RunConfig(
        task="monocular_depth",
        model_name=BASELINE,
        repo_id="rpx-test/loose",
        revision="main",
        cache_dir=str(hub_env.hf_cache),
        device="cpu",
    )
    assert download_needs_refresh(config)  # nothing on disk yet
    prepared = download_split_step.fn(config)
    assert prepared.source == "hub" and prepared.repo_id == "rpx-test/loose"
    assert prepared.manifest_path.name == "hard.depth+rgb.json"
    assert split_files_present(config) and not download_needs_refresh(config)
    assert hub_env.server.fetched_files()


def test_cache_key_covers_what_selects_the_files(tmp_path):
    base = dict(task="monocular_depth", model_name=BASELINE, repo_id="org/rpx", revision="abc", device="cpu")
    key = download_cache_key(RunConfig(**base))
    assert key == download_cache_key(RunConfig(**base))
    assert key == download_cache_key(RunConfig(**{**base, "model_name": "constant_depth", "batch_size": 4}))
    assert key.startswith("rpx-split-monocular_depth-hard-")
    different = [
        {"revision": "def"},
        {"repo_id": "org/other"},
        {"split": "easy"},
        {"max_samples": 5},
        {"cache_dir": str(tmp_path)},
    ]
    keys = {download_cache_key(RunConfig(**{**base, **change})) for change in different}
    assert key not in keys and len(keys) == len(different)
    assert STEP_VERSION


def test_downloading_more_modalities_is_a_new_cache_key():
    from rpx_tasks.model_selection import list_models

    [segmenter, *_] = list_models("object_segmentation")
    plain = RunConfig(task="object_segmentation", model_name=segmenter.name, repo_id="org/rpx", revision="abc")
    with_sgc = RunConfig(
        task="object_segmentation",
        model_name=segmenter.name,
        repo_id="org/rpx",
        revision="abc",
        geometric_coherence=True,
    )
    assert download_cache_key(plain) != download_cache_key(with_sgc)


def test_a_changed_local_mirror_is_a_new_cache_key(tmp_path):
    manifest = tmp_path / "mirror" / manifest_relpath("monocular_depth", "hard")
    manifest.parent.mkdir(parents=True)
    manifest.write_text("{}")
    config = RunConfig(task="monocular_depth", model_name=BASELINE, repo_id=str(tmp_path / "mirror"))
    key = download_cache_key(config)
    import os

    os.utime(manifest, ns=(manifest.stat().st_atime_ns, manifest.stat().st_mtime_ns + 10**9))
    assert download_cache_key(config) != key


def test_no_cache_key_for_local_or_builtin_data(depth_manifest):
    policy = SplitCachePolicy()
    local = RunConfig(task="monocular_depth", model_name=BASELINE, manifest=str(depth_manifest))
    assert policy.compute_key(None, {"config": local}, {}) is None
    builtin = RunConfig(task="monocular_depth", model_name=BASELINE, manifest=BUILTIN_SAMPLE)
    assert policy.compute_key(None, {"config": builtin}, {}) is None


def test_a_lost_data_file_makes_the_download_step_refresh(hub_env):
    config = RunConfig(
        task="monocular_depth",
        model_name=BASELINE,
        repo_id="rpx-test/loose",
        revision="main",
        cache_dir=str(hub_env.hf_cache),
        max_samples=2,
    )
    prepared = download_split_step.fn(config)
    assert not download_needs_refresh(config)
    sample = json.loads(prepared.manifest_path.read_text())["samples"][1]
    Path(prepared.root, sample["rgb"]).unlink()
    assert not split_files_present(config) and download_needs_refresh(config)
    download_split_step.fn(config)
    assert split_files_present(config) and not download_needs_refresh(config)


def test_local_and_builtin_data_never_refresh(depth_manifest):
    assert not download_needs_refresh(
        RunConfig(task="monocular_depth", model_name=BASELINE, manifest=str(depth_manifest))
    )
    assert not download_needs_refresh(RunConfig(task="monocular_depth", model_name=BASELINE, manifest=BUILTIN_SAMPLE))


@pytest.mark.parametrize(
    "error, retried",
    [
        (TransientDownloadError("503 from the Hub"), True),
        (DownloadError("unknown repo"), False),
        (ManifestError("broken manifest"), False),
        (ConfigError("bad config"), False),
        (RuntimeError("bug"), False),
    ],
)
def test_only_transient_download_errors_are_retried(error, retried):
    assert retry_transient_only(None, None, Failed(data=error)) is retried


# -- run benchmark / write report helpers ------------------------------------------------------


def test_logging_progress_logs_quarters_and_passes_every_update_on(caplog):
    from rpx_tasks.steps.logs import logging_progress

    seen = []
    progress = logging_progress(also=lambda *args: seen.append(args))
    with caplog.at_level("INFO", logger="rpx_tasks.steps"):
        for done in range(9):
            progress(done, 8, "predict")
        progress(0, None, "setup")
    assert [r.getMessage() for r in caplog.records] == [f"predict {n}/8 samples" for n in (2, 4, 6, 8)]
    assert seen == [(done, 8, "predict") for done in range(9)] + [(0, None, "setup")]


def test_artifact_keys_are_valid_and_stable():
    key = artifact_key("monocular_depth", "rpx_tasks.models.baselines:ground_plane_depth", "hard", "summary")
    assert key == "rpx-monocular-depth-rpx-tasks-models-baselines-ground-plane-depth-hard-summary"
    hf = artifact_key("monocular_depth", "depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf", "hard", "metrics")
    assert hf == "rpx-monocular-depth-depth-anything-depth-anything-v2-metric-indoor-small-hf-hard-metrics"
    for value in (key, hf):
        assert re.fullmatch(r"[a-z0-9-]+", value)


def test_progress_artifact_updates_are_throttled():
    from rpx_tasks.steps.progress_artifact import update_due

    assert update_due(0.0, None, 0.0, False)  # the first one
    assert not update_due(1.0, 0.0, 1.0, False) and update_due(2.0, 0.0, 1.0, False)  # every 2 %
    assert update_due(0.5, 0.0, 5.0, False) and not update_due(0.0, 0.0, 60.0, False)  # or 5 s, if it advanced
    assert not update_due(50.0, 25.0, 0.2, False)  # never within 1 s of the last one (a short run)...
    assert update_due(100.0, 25.0, 0.2, True)  # ...but the last sample is always sent
    assert update_due(100.0, 99.5, 0.1, True) and not update_due(100.0, 100.0, 9.0, True)  # the last sample, once


def test_artifact_keys_and_tags_separate_data_sources_and_device_classes(depth_manifest):
    """Smoke (built-in sample data, CPU) and nightly (Hub data at a pinned revision, CUDA) never share a key."""
    smoke = run_labels(
        RunConfig(task="monocular_depth", model_name="ground_plane_prior", manifest="builtin:sample"), "cpu"
    )
    nightly = run_labels(RunConfig(task="monocular_depth", model_name="ground_plane_prior"), "cuda:0")
    manifest = run_labels(
        RunConfig(task="monocular_depth", model_name="ground_plane_prior", manifest=str(depth_manifest)), "cuda"
    )
    assert (smoke.data, smoke.device) == ("sample", "cpu")
    assert (nightly.data, nightly.device) == ("51432e5d", "cuda")
    assert manifest.data.startswith("manifest-") and len(manifest.data) == len("manifest-") + 8
    keys = [labels.key(kind) for labels in (smoke, nightly, manifest) for kind in ("summary", "metrics", "phases")]
    assert len(set(keys)) == len(keys)
    assert smoke.key("summary") == "rpx-monocular-depth-ground-plane-prior-hard-sample-cpu-summary"
    assert nightly.key("summary") == "rpx-monocular-depth-ground-plane-prior-hard-51432e5d-cuda-summary"
    assert nightly.tags() == [
        "task:monocular_depth",
        "model:ground_plane_prior",
        "split:hard",
        "data:51432e5d",
        "device:cuda",
    ]


def test_metrics_table_and_summary_from_a_real_run(depth_manifest, tmp_path):
    config = RunConfig(
        task="monocular_depth",
        model_name=BASELINE,
        manifest=str(depth_manifest),
        max_samples=4,
        device="cpu",
        output_dir=str(tmp_path / "out"),
    )
    paths, payload = bench.run_bench(config)
    rows = metrics_table(payload)
    assert [row["metric"] for row in rows] == list(payload["aggregated"])
    assert all(set(row) == {"metric", "value", "better", "n", "nan", "inf"} for row in rows)
    assert {row["better"] for row in rows} <= {"higher", "lower", None}
    phases = phase_table(payload)
    assert [row["phase"] for row in phases][:4] == ["clutter", "interaction", "clean", "overall"]
    assert phases[3]["score"] == round(payload["readiness"]["wps"]["s_overall"], 6)
    summary = run_summary(config, payload, paths, "cpu", {"summary": "k"})
    assert summary["num_samples"] == 4 and summary["primary_metric"] == payload["primary_metric"]
    assert Path(summary["result_json"]).is_file() and summary["artifacts"] == {"summary": "k"}
    import json

    json.dumps(summary)  # plain JSON: a flow run can return it


def test_summary_artifact_names_the_chart_instead_of_a_broken_relative_image(tmp_path):
    from rpx_tasks.steps.artifacts import summary_markdown

    paths = bench.ReportPaths(
        output_dir=tmp_path,
        result_json=tmp_path / "result.json",
        summary_md=tmp_path / "summary.md",
        per_sample=tmp_path / "per_sample_metrics.parquet",
        cells=tmp_path / "cells.parquet",
    )
    text = summary_markdown(
        "# RPX\n\n## Phase scores\n\n![phase scores](phase_scores.png)\n", {"run": {"id": "r1"}}, paths
    )
    assert "![phase scores]" not in text and "`phase_scores.png` in the run folder" in text and "`r1`" in text
