"""The bad-input catalogue as a whole (issue 9, requirement 2): at least 60 cases, every one of the
tasks in at least four, all four families (config, manifest, files, predictions), ids unique."""

from __future__ import annotations

from collections import Counter

from rpx_tasks.tasks import task_names
from tests import test_bad_inputs_config, test_bad_inputs_files, test_bad_inputs_manifest, test_bad_inputs_predictions

CATALOGUE = [
    *test_bad_inputs_config.CASES,
    *test_bad_inputs_manifest.CASES,
    *test_bad_inputs_files.CASES,
    *test_bad_inputs_predictions.CASES,
]


def test_the_catalogue_spans_every_task_and_family():
    per_task = Counter(case.task for case in CATALOGUE)
    assert len(CATALOGUE) >= 60
    assert set(per_task) == set(task_names()) and len(per_task) == len(task_names()) >= 10
    assert min(per_task.values()) >= 4, per_task
    assert {case.family for case in CATALOGUE} == {"config", "manifest", "files", "predictions"}
    assert len({case.id for case in CATALOGUE}) == len(CATALOGUE)
