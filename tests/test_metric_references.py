"""One shared tester for every public function of ``rpx_tasks.metrics`` (torchmetrics style).

Each function is paired with a plain float64 reference and a list of cases in
``tests/support/metric_references/<module>.py`` (the module of ``rpx_tasks.metrics`` with the
same name): random inputs for a few seeds plus the edge cases (empty input, all-invalid input,
a single element, boundaries). One parametrised test runs every (function, case) pair and
asserts the two agree to 1e-9 (counts, integers and boolean maps exactly).

Further tests: every module's ``*_METRIC_INFO`` names equal the keys its function returns, the
table covers every public function and MetricInfo of the package, and every registered task
scores with a function defined in ``rpx_tasks.metrics``.
"""

from __future__ import annotations

import importlib
import inspect
import math
import pkgutil
from typing import Any

import numpy as np
import pytest

import rpx_tasks.metrics
from tests.support.metric_references import (
    boundaries,
    boxes,
    depth,
    depth_alignment,
    detection,
    keypoints,
    pose,
    segmentation,
    sparse_depth,
    tracking,
    video_depth,
    view_synthesis,
)
from tests.support.metric_references.table import Case, MetricRow

TOLERANCE = 1e-9

TABLE: tuple[MetricRow, ...] = (
    *depth.ROWS,
    *depth_alignment.ROWS,
    *segmentation.ROWS,
    *boundaries.ROWS,
    *sparse_depth.ROWS,
    *keypoints.ROWS,
    *pose.ROWS,
    *boxes.ROWS,
    *detection.ROWS,
    *tracking.ROWS,
    *view_synthesis.ROWS,
    *video_depth.ROWS,
)


def _load(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(f"rpx_tasks.metrics.{module}"), attribute)


def _as_dict(value: Any) -> dict[str, Any]:
    """A metric dict as is; a tuple as {"[0]": ..., "[1]": ...}; anything else as {"value": ...}."""
    if isinstance(value, dict):
        return value
    if isinstance(value, tuple):
        return {f"[{index}]": item for index, item in enumerate(value)}
    return {"value": value}


def _params(rows=TABLE):
    for row in rows:
        for case in row.cases:
            marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
            yield pytest.param(row, case, id=f"{row.name}-{case.id}", marks=marks)


def _is_integer(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def assert_arrays_equal(key: str, got: Any, want: np.ndarray) -> None:
    """Same shape and kind (bool, integer, float); bool and integer arrays equal exactly, float
    arrays within 1e-9 with NaN and infinities where the reference has them."""
    assert isinstance(got, np.ndarray), f"{key}: {type(got).__name__}, reference an array"
    assert got.shape == want.shape, f"{key}: shape {got.shape}, reference {want.shape}"
    kinds = {"b": "b", "i": "iu", "u": "iu", "f": "f"}
    assert got.dtype.kind in kinds[want.dtype.kind], f"{key}: dtype {got.dtype}, reference {want.dtype}"
    if want.dtype.kind == "f":
        np.testing.assert_allclose(got, want, rtol=TOLERANCE, atol=TOLERANCE, equal_nan=True, err_msg=key)
    else:
        np.testing.assert_array_equal(got, want, err_msg=key)


def assert_metrics_equal(actual: dict[str, Any], expected: dict[str, Any], exact: frozenset[str] = frozenset()):
    """Same keys; None, NaN and infinities where the reference has them; integers and arrays as
    ``assert_arrays_equal``; other values floats within 1e-9 (``exact`` keys equal)."""
    assert set(actual) == set(expected), f"keys differ: {sorted(actual)} vs reference {sorted(expected)}"
    for key, want in expected.items():
        got = actual[key]
        if want is None:
            assert got is None, f"{key}: {got!r}, reference None"
        elif isinstance(want, np.ndarray):
            assert_arrays_equal(key, got, want)
        elif _is_integer(want):
            assert _is_integer(got) and got == want, f"{key}: {got!r}, reference {want!r}"
        else:
            assert isinstance(got, float), f"{key}: {got!r} is a {type(got).__name__}, not a float"
            if math.isnan(want):
                assert math.isnan(got), f"{key}: {got!r}, reference NaN"
            elif key in exact or math.isinf(want):
                assert got == want, f"{key}: {got!r}, reference {want!r}"
            else:
                assert math.isclose(got, want, rel_tol=TOLERANCE, abs_tol=TOLERANCE), (
                    f"{key}: {got!r}, reference {want!r}"
                )


@pytest.mark.parametrize(("row", "case"), list(_params()))
def test_metric_matches_reference(row: MetricRow, case: Case):
    function = _load(row.function)
    actual = function(*case.make())
    expected = row.reference(*case.make())
    assert_metrics_equal(_as_dict(actual), _as_dict(expected), row.exact)


@pytest.mark.parametrize(("row", "case"), list(_params(row for row in TABLE if row.info)))
def test_metric_info_names_are_the_returned_keys(row: MetricRow, case: Case):
    names = [info.name for info in _load(row.info)]
    assert len(set(names)) == len(names), f"{row.info} declares a name twice: {names}"
    assert list(_load(row.function)(*case.make())) == names


def _metric_modules() -> list[Any]:
    return [
        importlib.import_module(f"rpx_tasks.metrics.{info.name}")
        for info in pkgutil.iter_modules(rpx_tasks.metrics.__path__)
        if not info.name.startswith("_")
    ]


def test_table_covers_every_public_function_and_metric_info():
    """Every public function defined in a ``rpx_tasks.metrics`` module has a TABLE row (a helper
    that needs none is private: ``_name``), and every ``*_METRIC_INFO`` is checked by one."""
    covered_functions = {row.function for row in TABLE}
    covered_infos = {row.info for row in TABLE if row.info}
    assert len(covered_functions) == len(TABLE), "a function has two TABLE rows"
    for module in _metric_modules():
        short = module.__name__.rsplit(".", 1)[-1]
        for name, value in vars(module).items():
            public = inspect.isfunction(value) and value.__module__ == module.__name__ and not name.startswith("_")
            if public:
                assert f"{short}:{name}" in covered_functions, f"{module.__name__}.{name} has no reference in TABLE"
            if name.endswith("_METRIC_INFO"):
                assert f"{short}:{name}" in covered_infos, f"{module.__name__}.{name} is checked by no TABLE row"


def test_every_task_scores_with_a_metrics_function():
    from rpx_tasks.tasks import iter_tasks

    specs = iter_tasks()
    assert specs
    for spec in specs:
        function = spec.compute_metrics
        assert inspect.isfunction(function), f"{spec.name}: compute_metrics is {function!r}, not a plain function"
        assert function.__module__.startswith("rpx_tasks.metrics."), (
            f"{spec.name}: compute_metrics {function.__qualname__} is defined in {function.__module__}"
        )
        module = importlib.import_module(function.__module__)
        declared = [value for name, value in vars(module).items() if name.endswith("_METRIC_INFO")]
        assert any(spec.metrics == info for info in declared), (
            f"{spec.name}: its metrics are not a MetricInfo tuple of {function.__module__}"
        )
