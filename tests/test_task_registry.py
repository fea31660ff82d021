"""Registry-driven: every task's declared contract is consistent with the report, the Hub and the
sample data, so a newly registered task is checked automatically.

The metric names are report columns (a public contract): unique, with the primary metric among
them. The modalities must be ones the Hub download knows, and every required manifest key must
be written by the task's built-in sample entries.
"""

from __future__ import annotations

import json

import pytest

from rpx_tasks.hub import MODALITY_FILES
from rpx_tasks.manifest import manifest_relpath
from rpx_tasks.tasks import iter_tasks

TASKS = iter_tasks()


@pytest.mark.parametrize("spec", TASKS, ids=[spec.name for spec in TASKS])
def test_metric_names_are_unique_and_include_the_primary_metric(spec):
    assert spec.metric_names, f"{spec.name} declares no metrics"
    assert len(set(spec.metric_names)) == len(spec.metric_names), spec.metric_names
    assert spec.primary_metric in spec.metric_names


@pytest.mark.parametrize("spec", TASKS, ids=[spec.name for spec in TASKS])
def test_modalities_are_known_hub_modalities(spec):
    assert spec.modalities, f"{spec.name} downloads nothing"
    assert set(spec.modalities) <= set(MODALITY_FILES), sorted(set(spec.modalities) - set(MODALITY_FILES))


@pytest.mark.parametrize("spec", TASKS, ids=[spec.name for spec in TASKS])
def test_required_keys_are_written_by_the_sample_data(spec, sample_dataset):
    if spec.sample_entry is None:
        pytest.skip(f"{spec.name} has no sample data")
    samples = json.loads((sample_dataset / manifest_relpath(spec.name, "all")).read_text())["samples"]
    assert samples, f"the sample data lists no {spec.name} samples"
    for sample in samples:
        missing = set(spec.required_keys) - set(sample)
        assert not missing, f"{sample['id']} lacks {sorted(missing)}"
