"""The HF depth fast path, on a tiny random-weight Depth Anything seeded into an offline HF cache."""

from __future__ import annotations

import copy
import time

import numpy as np
import pytest

from rpx_tasks.contracts.model import Model
from rpx_tasks.errors import ConfigError, ModelError
from rpx_tasks.model_selection import resolve_model
from rpx_tasks.models.hf_depth import HFDepthModel, load_hf_depth_model
from rpx_tasks.models.torch_module import count_parameters_m
from rpx_tasks.sample import Sample
from rpx_tasks.tasks import get_task
from tests.support.hf_seed import DEFAULT_REPO_ID, seed_tiny_depth_anything
from tests.support.specs import make_spec


@pytest.fixture(scope="module")
def hf_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("hf-cache")
    seed_tiny_depth_anything(cache, DEFAULT_REPO_ID)
    return cache


@pytest.fixture
def depth_spec():
    return make_spec(hf_loader="rpx_tasks.models.hf_depth:load_hf_depth_model")


def _frame(seed: int, h: int, w: int) -> Sample:
    rgb = np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    return Sample(id=f"f{seed}", rgb=rgb, ground_truth=None)


@pytest.fixture(scope="module")
def tiny_model(hf_cache):
    model = load_hf_depth_model(DEFAULT_REPO_ID, device="cpu", cache_dir=str(hf_cache))
    model.setup()
    return model


def test_loads_offline_by_checkpoint(offline, hf_cache, depth_spec):
    model = resolve_model(depth_spec, hf_checkpoint=DEFAULT_REPO_ID, cache_dir=str(hf_cache))
    assert isinstance(model, HFDepthModel) and isinstance(model, Model)
    assert model.name == DEFAULT_REPO_ID and model.task == "monocular_depth" and model.device == "cpu"
    assert count_parameters_m(model) > 0
    # The run keeps the checkpoint's SDPA attention (faster); the FLOP pass's deep copy runs it eagerly, so
    # FlopCounterMode sees its matmuls on CPU too.
    assert model.torch_module.config.backbone_config._attn_implementation == "sdpa"
    assert copy.deepcopy(model).torch_module.config.backbone_config._attn_implementation == "eager"


def test_loads_offline_by_registry_name(offline, hf_cache, depth_spec):
    model = resolve_model(depth_spec, model_name="depth_anything_v2_metric_indoor_small", cache_dir=str(hf_cache))
    assert isinstance(model, HFDepthModel) and model.name == "depth_anything_v2_metric_indoor_small"


def test_mixed_size_batch_matches_per_sample(tiny_model):
    batch = [_frame(0, 48, 64), _frame(1, 40, 30), _frame(2, 48, 64)]
    depths = tiny_model.predict(batch)
    assert len(depths) == 3
    for sample, depth in zip(batch, depths):
        assert depth.shape == sample.rgb.shape[:2]
        assert depth.dtype == np.float32 and np.isfinite(depth).all()
        assert (depth >= 0).all() and (depth <= 20.0 + 1e-3).all()  # metric head, max_depth 20 m
        (alone,) = tiny_model.predict([sample])
        np.testing.assert_allclose(depth, alone, rtol=1e-4, atol=1e-4)
    assert not np.allclose(depths[0], depths[2])  # different frames, different depth


def test_flops_are_counted_including_attention(tiny_model):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        copy.deepcopy(tiny_model).predict([_frame(3, 28, 28)])  # as the runner's FLOP pass
    counts = counter.get_flop_counts()["Global"]
    assert counter.get_total_flops() > 0
    assert torch.ops.aten.bmm in counts  # the eager attention's q @ k^T and attn @ v


def test_processor_works_without_torchvision(tiny_model):
    from transformers.utils import is_torchvision_available

    if not is_torchvision_available():
        assert type(tiny_model.processor).__name__ == "DPTImageProcessorPil"


def test_unknown_checkpoint_offline_fails_fast(offline, hf_cache, depth_spec):
    start = time.monotonic()
    with pytest.raises(ModelError) as info:
        resolve_model(depth_spec, hf_checkpoint="nobody/not-a-real-depth-model", cache_dir=str(hf_cache))
    assert time.monotonic() - start < 5.0
    assert "nobody/not-a-real-depth-model" in info.value.message
    assert "HF_HUB_OFFLINE=1" in info.value.hint and "cache" in info.value.hint


def test_not_a_depth_model(offline, tmp_path):
    from transformers import BertConfig

    BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8).save_pretrained(tmp_path)
    with pytest.raises(ModelError) as info:
        load_hf_depth_model(str(tmp_path))
    assert "'bert' model, not a depth-estimation model" in info.value.message
    assert "depth_anything" in info.value.hint


