"""The model is checked when the run is validated: before any download, weight or GPU slot.

Each rule of ``model_selection.check_model_selection`` (registry names, import paths and their
signatures, the HF fast path, model kwargs), reached through ``RunConfig`` as ``rpx bench``,
flow ``rpx-bench`` and ``bench.run_bench`` reach it. No weights, no network.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from rpx_tasks import model_selection
from rpx_tasks.bench import validate_config
from rpx_tasks.config import RunConfig
from rpx_tasks.contracts.spec import ModelEntry
from rpx_tasks.errors import ConfigError, ModelError
from rpx_tasks.model_selection import check_model_selection, list_models, register_model
from rpx_tasks.models.hf_depth import load_hf_depth_model
from rpx_tasks.models.hf_loading import FROM_PRETRAINED_KWARGS
from rpx_tasks.tasks import get_task, iter_tasks

MODULE = "rpx_checked_user_models"
MODULE_SOURCE = """
    import numpy as np

    def one_frame(rgb):
        return np.ones(rgb.shape[:2], np.float32)

    def two_frames(rgb_a, rgb_b):
        return None

    def three_inputs(rgb, second, third):
        return None

    def frame_and_keyword_vocabulary(rgb, *, vocabulary):
        return None

    def frame_then_options(rgb, threshold=0.5):
        return None

    class DepthModel:
        task = "monocular_depth"
        name = "user_depth"
        torch_module = None

        def __init__(self, device="cpu", scale=1.0):
            self.device, self.scale = device, scale

        def setup(self):
            pass

        def predict(self, batch):
            return [np.full(s.rgb.shape[:2], self.scale, np.float32) for s in batch]

    def make(device="cpu", scale=1.0):
        return DepthModel(device, scale)

    def make_anything(**options):
        return DepthModel()

    READY = DepthModel()
    NOT_CALLABLE = 42
