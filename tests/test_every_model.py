"""Registry-driven (timm style): every weight-free model of the registry predicts one built-in sample.

For each ``import`` entry of ``model_selection.list_models()``: resolve it by name, set it up,
predict the first sample of its task's hard split of the built-in sample dataset, validate the
prediction with the task spec and score it; the metric keys must be the task's metric names and
the primary metric a finite float. A newly registered model or task is covered automatically.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import pytest

from rpx_tasks.dataset import open_split
from rpx_tasks.manifest import manifest_relpath
from rpx_tasks.model_selection import list_models, resolve_model
from rpx_tasks.models.import_path import load_import_path
from rpx_tasks.models.numpy_function import NumpyFunctionModel
from rpx_tasks.sample import Sample
from rpx_tasks.tasks import get_task, iter_tasks

IMPORT_MODELS = [entry for entry in list_models() if entry.kind == "import"]
TASKS = iter_tasks()


@pytest.fixture(scope="session")
def first_sample(sample_dataset):
    """``first_sample(task)``: the first sample of the task's hard split, decoded once per session."""
    samples: dict[str, Sample] = {}

    def get(task: str) -> Sample:
        if task not in samples:
            manifest = sample_dataset / manifest_relpath(task, "hard")
            dataset = open_split(manifest, get_task(task))
            assert len(dataset) > 0, f"{manifest} lists no samples"
            samples[task] = dataset.decode(dataset.entries[0])
        return samples[task]

    return get


def _is_numpy_function(target: Any) -> bool:
    """A callable with a required positional parameter (not a class): what the numpy adapter wraps."""
    if isinstance(target, type):
        return False
    parameters = inspect.signature(target).parameters.values()
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return any(p.default is inspect.Parameter.empty and p.kind in positional for p in parameters)


def test_registry_lists_weight_free_models():
    assert IMPORT_MODELS, "the registry has no import (weight-free) models"
    assert len({entry.name for entry in IMPORT_MODELS}) == len(IMPORT_MODELS)


@pytest.mark.parametrize("entry", IMPORT_MODELS, ids=[entry.name for entry in IMPORT_MODELS])
def test_model_predicts_and_scores_a_sample(entry, first_sample):
    spec = get_task(entry.task)
    sample = first_sample(spec.name)

    model = resolve_model(spec, model_name=entry.name, device="cpu")
    assert model.task == spec.name
    assert model.name == entry.name
    target = load_import_path(entry.target)
    if _is_numpy_function(target):
        assert isinstance(model, NumpyFunctionModel) and model.fn is target

    model.setup()
    predictions = model.predict([sample])
    assert len(predictions) == 1

    validated = spec.validate_prediction(predictions[0], sample)
    metrics = spec.compute_metrics(validated, sample.ground_truth)
    assert list(metrics) == spec.metric_names
    for name, value in metrics.items():
        assert value is None or isinstance(value, float), f"{name} = {value!r} ({type(value).__name__})"
    primary = metrics[spec.primary_metric]
    assert isinstance(primary, float) and math.isfinite(primary), f"{spec.primary_metric} = {primary!r}"


@pytest.mark.parametrize("spec", TASKS, ids=[spec.name for spec in TASKS])
def test_task_baseline_is_its_first_import_entry(spec):
    imports = [entry for entry in spec.models if entry.kind == "import"]
    assert imports, f"{spec.name} registers no weight-free (import) model"
    assert all(entry.task == spec.name for entry in spec.models)
    model = resolve_model(spec, model_name="baseline", device="cpu")
    assert model.name == imports[0].name
    assert model.task == spec.name
