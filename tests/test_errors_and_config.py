import pickle
import re
from pathlib import Path

import pytest

import rpx_tasks
from rpx_tasks.config import RunConfig
from rpx_tasks.device import gpu_index, resolve_device
from rpx_tasks.errors import (
    AdapterError,
    ConfigError,
    DatasetError,
    DownloadError,
    ManifestError,
    MetricError,
    ModelError,
    RPXError,
    TransientDownloadError,
)


def test_error_tree_and_string_form():
    assert issubclass(ManifestError, DatasetError) and issubclass(DownloadError, DatasetError)
    assert issubclass(TransientDownloadError, DownloadError)
    assert issubclass(AdapterError, ModelError)
    for cls in (ConfigError, DatasetError, ModelError, MetricError):
        assert issubclass(cls, RPXError)
    error = ConfigError("bad", hint="do this", details={"a": 1})
    assert str(error) == "bad\n  hint: do this"
    assert error.details == {"a": 1}
    assert str(ConfigError("plain")) == "plain"
    assert rpx_tasks.ConfigError is ConfigError


def test_errors_survive_pickling_with_hint():
    error = pickle.loads(pickle.dumps(TransientDownloadError("reset", hint="retry", details={"n": 2})))
    assert isinstance(error, TransientDownloadError)
    assert (error.message, error.hint, error.details) == ("reset", "retry", {"n": 2})


def test_library_never_raises_bare_builtin_errors():
    pattern = re.compile(r"^\s*raise (ValueError|RuntimeError|TypeError|KeyError|AssertionError|Exception)\b")
    offenders = []
    for path in Path(rpx_tasks.__file__).parent.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.match(line):
                offenders.append(f"{path}:{number}: {line.strip()}")
    assert offenders == []


def test_config_needs_exactly_one_model_selector():
    with pytest.raises(ConfigError) as none:
        RunConfig(task="monocular_depth")
    assert none.value.details["given_fields"] == [] and "rpx models" in none.value.hint
    with pytest.raises(ConfigError) as both:
        RunConfig(task="monocular_depth", model_name="a", hf_checkpoint="b")
    assert both.value.details["given_fields"] == ["model_name", "hf_checkpoint"]
    assert "not both" in both.value.hint
    assert both.value.message.startswith("RunConfig requires exactly one of")


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"split": "hardest"}, "Unknown difficulty split"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"batch_size": True}, "batch_size"),
        ({"max_samples": 0}, "max_samples"),
        ({"device": "gpu"}, "Unknown device"),
        ({"manifest": "/nonexistent/manifest.json"}, "Manifest file not found"),
        ({"task": "monocular_dept"}, "Unknown task"),
        ({"repo_id": "  "}, "repo_id is empty"),
    ],
)
def test_config_rejects_bad_values(kwargs, fragment):
    params = {"task": "monocular_depth", "model_name": "constant_depth", **kwargs}
    with pytest.raises(ConfigError, match=fragment) as info:
        RunConfig(**params)
    assert info.value.hint


def test_builtin_sample_is_a_manifest_and_needs_the_task_covered(monkeypatch, tmp_path, no_samples_task):
    monkeypatch.setenv("RPX_CACHE_DIR", str(tmp_path))
    config = RunConfig(task="object_detection", model_name="baseline", manifest="builtin:sample")
    assert config.manifest == "builtin:sample" and list(tmp_path.iterdir()) == []  # nothing written yet
    with pytest.raises(ConfigError, match="does not cover 'no_samples'") as info:
        RunConfig(task=no_samples_task, model_name="constant_depth", manifest="builtin:sample")
    assert info.value.hint


def test_unknown_task_suggests_the_close_name():
    with pytest.raises(ConfigError) as info:
        RunConfig(task="monocular_dept", model_name="x")
    assert "did you mean 'monocular_depth'" in info.value.hint


def test_config_defaults_and_output_path(monkeypatch):
    monkeypatch.setenv("RPX_HF_REPO", "acme/mirror")
    config = RunConfig(task="monocular_depth", hf_checkpoint="org/some-model", split="easy")
    assert config.effective_repo_id == "acme/mirror"
    assert config.output_path == Path("rpx_results/org__some-model/easy")
    monkeypatch.delenv("RPX_HF_REPO")
    assert config.effective_repo_id == "IRVLUTD/RPX"
    assert config.effective_revision == "51432e5d48895bbafb490ae7c5e34e0f6b7da7d6"


def test_device_fallback_warns_once_and_require_cuda_refuses(monkeypatch, caplog):
    import torch

    # CUDA cannot run on this machine; pin availability so the test means the same everywhere.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level("WARNING", logger="rpx_tasks.device"):
        assert resolve_device("cuda") == "cpu"
        assert resolve_device("cuda:1") == "cpu"
    assert sum("falling back" in r.message for r in caplog.records) == 2
    with pytest.raises(ConfigError, match="GPU is required"):
        resolve_device("cuda", require_cuda=True)
    with pytest.raises(ConfigError, match="require_cuda"):
        resolve_device("cpu", require_cuda=True)
    assert resolve_device("cpu") == "cpu"


def test_cuda_index_beyond_visible_gpus_is_a_config_error(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_device("cuda:2")
    assert gpu_index("cuda") == 0 and gpu_index("cuda:3") == 3 and gpu_index("cpu") is None