"""
TASKS = [spec.name for spec in iter_tasks()]
FUNCTION_OF_ARITY = {1: "one_frame", 2: "two_frames", 3: "three_inputs"}


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """``rpx_checked_user_models`` (numpy functions of 1-3 inputs, a Model class, factories) on sys.path."""
    (tmp_path / f"{MODULE}.py").write_text(textwrap.dedent(MODULE_SOURCE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield f"{MODULE}:"
    sys.modules.pop(MODULE, None)


@pytest.fixture
def extra_registry(monkeypatch):
    """Entries registered during the test are forgotten afterwards."""
    monkeypatch.setattr(model_selection, "_EXTRA", {})


def _config(task: str = "monocular_depth", **selector) -> RunConfig:
    return RunConfig(task=task, repo_id="org/never-contacted", device="cpu", **selector)


def _config_error(task: str = "monocular_depth", **selector) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        _config(task, **selector)
    assert info.value.hint
    return info.value


# --- registry names ---------------------------------------------------------------------------


def test_unknown_name_suggests_the_close_model_of_the_task():
    error = _config_error(model_name="constant_dept")
    assert error.message == "Unknown model 'constant_dept'."
    assert error.hint.startswith("did you mean 'constant_depth'?")


def test_unknown_name_with_nothing_close_offers_the_tasks_models():
    error = _config_error(model_name="no_such_model")
    assert error.hint.startswith("did you mean one of the monocular_depth models: ")
    assert "ground_plane_prior" in error.hint and "yolos_small" not in error.hint  # only this task's


def test_registry_entry_of_another_task():
    error = _config_error(model_name="yolos_small")
    assert "is a object_detection model, but this run is monocular_depth" in error.message


def test_baseline_alias_is_the_tasks_first_import_entry():
    assert _config(model_name="baseline").model_name == "ground_plane_prior"


@pytest.mark.parametrize("entry", list_models(), ids=lambda entry: entry.name)
def test_every_registered_model_passes_its_own_tasks_check(entry):
    check_model_selection(get_task(entry.task), model_name=entry.name)


# --- import paths ------------------------------------------------------------------------------


def test_import_path_module_missing(user_module):
    error = _config_error(model_name="rpx_no_such_user_module:fn")
    assert error.message.startswith("Cannot import module 'rpx_no_such_user_module'") and "PYTHONPATH" in error.hint


def test_import_path_attribute_missing_suggests_the_close_name(user_module):
    error = _config_error(model_name=user_module + "one_fram")
    assert "has no attribute 'one_fram'" in error.message
    assert error.hint.startswith("did you mean 'one_frame'?")


def test_import_path_attribute_neither_callable_nor_a_model(user_module):
    assert "not a callable" in _config_error(model_name=user_module + "NOT_CALLABLE").message


@pytest.mark.parametrize("task", TASKS)
def test_numpy_function_must_bind_the_tasks_inputs(task, user_module):
    spec = get_task(task)
    arity = len(spec.numpy_inputs)
    with_optional = arity + len(spec.numpy_optional_inputs)
    legacy = len(spec.numpy_legacy_inputs or ())  # novel_view_synthesis also takes fn(rgb, target_pose)
    _config(task, model_name=user_module + FUNCTION_OF_ARITY[arity])
    _config(task, model_name=user_module + "frame_then_options")  # fn(rgb, threshold=0.5) binds 1 or 2 inputs
    for wrong in [name for count, name in FUNCTION_OF_ARITY.items() if count not in (arity, with_optional, legacy)]:
        error = _config_error(task, model_name=user_module + wrong)
        assert f"Numpy function {wrong}(" in error.message and "cannot be called as" in error.message
        assert f"fn({', '.join(spec.numpy_inputs)})" in error.message
        assert spec.numpy_signature in error.hint


def test_open_vocabulary_function_may_take_the_vocabulary_or_not(user_module):
    assert get_task("open_vocab_detection").numpy_optional_inputs == ("vocabulary",)
    for name in ("one_frame", "two_frames", "frame_and_keyword_vocabulary"):
        _config("open_vocab_detection", model_name=user_module + name)
    error = _config_error("open_vocab_detection", model_name=user_module + "three_inputs")
    assert error.message == (
        "Numpy function three_inputs(rgb, second, third) cannot be called as open_vocab_detection calls it: "
        "fn(rgb) or fn(rgb, vocabulary) or fn(rgb, vocabulary=...)."
    )


def test_keyword_only_input_of_a_task_without_optional_inputs_is_refused(user_module):
    error = _config_error("object_detection", model_name=user_module + "frame_and_keyword_vocabulary")
    assert "fn(rgb)." in error.message


def test_numpy_function_takes_no_model_kwargs(user_module):
    error = _config_error(model_name=user_module + "one_frame", model_kwargs={"scale": 2})
    assert "is a numpy function" in error.message and "functools.partial" in error.hint


def test_library_objects_are_checked_like_import_paths():
    with pytest.raises(ConfigError, match="cannot be called as relative_camera_pose calls it"):
        _config("relative_camera_pose", model=lambda rgb: None)
    _config("relative_camera_pose", model=lambda rgb_a, rgb_b: None)


# --- factories and built models ------------------------------------------------------------------


def test_factory_kwargs_must_be_in_its_signature(user_module):
    _config(model_name=user_module + "make", model_kwargs={"scale": 2.0})
    _config(model_name=user_module + "DepthModel", model_kwargs={"scale": 2.0})
    error = _config_error(model_name=user_module + "make", model_kwargs={"colour": "red", "scale": 2.0})
    assert error.message == "Model factory make does not accept the model kwargs ['colour']."
    assert error.hint == "it accepts: ['scale']"


def test_factory_with_var_keywords_accepts_any_kwarg(user_module):
    _config(model_name=user_module + "make_anything", model_kwargs={"whatever": 1})


def test_built_model_takes_no_kwargs_and_must_be_of_the_task(user_module):
    error = _config_error(model_name=user_module + "READY", model_kwargs={"scale": 2.0})
    assert "already built model" in error.message
    with pytest.raises(ModelError, match="is a monocular_depth model, but this run is object_segmentation"):
        _config("object_segmentation", model_name=user_module + "READY")


# --- the HF fast path ------------------------------------------------------------------------------


@pytest.mark.parametrize("task", [spec.name for spec in iter_tasks() if spec.hf_loader is None])
def test_hf_checkpoint_on_a_task_without_a_fast_path(task):
    error = _config_error(task, hf_checkpoint="org/x")
    assert error.message == f"{task} has no --hf-checkpoint fast path yet."
    assert get_task(task).numpy_signature in error.hint


def test_hf_registry_entry_on_a_task_without_a_fast_path(extra_registry):
    register_model(ModelEntry("pose_net_hf", "relative_camera_pose", "hf", "org/pose-net", "a pose net"))
    error = _config_error("relative_camera_pose", model_name="pose_net_hf")
    assert "no --hf-checkpoint fast path" in error.message
    assert get_task("relative_camera_pose").numpy_signature in error.hint


@pytest.mark.parametrize("checkpoint", ["bad id!", "org/a/b", "-org/x"])
def test_malformed_checkpoint_id(checkpoint):
    error = _config_error(hf_checkpoint=checkpoint)
    assert "neither an HF Hub checkpoint id nor an existing local folder" in error.message


def test_existing_local_folder_is_a_checkpoint(tmp_path):
    folder = tmp_path / "my checkpoint!"
    folder.mkdir()
    _config(hf_checkpoint=str(folder))


@pytest.mark.parametrize(
    "task, accepted",
    [
        ("monocular_depth", {"dtype": "bf16", "processor_kwargs": {}}),
        ("object_detection", {"threshold": 0.3, "max_detections": 10}),
        ("open_vocab_detection", {"threshold": 0.2, "text_threshold": 0.25}),
        ("visual_grounding", {"text_threshold": 0.25, "dtype": "float16"}),
        ("object_segmentation", {"threshold": 0.4}),
        ("keypoint_matching", {"threshold": 0.1}),
    ],
)
def test_hf_loader_accepts_its_keywords_and_the_from_pretrained_options(task, accepted):
    _config(task, hf_checkpoint="org/x", model_kwargs=accepted)
    _config(task, hf_checkpoint="org/x", model_kwargs=dict.fromkeys(FROM_PRETRAINED_KWARGS - {"dtype"}, True))
    error = _config_error(task, hf_checkpoint="org/x", model_kwargs={"colour": "red"})
    assert error.message == (
        f"The {task} HF fast path (checkpoint 'org/x') does not accept the model kwargs ['colour']."
    )
    assert "attn_implementation" in error.hint


def test_hf_loader_kwargs_of_a_registry_entry():
    error = _config_error(model_name="depth_pro", model_kwargs={"threshold": 0.3})
    assert "(checkpoint 'apple/DepthPro-hf') does not accept the model kwargs ['threshold']" in error.message


@pytest.mark.parametrize("set_by_the_run", ["device", "cache_dir", "revision", "name"])
def test_hf_keywords_the_run_sets_are_not_model_kwargs(set_by_the_run):
    error = _config_error(hf_checkpoint="org/x", model_kwargs={set_by_the_run: "x"})
    assert f"[{set_by_the_run!r}]" in error.message and "set by the run" in error.hint


def test_hf_remote_code_and_unknown_dtype_are_refused():
    assert (
        "trust_remote_code is not allowed"
        in _config_error(hf_checkpoint="org/x", model_kwargs={"trust_remote_code": True}).message
    )
    assert _config_error(hf_checkpoint="org/x", model_kwargs={"dtype": "int8"}).message == (
        "Unknown dtype 'int8' for an HF model."
    )


def test_the_loader_applies_the_same_rule_when_called_directly():
    with pytest.raises(ConfigError, match=r"does not accept the model kwargs \['colour'\]"):
        load_hf_depth_model("org/x", colour="red")


# --- where the check runs ---------------------------------------------------------------------------


def test_validate_config_of_the_flow_and_the_cli_runs_the_check():
    with pytest.raises(ConfigError, match="Unknown model 'no_such_model'"):
        validate_config({"task": "monocular_depth", "model_name": "no_such_model", "split": "hard"})


def test_the_checks_import_neither_torch_nor_transformers(user_module, tmp_path):
    script = textwrap.dedent(
        f"""
        import sys
        from rpx_tasks.config import RunConfig
        from rpx_tasks.errors import ConfigError
        RunConfig(task="monocular_depth", model_name="depth_pro", model_kwargs={{"dtype": "float16"}})
        RunConfig(task="open_vocab_detection", hf_checkpoint="org/x", model_kwargs={{"threshold": 0.2}})
        RunConfig(task="monocular_depth", model_name="{MODULE}:make", model_kwargs={{"scale": 2.0}})
        try:
            RunConfig(task="keypoint_matching", model_name="{MODULE}:one_frame")
        except ConfigError:
            pass
        print(sorted(name for name in ("torch", "transformers") if name in sys.modules))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
