"""Import paths, the model registry and model resolution (no weights, no network)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from rpx_tasks import model_selection
from rpx_tasks.contracts.model import Model
from rpx_tasks.contracts.spec import ModelEntry, TaskSpec
from rpx_tasks.errors import ConfigError, ModelError
from rpx_tasks.model_selection import get_entry, list_models, register_model, resolve_model
from rpx_tasks.models.import_path import load_import_path, model_from_callable
from rpx_tasks.models.numpy_function import NumpyFunctionModel, wrap_numpy_function
from rpx_tasks.sample import Sample
from rpx_tasks.tasks import get_task
from tests.support.specs import LOADER_CALLS, RECORDING_LOADER, make_spec
from tests.support.user_modules import write_user_modules


@pytest.fixture
def depth_spec() -> TaskSpec:
    return make_spec()


@pytest.fixture
def loader_calls():
    """The (checkpoint, kwargs) of every ``recording_loader`` call during one test, emptied before and after."""
    LOADER_CALLS.clear()
    yield LOADER_CALLS
    LOADER_CALLS.clear()


@pytest.fixture
def user_modules(tmp_path, monkeypatch):
    """Small importable modules a user could point --model at (``tests.support.user_modules``), on sys.path."""
    modules = write_user_modules(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for module in modules:
        sys.modules.pop(module, None)


def _sample(h: int = 4, w: int = 6) -> Sample:
    return Sample(id="s0", rgb=np.zeros((h, w, 3), np.uint8), ground_truth=None)


# --- load_import_path -------------------------------------------------------------------


def test_load_import_path_returns_the_attribute(user_modules):
    fn = load_import_path("rpx_user_models:predict_depth")
    assert fn.__name__ == "predict_depth"
    assert load_import_path("rpx_user_models:Holder.predict_depth")(np.zeros((2, 3, 3))).shape == (2, 3)


@pytest.mark.parametrize(
    "spec", ["", "no_colon", "pkg.mod:", ":fn", "pkg..mod:fn", "pkg.mod:fn:x", "pkg mod:fn", "1pkg:fn"]
)
def test_malformed_import_path(spec):
    with pytest.raises(ConfigError) as info:
        load_import_path(spec)
    assert "Malformed import path" in info.value.message
    assert "package.module:callable" in info.value.hint


def test_missing_module_names_it_and_pythonpath(user_modules):
    with pytest.raises(ConfigError) as info:
        load_import_path("rpx_no_such_module.sub:fn")
    assert "'rpx_no_such_module.sub'" in info.value.message
    assert "PYTHONPATH" in info.value.hint and "importable" in info.value.hint


def test_missing_submodule_of_existing_package():
    with pytest.raises(ConfigError) as info:
        load_import_path("rpx_tasks.no_such_module:fn")
    assert "rpx_tasks.no_such_module" in info.value.message
    assert "PYTHONPATH" in info.value.hint


def test_missing_dependency_of_module_is_named(user_modules):
    with pytest.raises(ConfigError) as info:
        load_import_path("rpx_user_needs_dep:fn")
    assert "rpx_surely_missing_dependency" in info.value.message
    assert "install" in info.value.hint


def test_module_failing_at_import(user_modules):
    with pytest.raises(ConfigError) as info:
        load_import_path("rpx_user_broken:fn")
    assert "RuntimeError" in info.value.message and "boom at import" in info.value.message
    assert "import rpx_user_broken" in info.value.hint


def test_missing_attribute_lists_public_names(user_modules):
    with pytest.raises(ConfigError) as info:
        load_import_path("rpx_user_models:predict_dept")
    assert "has no attribute 'predict_dept'" in info.value.message
    assert "did you mean 'predict_depth'" in info.value.hint
    assert "build" in info.value.hint and "DepthModel" in info.value.hint


def test_missing_nested_attribute(user_modules):
    with pytest.raises(ConfigError) as info:
        load_import_path("rpx_user_models:Holder.nope")
    assert "'rpx_user_models:Holder' has no attribute 'nope'" in info.value.message


def test_non_callable_attribute(user_modules):
    with pytest.raises(ConfigError) as info:
        load_import_path("rpx_user_models:NOT_CALLABLE")
    assert "is a int, not a callable" in info.value.message


def test_model_instance_is_accepted(user_modules):
    assert load_import_path("rpx_user_models:READY").scale == 5.0


# --- model_from_callable ------------------------------------------------------------------


def test_numpy_function_is_wrapped(user_modules, depth_spec):
    fn = load_import_path("rpx_user_models:predict_depth")
    model = model_from_callable(fn, task_spec=depth_spec, name="predict_depth")
    assert isinstance(model, NumpyFunctionModel) and isinstance(model, Model)
    assert model.name == "predict_depth" and model.task == "monocular_depth"
    (depth,) = model.predict([_sample()])
    assert depth.dtype == np.float32 and depth.shape == (4, 6)


def test_lambda_is_a_numpy_function(depth_spec):
    model = model_from_callable(lambda rgb: np.ones(rgb.shape[:2]), task_spec=depth_spec)
    assert isinstance(model, NumpyFunctionModel)


def test_factory_gets_device_and_kwargs(user_modules, depth_spec):
    factory = load_import_path("rpx_user_models:build")
    model = model_from_callable(
        factory, task_spec=depth_spec, name="build", device="cuda:1", model_kwargs={"scale": 7.0}
    )
    assert model.device == "cuda:1" and model.scale == 7.0 and model.name == "build"


def test_class_is_a_factory(user_modules, depth_spec):
    cls = load_import_path("rpx_user_models:DepthModel")
    model = model_from_callable(cls, task_spec=depth_spec, name=None, device="cpu")
    assert type(model).__name__ == "DepthModel" and model.name == "user_depth"


def test_factory_without_device_parameter(user_modules, depth_spec):
    factory = load_import_path("rpx_user_models:build_no_kwargs")
    model = model_from_callable(factory, task_spec=depth_spec, device="cuda")
    assert model.device == "cpu"


def test_factory_rejects_unknown_kwargs(user_modules, depth_spec):
    with pytest.raises(ConfigError) as info:
        model_from_callable(
            load_import_path("rpx_user_models:build_no_kwargs"), task_spec=depth_spec, model_kwargs={"scale": 2}
        )
    assert "['scale']" in info.value.message


def test_factory_of_wrong_task(user_modules, depth_spec):
    with pytest.raises(ModelError) as info:
        model_from_callable(load_import_path("rpx_user_models:build_wrong_task"), task_spec=depth_spec)
    assert "object_segmentation" in info.value.message and "monocular_depth" in info.value.message


def test_factory_returning_non_model(user_modules, depth_spec):
    with pytest.raises(ModelError) as info:
        model_from_callable(load_import_path("rpx_user_models:build_not_a_model"), task_spec=depth_spec)
    assert "returned a str" in info.value.message
    assert "required positional parameter" in info.value.hint


def test_factory_that_raises(user_modules, depth_spec):
    with pytest.raises(ModelError) as info:
        model_from_callable(load_import_path("rpx_user_models:build_raises"), task_spec=depth_spec)
    assert "weights missing" in info.value.message


def test_ready_model_is_used_as_is(user_modules, depth_spec):
    ready = load_import_path("rpx_user_models:READY")
    assert model_from_callable(ready, task_spec=depth_spec) is ready
    with pytest.raises(ModelError):
        model_from_callable(ready, task_spec=make_spec("object_segmentation"))


def test_non_callable_object_is_a_model_error(depth_spec):
    with pytest.raises(ModelError):
        model_from_callable(42, task_spec=depth_spec, name="x")


# --- registry -----------------------------------------------------------------------------


def test_builtin_depth_entries():
    names = [entry.name for entry in list_models("monocular_depth")]
    for expected in (
        "depth_anything_v2_metric_indoor_small",
        "depth_anything_v2_metric_indoor_base",
        "depth_anything_v2_metric_indoor_large",
        "depth_pro",
        "zoedepth_nyu_kitti",
        "ground_plane_prior",
        "constant_depth",
    ):
        assert expected in names
    assert get_entry("depth_anything_v2_metric_indoor_large").target == (
        "depth-anything/Depth-Anything-V2-Metric-Indoor-Large-hf"
    )
    assert get_entry("depth_pro").target == "apple/DepthPro-hf"
    assert get_entry("zoedepth_nyu_kitti").target == "Intel/zoedepth-nyu-kitti"
    assert get_entry("ground_plane_prior").target == "rpx_tasks.models.baselines:ground_plane_depth"
    assert list_models("no_such_task") == []


@pytest.mark.parametrize("entry", list_models(), ids=lambda e: e.name)
def test_every_entry_is_well_formed(entry):
    from transformers.models.auto.modeling_auto import MODEL_FOR_DEPTH_ESTIMATION_MAPPING_NAMES

    assert entry.kind in model_selection.KINDS and entry.description
    if entry.kind == "import":
        module, _, attr = entry.target.partition(":")
        assert module and attr
    if entry.task == "monocular_depth" and entry.kind == "hf":
        # The model types these checkpoints need exist in the installed transformers.
        assert {"depth_anything", "depth_pro", "zoedepth"} <= set(MODEL_FOR_DEPTH_ESTIMATION_MAPPING_NAMES)


def test_unknown_model_suggests_and_lists():
    with pytest.raises(ConfigError) as info:
        get_entry("depth_pr")
    assert info.value.message == "Unknown model 'depth_pr'."
    assert "did you mean 'depth_pro'" in info.value.hint
    assert "zoedepth_nyu_kitti" in info.value.hint
    assert "depth_pro" in info.value.details["registered"]


def test_register_model_and_duplicates(monkeypatch):
    monkeypatch.setattr(model_selection, "_EXTRA", {})
    entry = register_model(ModelEntry("my_seg", "object_segmentation", "hf", "org/seg", "a segmenter"))
    assert get_entry("my_seg") is entry
    assert "my_seg" in [e.name for e in list_models("object_segmentation")]
    assert "my_seg" not in [e.name for e in list_models("monocular_depth")]
    with pytest.raises(ConfigError, match="already registered"):
        register_model(ModelEntry("my_seg", "object_segmentation", "hf", "org/other"))
    with pytest.raises(ConfigError):
        register_model(ModelEntry("a:b", "monocular_depth", "hf", "org/x"))
    with pytest.raises(ConfigError):
        register_model(ModelEntry("bad_kind", "monocular_depth", "torchhub", "org/x"))
    with pytest.raises(ConfigError):
        register_model(ModelEntry("bad_target", "monocular_depth", "import", "pkg.mod.fn"))


# --- resolve_model ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "selectors",
    [{}, {"model_name": "depth_pro", "hf_checkpoint": "org/x"}, {"model": object(), "model_name": "depth_pro"}],
)
def test_exactly_one_selector(depth_spec, selectors):
    with pytest.raises(ConfigError) as info:
        resolve_model(depth_spec, **selectors)
    assert "exactly one of" in info.value.message
    assert sorted(info.value.details["given_fields"]) == sorted(selectors)


def test_resolve_import_path_numpy_function(user_modules, depth_spec):
    model = resolve_model(depth_spec, model_name="rpx_user_models:predict_depth")
    assert isinstance(model, NumpyFunctionModel) and model.name == "predict_depth"


def test_resolve_import_path_factory_uses_attribute_name(user_modules, depth_spec):
    model = resolve_model(depth_spec, model_name="rpx_user_models:build", device="cuda", model_kwargs={"scale": 2.0})
    assert model.name == "build" and model.device == "cuda" and model.scale == 2.0
    nested = resolve_model(depth_spec, model_name="rpx_user_models:Holder.predict_depth")
    assert nested.name == "predict_depth"


def test_resolve_model_object_keeps_its_name(user_modules, depth_spec):
    ready = load_import_path("rpx_user_models:DepthModel")()
    assert resolve_model(depth_spec, model=ready) is ready and ready.name == "user_depth"
    wrapped = resolve_model(depth_spec, model=lambda rgb: np.ones(rgb.shape[:2]))
    assert isinstance(wrapped, NumpyFunctionModel)


def test_resolve_registry_import_entry(user_modules, depth_spec, monkeypatch):
    monkeypatch.setattr(model_selection, "_EXTRA", {})
    register_model(ModelEntry("user_const", "monocular_depth", "import", "rpx_user_models:predict_depth", "test"))
    model = resolve_model(depth_spec, model_name="user_const")
    assert model.name == "user_const"
    (depth,) = model.predict([_sample(3, 5)])
    assert depth.shape == (3, 5) and float(depth[0, 0]) == 2.0


def test_resolve_registry_hf_entry_calls_task_loader(loader_calls):
    spec = make_spec(hf_loader=RECORDING_LOADER)
    loaded = resolve_model(
        spec, model_name="depth_pro", device="cuda:0", model_kwargs={"dtype": "float16"}, cache_dir="/c", revision="r1"
    )
    assert loaded == "loaded"
    expected = {"device": "cuda:0", "name": "depth_pro", "cache_dir": "/c", "revision": "r1", "dtype": "float16"}
    assert loader_calls == [("apple/DepthPro-hf", expected)]
    resolve_model(spec, hf_checkpoint="org/ckpt")
    assert loader_calls[-1][0] == "org/ckpt" and loader_calls[-1][1]["name"] == "org/ckpt"


def test_registry_entry_of_another_task(depth_spec):
    with pytest.raises(ConfigError) as info:
        resolve_model(make_spec("object_segmentation"), model_name="depth_pro")
    assert "monocular_depth model" in info.value.message


def test_unknown_registry_name(depth_spec):
    with pytest.raises(ConfigError, match="Unknown model 'nope'"):
        resolve_model(depth_spec, model_name="nope")


def test_task_without_hf_fast_path():
    spec = make_spec("relative_camera_pose")
    with pytest.raises(ConfigError) as info:
        resolve_model(spec, hf_checkpoint="org/pose")
    assert info.value.message == "relative_camera_pose has no --hf-checkpoint fast path yet."
    assert "--model package.module:function" in info.value.hint
    assert "fn(rgb" in info.value.hint  # the numpy signature


def test_real_depth_task_when_available(user_modules):
    spec = get_task("monocular_depth")
    model = resolve_model(spec, model_name="rpx_user_models:predict_depth")
    assert model.task == "monocular_depth"
    (prediction,) = model.predict([_sample(4, 6)])
    assert np.asarray(getattr(prediction, "depth_map", prediction)).shape == (4, 6)
    with pytest.raises(ModelError):
        resolve_model(spec, model_name="rpx_user_models:build_wrong_task")


def test_numpy_depth_adapter_resizes_squeezes_and_names_bad_outputs():
    from rpx_tasks.errors import AdapterError
    from rpx_tasks.sample import Sample
    from rpx_tasks.tasks import get_task

    spec = get_task("monocular_depth")
    sample = Sample(id="s1", rgb=np.zeros((6, 8, 3), np.uint8), ground_truth=np.ones((6, 8), np.float32))
    half = wrap_numpy_function(spec, lambda rgb: np.arange(12, dtype=np.float64).reshape(3, 4), "half")
    (depth,) = half.predict([sample])
    assert depth.shape == (6, 8) and depth.dtype == np.float32
    assert depth.min() >= 0 and depth.max() <= 11
    squeezed = wrap_numpy_function(spec, lambda rgb: np.ones((1, 6, 8)), "squeeze").predict([sample])[0]
    assert squeezed.shape == (6, 8)
    with pytest.raises(AdapterError, match=r"Sample 's1'.*2-D array.*\(2, 6, 8\)"):
        wrap_numpy_function(spec, lambda rgb: np.ones((2, 6, 8)), "bad").predict([sample])
    with pytest.raises(AdapterError, match="not an array of numbers"):
        wrap_numpy_function(spec, lambda rgb: {"depth": 1}, "dict").predict([sample])


def test_baseline_alias_resolves_each_tasks_first_weight_free_model():
    from rpx_tasks.model_selection import BASELINE_ALIAS, default_baseline
    from rpx_tasks.tasks import get_task, iter_tasks

    for spec in iter_tasks():
        entry = default_baseline(spec.name)
        assert entry.kind == "import" and entry.task == spec.name
        model = resolve_model(spec, model_name=BASELINE_ALIAS)
        assert model.task == spec.name and model.name == entry.name
    assert default_baseline("monocular_depth").name == "ground_plane_prior"
    with pytest.raises(ConfigError):
        register_model(ModelEntry(BASELINE_ALIAS, "monocular_depth", "import", "a.b:c"))
    assert get_task("monocular_depth")
