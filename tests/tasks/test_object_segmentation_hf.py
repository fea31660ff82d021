"""object_segmentation's HF fast path on a tiny random-weight Mask2Former seeded into an offline HF cache:
loading, instance post-processing, result conversion, refusals, and a CLI run on the sample data."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from rpx_tasks.cli import main
from rpx_tasks.errors import AdapterError, ModelError
from rpx_tasks.manifest import manifest_relpath
from rpx_tasks.sample import Sample
from rpx_tasks.tasks import get_task

SPEC = get_task("object_segmentation")

HF_REPO = "facebook/mask2former-swin-tiny-coco-instance"


@pytest.fixture(scope="module")
def seg_hf_cache(tmp_path_factory):
    from tests.support.hf_seed_segmentation import seed_tiny_mask2former

    cache = tmp_path_factory.mktemp("hf-seg-cache")
    seed_tiny_mask2former(cache, HF_REPO)
    return cache


@pytest.fixture(scope="module")
def tiny_segmenter(seg_hf_cache):
    from rpx_tasks.models.hf_segmentation import load_hf_segmentation_model

    model = load_hf_segmentation_model(HF_REPO, cache_dir=str(seg_hf_cache))
    model.setup()
    return model


def _noise_frame(seed: int, h: int, w: int) -> Sample:
    rgb = np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    return Sample(id=f"f{seed}", rgb=rgb, ground_truth=None)


def test_hf_loads_offline_by_checkpoint_and_registry_name(seg_hf_cache, offline):
    from rpx_tasks.contracts.model import Model
    from rpx_tasks.model_selection import resolve_model
    from rpx_tasks.models.hf_segmentation import HFSegmentationModel
    from rpx_tasks.models.torch_module import count_parameters_m

    model = resolve_model(SPEC, hf_checkpoint=HF_REPO, device="cpu", cache_dir=str(seg_hf_cache))
    assert isinstance(model, HFSegmentationModel) and isinstance(model, Model)
    assert model.name == HF_REPO and model.task == "object_segmentation" and count_parameters_m(model) > 0
    assert type(model.processor).__name__ == "Mask2FormerImageProcessorPil"  # no torchvision needed
    named = resolve_model(
        SPEC, model_name="mask2former_swin_tiny_coco_instance", device="cpu", cache_dir=str(seg_hf_cache)
    )
    assert named.name == "mask2former_swin_tiny_coco_instance"


def test_hf_uses_instance_post_processing_and_numbers_segments_from_one(tiny_segmenter):
    assert tiny_segmenter._post_process.__name__ == "post_process_instance_segmentation"
    assert tiny_segmenter._post_kwargs == {"threshold": 0.5, "return_coco_annotation": False}
    batch = [_noise_frame(0, 48, 64), _noise_frame(1, 40, 30), _noise_frame(2, 48, 64)]
    masks = tiny_segmenter.predict(batch)
    assert len(masks) == 3
    for s, mask in zip(batch, masks):
        assert mask.dtype == np.int32 and mask.shape == s.rgb.shape[:2] and mask.min() >= 0
    for s, mask in zip(batch[1:], masks[1:]):  # one of each size
        (alone,) = tiny_segmenter.predict([s])
        np.testing.assert_array_equal(mask, alone)  # batching changes nothing
    assert any(mask.max() >= 1 for mask in masks)  # segments clear the threshold
    assert not np.array_equal(masks[0], masks[2])


def test_hf_result_conversion_to_instance_maps():
    import torch

    from rpx_tasks.models.hf_segmentation import instance_map

    # Mask2Former instance style: -1 background, ids from 0 -> 0 background, ids from 1 in listed order
    seg = torch.tensor([[-1.0, 0.0], [3.0, 0.0]])
    out = instance_map({"segmentation": seg, "segments_info": [{"id": 3}, {"id": 0}]}, 2, 2)
    np.testing.assert_array_equal(out, [[0, 2], [1, 2]])
    # panoptic style: 0 unassigned, ids from 1; an id without segment info is background
    out = instance_map(
        {"segmentation": torch.tensor([[0, 1], [2, 5]], dtype=torch.int32), "segments_info": [{"id": 1}, {"id": 2}]},
        2,
        2,
    )
    np.testing.assert_array_equal(out, [[0, 1], [2, 0]])
    np.testing.assert_array_equal(instance_map({"segmentation": None, "segments_info": []}, 2, 3), np.zeros((2, 3)))
    # semantic: the class map itself, resized nearest to the frame
    np.testing.assert_array_equal(instance_map(torch.tensor([[4, 9]]), 2, 4), [[4, 4, 9, 9], [4, 4, 9, 9]])
    with pytest.raises(AdapterError, match="expected \\(H, W\\)"):
        instance_map({"segmentation": torch.zeros(2, 3, 3), "segments_info": []}, 3, 3)


def test_hf_refuses_remote_code_other_models_and_names_missing_libraries(seg_hf_cache, tmp_path, offline):
    from transformers import BertConfig, OneFormerConfig

    from rpx_tasks.errors import ConfigError
    from rpx_tasks.models.hf_loading import load_error
    from rpx_tasks.models.hf_segmentation import load_hf_segmentation_model

    with pytest.raises(ConfigError, match="trust_remote_code"):
        load_hf_segmentation_model(HF_REPO, cache_dir=str(seg_hf_cache), trust_remote_code=True)
    with pytest.raises(ConfigError, match="checkpoint id is required"):
        load_hf_segmentation_model("  ")
    BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8).save_pretrained(
        tmp_path / "bert"
    )
    with pytest.raises(ModelError, match="'bert' model, not a universal-segmentation model") as info:
        load_hf_segmentation_model(str(tmp_path / "bert"))
    assert "mask2former" in info.value.hint
    OneFormerConfig().save_pretrained(tmp_path / "oneformer")
    with pytest.raises(ModelError, match="does not run: OneFormer"):
        load_hf_segmentation_model(str(tmp_path / "oneformer"))
    with pytest.raises(ModelError) as info:
        load_hf_segmentation_model("nobody/not-a-segmenter", cache_dir=str(seg_hf_cache))
    assert "HF_HUB_OFFLINE=1" in info.value.hint
    missing = ImportError("Mask2FormerLoss requires the scipy library but it was not found in your environment.")
    assert "pip install scipy" in load_error(HF_REPO, "model weights", missing).hint


def test_hf_checkpoint_cli_run_on_sample_data(seg_hf_cache, sample_dataset, tmp_path, capsys, offline):
    manifest = sample_dataset / manifest_relpath("object_segmentation", "hard")
    code = main(
        [
            "bench",
            "object_segmentation",
            "--hf-checkpoint",
            HF_REPO,
            "--cache-dir",
            str(seg_hf_cache),
            "--manifest",
            str(manifest),
            "--max-samples",
            "6",
            "--device",
            "cpu",
            "--output-dir",
            str(tmp_path),
            "--plain",
            "--sgc",
        ]
    )
    assert code == 0, capsys.readouterr().err
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["num_samples"] == 6 and result["model"] == HF_REPO
    assert result["compute"]["params_m"] > 0 and result["readiness"]["ts"]["pairs"] >= 4
    assert result["readiness"]["sgc"]["samples"] == 6
    rows = pq.read_table(tmp_path / "per_sample_metrics.parquet").to_pylist()
    assert all(0.0 <= row["miou"] <= 1.0 for row in rows)