def test_trust_remote_code_is_never_passed(offline, hf_cache, monkeypatch):
    import transformers

    seen = []
    for cls_name in ("AutoConfig", "AutoImageProcessor", "AutoModelForDepthEstimation"):
        cls = getattr(transformers, cls_name)
        original = cls.from_pretrained

        def spy(*args, _original=original, **kwargs):
            seen.append(kwargs.get("trust_remote_code"))
            return _original(*args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", spy)
    load_hf_depth_model(DEFAULT_REPO_ID, cache_dir=str(hf_cache))
    assert seen == [False, False, False]
    with pytest.raises(ConfigError, match="trust_remote_code"):
        load_hf_depth_model(DEFAULT_REPO_ID, cache_dir=str(hf_cache), trust_remote_code=True)


def test_dtype_and_name(offline, hf_cache):
    import torch

    model = load_hf_depth_model(DEFAULT_REPO_ID, cache_dir=str(hf_cache), dtype="bfloat16", name="tiny")
    assert model.name == "tiny" and next(model.torch_module.parameters()).dtype == torch.bfloat16
    (depth,) = model.predict([_frame(4, 30, 40)])
    assert depth.dtype == np.float32 and depth.shape == (30, 40) and np.isfinite(depth).all()
    with pytest.raises(ConfigError, match="Unknown dtype"):
        load_hf_depth_model(DEFAULT_REPO_ID, cache_dir=str(hf_cache), dtype="int8")


def test_local_folder_checkpoint(hf_cache):
    snapshot = next((hf_cache / f"models--{DEFAULT_REPO_ID.replace('/', '--')}" / "snapshots").iterdir())
    model = load_hf_depth_model(str(snapshot))
    assert model.name == str(snapshot)
    assert model.predict([_frame(5, 20, 20)])[0].shape == (20, 20)


def test_real_depth_task_uses_this_fast_path(offline, hf_cache):
    spec = get_task("monocular_depth")
    model = resolve_model(spec, model_name="depth_anything_v2_metric_indoor_small", cache_dir=str(hf_cache))
    sample = _frame(6, 24, 32)
    (depth,) = model.predict([sample])
    validated = spec.validate_prediction(depth, sample)
    assert np.asarray(getattr(validated, "depth_map", validated)).shape == (24, 32)


def test_one_forward_per_frame_size(tiny_model):
    calls = []
    handle = tiny_model.torch_module.register_forward_hook(lambda module, args, out: calls.append(1))
    try:
        tiny_model.predict([_frame(7, 30, 40), _frame(8, 30, 40), _frame(9, 30, 40)])
        assert len(calls) == 1
        tiny_model.predict([_frame(7, 30, 40), _frame(8, 20, 40), _frame(9, 30, 40)])
        assert len(calls) == 3
    finally:
        handle.remove()


class _PaddingProcessor:
    """Stands in for ZoeDepth's processor, whose post-processing wants the source sizes."""

    def __init__(self):
        self.post_kwargs = None

    def __call__(self, images, return_tensors):
        import torch

        return {"pixel_values": torch.zeros(len(images), 3, 8, 8)}

    def post_process_depth_estimation(self, outputs, source_sizes=None, target_sizes=None):
        import torch

        self.post_kwargs = {"source_sizes": source_sizes, "target_sizes": target_sizes}
        return [{"predicted_depth": torch.full(size, 1.5)} for size in target_sizes]


def test_source_sizes_passed_when_processor_accepts_them():
    import torch
    from transformers.modeling_outputs import DepthEstimatorOutput

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(1))

        def forward(self, pixel_values):
            return DepthEstimatorOutput(predicted_depth=pixel_values[:, 0] * self.scale)

    processor = _PaddingProcessor()
    model = HFDepthModel(Net(), processor, name="fake")
    model.setup()
    (depth,) = model.predict([_frame(10, 12, 16)])
    assert processor.post_kwargs == {"source_sizes": [(12, 16)], "target_sizes": [(12, 16)]}
    assert depth.shape == (12, 16) and depth.dtype == np.float32 and float(depth[0, 0]) == 1.5


def test_processor_needing_torchvision_gets_an_install_hint(offline, hf_cache, monkeypatch):
    import transformers

    def missing_backend(*args, **kwargs):
        raise ValueError(
            "Could not load any image processor class for apple/DepthPro-hf. None of these classes could be "
            "imported. Missing optional dependencies: torchvision."
        )

    monkeypatch.setattr(transformers.AutoImageProcessor, "from_pretrained", missing_backend)
    with pytest.raises(ModelError) as info:
        load_hf_depth_model(DEFAULT_REPO_ID, cache_dir=str(hf_cache))
    assert "image processor" in info.value.message
    assert "pip install torchvision" in info.value.hint


@pytest.mark.parametrize("checkpoint", ["not a repo/id", "/no/such/folder"])
def test_malformed_checkpoint_id(offline, checkpoint):
    with pytest.raises(ConfigError) as info:
        load_hf_depth_model(checkpoint)
    assert "neither an HF Hub checkpoint id nor an existing local folder" in info.value.message
