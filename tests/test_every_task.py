"""Registry-driven: every registered task runs through the whole rpx-bench flow on the built-in
sample data with its default baseline, so a newly added task is covered automatically."""

import json

import pyarrow.parquet as pq
import pytest

from flows.rpx_bench import rpx_bench
from rpx_tasks.model_selection import default_baseline
from rpx_tasks.sample_data.builtin import BUILTIN_SAMPLE
from rpx_tasks.steps import artifact_key
from rpx_tasks.steps.artifacts import ARTIFACT_KINDS
from rpx_tasks.tasks import iter_tasks
from tests.support.run_folders import REPORT_FILES

TASKS = [spec for spec in iter_tasks() if spec.sample_entry is not None]


def test_every_registered_task_has_sample_data():
    assert {spec.name for spec in TASKS} == {spec.name for spec in iter_tasks()}
    assert len(TASKS) >= 9


@pytest.mark.parametrize("spec", TASKS, ids=[spec.name for spec in TASKS])
def test_task_runs_through_the_flow_with_its_baseline(spec, tmp_path, prefect_client):
    out = tmp_path / spec.name
    summary = rpx_bench(
        task=spec.name,
        model="baseline",
        manifest=BUILTIN_SAMPLE,
        split="hard",
        device="cpu",
        output_dir=str(out),
        max_samples=6,
    )
    baseline = default_baseline(spec.name).name
    assert summary["model"] == baseline and summary["num_samples"] > 0
    assert sorted(p.name for p in out.iterdir()) == REPORT_FILES
    result = json.loads((out / "result.json").read_text())
    assert result["task"] == spec.name and result["model"] == baseline
    assert result["primary_metric"] == spec.primary_metric
    assert result["readiness"]["wps"]["direction"] == (
        "higher_is_better" if spec.higher_is_better(spec.primary_metric) else "lower_is_better"
    )
    for name in spec.metric_names:
        assert result["aggregated"][name]["higher_is_better"] == spec.higher_is_better(name)
    columns = pq.read_schema(out / "per_sample_metrics.parquet").names
    identity = ["id", "scene", "phase", "difficulty", "frame_idx"] + (["num_frames"] if spec.clip else [])
    assert columns[: len(identity)] == identity
    assert columns[len(identity) : -1] == spec.metric_names and columns[-1] == "latency_ms"
    expected = {artifact_key(spec.name, baseline, "hard", kind, data="sample", device="cpu") for kind in ARTIFACT_KINDS}
    # Read by key: the session's API holds many artifacts, more than one unfiltered page.
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    found = prefect_client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=sorted(expected))))
    assert set(summary["artifacts"].values()) == expected and expected <= {artifact.key for artifact in found}
