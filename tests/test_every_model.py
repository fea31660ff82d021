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

from rpx_tasks.dataset import clip_length, open_split
from rpx_tasks.manifest import manifest_relpath
from rpx_tasks.model_selection import list_models, resolve_model
from rpx_tasks.models.import_path import load_import_path
from rpx_tasks.models.numpy_function import NumpyClipFunctionModel, NumpyFunctionModel
from rpx_tasks.sample import Sample
from rpx_tasks.tasks import get_task, iter_tasks

IMPORT_MODELS = [entry for entry in list_models() if entry.kind == "import"]
TASKS = iter_tasks()


@pytest.fixture(scope="session")
def first_sample(sample_dataset):
    """``first_sample(task)``: the first sample of the task's hard split (of a clip task: every frame of its
    first clip), decoded once per session."""
    samples: dict[str, list[Sample]] = {}

    def get(task: str) -> list[Sample]:
        if task not in samples:
            manifest = sample_dataset / manifest_relpath(task, "hard")
            dataset = open_split(manifest, get_task(task))
            assert len(dataset) > 0, f"{manifest} lists no samples"
            first = dataset.decode(dataset.entries[0])
            if get_task(task).clip is not None:
                samples[task] = [dataset.decode(entry) for entry in dataset.entries[: clip_length(dataset.entries[0])]]
            else:
                samples[task] = [first]
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
    samples = first_sample(spec.name)

    model = resolve_model(spec, model_name=entry.name, device="cpu")
    assert model.task == spec.name
    assert model.name == entry.name
    target = load_import_path(entry.target)
    if _is_numpy_function(target):
        assert isinstance(model, (NumpyFunctionModel, NumpyClipFunctionModel)) and model.fn is target

    model.setup()
    predictions = model.predict(samples)
    assert len(predictions) == len(samples)

    validated = [spec.validate_prediction(prediction, sample) for prediction, sample in zip(predictions, samples)]
    if spec.clip is None:
        metrics = spec.compute_metrics(validated[0], samples[0].ground_truth)
    else:  # a clip task scores the clip's frames together
        scoring = spec.clip.scoring("none", False)
        for prediction, sample in zip(validated, samples):
            scoring.add(prediction, sample.ground_truth)
        metrics, _ = scoring.finish()
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
