"""The device-side data path of the HF fast paths (models.hf_device_preprocess, models.hf_execution), on the CPU.

The same code runs with device="cpu": frames staged in one host tensor and copied with non_blocking, the
processors' resize (Pillow's, reproduced exactly), rescale, normalise and pad as torch ops, post-processing
on the device. Checked against the real transformers processors of the three fast paths (depth,
segmentation, detection) at their real sizes on a 640x480 frame, and through the tiny seeded checkpoints.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from PIL import Image

from rpx_tasks.errors import ConfigError
from rpx_tasks.models.hf_device_preprocess import MAX_ABS_DIFF, DevicePreprocessor, probe_frame, resize_like_pil
from rpx_tasks.models.hf_execution import ExecutionOptions, check_precision
from rpx_tasks.sample import Sample
from tests.support.hf_seed import DEFAULT_REPO_ID, seed_tiny_depth_anything

IMAGENET = {"image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}


def _processors():
    from transformers import (
        DetrImageProcessorPil,
        DPTImageProcessorPil,
        Mask2FormerImageProcessorPil,
        YolosImageProcessorPil,
    )

    return {
        # Depth-Anything-V2's processor (518 px, aspect kept, multiple of 14, bicubic)
        "depth": DPTImageProcessorPil(
            size={"height": 518, "width": 518}, keep_aspect_ratio=True, ensure_multiple_of=14, resample=3, **IMAGENET
        ),
        # Mask2Former's (short side 800, padded to a multiple of 32, pixel_mask, bilinear)
        "segmentation": Mask2FormerImageProcessorPil(
            size={"shortest_edge": 800, "longest_edge": 1333}, size_divisor=32, ignore_index=255, **IMAGENET
        ),
        # YOLOS's and DETR's (short side 800, padded, pixel_mask)
        "detection": YolosImageProcessorPil(size={"shortest_edge": 800, "longest_edge": 1333}),
        "detection-detr": DetrImageProcessorPil(),
    }


@pytest.mark.parametrize("kind", ["depth", "segmentation", "detection", "detection-detr"])
def test_device_inputs_match_the_processor(kind):
    processor = _processors()[kind]
    frames = [probe_frame(480, 640, seed=seed) for seed in (1, 2)]
    device_path = DevicePreprocessor(processor, "cpu")
    inputs = device_path(frames)
    expected = processor(images=frames, return_tensors="pt")
    assert device_path.active and device_path.record()["data_path"] == "device"
    assert set(inputs) == set(expected) & {"pixel_values", "pixel_mask"}
    for key, value in inputs.items():
        assert value.shape == expected[key].shape
        diff = float((value.float() - expected[key].float()).abs().max())
        assert diff <= MAX_ABS_DIFF, (kind, key, diff)
    # Pillow's resize is reproduced exactly, so only float rounding is left.
    assert float((inputs["pixel_values"] - expected["pixel_values"]).abs().max()) < 1e-5
    assert device_path.record()["preprocess_max_abs_diff"] < 1e-5


@pytest.mark.parametrize("resample", [0, 1, 2, 3, 4, 5])
def test_resize_is_pillows_bit_for_bit(resample):
    import torch

    frame = probe_frame(61, 83, seed=resample)
    for width, height in ((131, 97), (40, 29), (83, 30)):
        expected = np.asarray(Image.fromarray(frame).resize((width, height), resample))
        got = resize_like_pil(torch.from_numpy(frame).permute(2, 0, 1)[None], height, width, resample)
        np.testing.assert_array_equal(got[0].permute(1, 2, 0).numpy(), expected)


def test_a_processor_it_cannot_follow_falls_back_to_the_host():
    from transformers import OwlViTImageProcessorPil

    processor = OwlViTImageProcessorPil(
        size={"height": 64, "width": 64}, crop_size={"height": 48, "width": 48}, do_center_crop=True
    )
    device_path = DevicePreprocessor(processor, "cpu")
    assert device_path([probe_frame(40, 50)]) is None
    record = device_path.record()
    assert record["data_path"] == "processor" and "crops" in record["data_path_reason"]


def test_a_probe_that_differs_switches_to_the_processor_for_good():
    processor = _processors()["depth"]
    device_path = DevicePreprocessor(processor, "cpu")
    processor.image_std = [0.5, 0.5, 0.5]  # changed behind the device path's back: the probe must notice
    device_path._std = device_path._std * 0 + 0.229
    assert device_path([probe_frame(48, 64)]) is None
    assert device_path.record()["data_path"] == "processor"
    assert "differs from the processor" in device_path.record()["data_path_reason"]


@pytest.fixture(scope="module")
def depth_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("hf-cache")
    seed_tiny_depth_anything(cache, DEFAULT_REPO_ID)
    return cache


def _depth_model(cache, **kwargs):
    from rpx_tasks.models.hf_depth import load_hf_depth_model

    model = load_hf_depth_model(DEFAULT_REPO_ID, device="cpu", cache_dir=str(cache), **kwargs)
    model.setup()
    return model


def _batch(count=3, h=48, w=64):
    return [Sample(id=f"f{i}", rgb=probe_frame(h, w, seed=10 + i), ground_truth=None) for i in range(count)]


def test_depth_model_on_the_device_path_predicts_as_on_the_processor_path(offline, depth_cache):
    host = _depth_model(depth_cache, device_preprocess=False)
    device = _depth_model(depth_cache, device_preprocess=True)
    batch = _batch()
    for a, b in zip(host.predict(batch), device.predict(batch)):
        assert a.shape == (48, 64) and a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    record = device.execution.record()
    assert record["data_path"] == "device" and record["preprocess_max_abs_diff"] < 1e-5
    assert host.execution.record()["data_path"] == "processor"
    # Automatic on the CPU: the processor (Pillow is faster there); the same inputs either way.
    assert _depth_model(depth_cache).execution.record()["data_path"] == "processor"


def test_bf16_autocast_channels_last_and_records(offline, depth_cache):
    reference = _depth_model(depth_cache, device_preprocess=True)
    model = _depth_model(
        depth_cache, device_preprocess=True, channels_last=True, execution=ExecutionOptions(precision="bf16")
    )
    batch = _batch(2)
    expected, got = reference.predict(batch), model.predict(batch)
    for a, b in zip(expected, got):
        assert b.dtype == np.float32 and np.isfinite(b).all()
        assert np.abs(a - b).max() < 0.05 * max(1.0, float(np.abs(a).max()))  # bf16: close, not equal
    assert model.execution.record() == {
        "precision": "bf16",
        "compile": False,
        "channels_last": True,
        "data_path": "device",
        "preprocess_max_abs_diff": model.execution.record()["preprocess_max_abs_diff"],
    }


def test_compile_runs_the_compiled_module_and_the_flop_copy_does_not(offline, depth_cache, monkeypatch):
    monkeypatch.setenv("RPX_COMPILE_BACKEND", "eager")  # dynamo's tracing without a C++ build: seconds, not minutes
    reference = _depth_model(depth_cache)
    model = _depth_model(depth_cache, execution=ExecutionOptions(compile=True))
    assert model.execution._forward is not model.torch_module
    batch = _batch(1)
    np.testing.assert_allclose(model.predict(batch)[0], reference.predict(batch)[0], rtol=1e-4, atol=1e-4)
    twin = copy.deepcopy(model)  # the runner's FLOP pass
    assert twin.execution._forward is twin.torch_module and not twin.execution.options.compile
    assert model.execution.record()["compile"] is True


def test_fp16_needs_cuda(offline, depth_cache):
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device") as info:
        _depth_model(depth_cache, execution=ExecutionOptions(precision="fp16"))
    assert "bf16" in info.value.hint
    with pytest.raises(ConfigError, match="Unknown precision"):
        check_precision("int8")
    assert check_precision("fp16", "cuda:0") == "fp16"


def test_segmentation_and_detection_models_on_the_device_path(offline, tmp_path):
    from rpx_tasks.models.hf_detection import load_hf_detection_model
    from rpx_tasks.models.hf_segmentation import load_hf_segmentation_model
    from tests.support.hf_seed_detection import YOLOS_REPO_ID, seed_tiny_yolos
    from tests.support.hf_seed_segmentation import DEFAULT_REPO_ID as MASK2FORMER
    from tests.support.hf_seed_segmentation import seed_tiny_mask2former

    seed_tiny_mask2former(tmp_path, MASK2FORMER)
    seed_tiny_yolos(tmp_path, YOLOS_REPO_ID)
    batch = _batch(2)
    for loader, repo in ((load_hf_segmentation_model, MASK2FORMER), (load_hf_detection_model, YOLOS_REPO_ID)):
        host = loader(repo, cache_dir=str(tmp_path), threshold=0.0, device_preprocess=False)
        device = loader(repo, cache_dir=str(tmp_path), threshold=0.0, device_preprocess=True)
        host.setup(), device.setup()
        for a, b in zip(host.predict(batch), device.predict(batch)):
            if isinstance(a, np.ndarray):  # instance maps
                assert a.shape == (48, 64) and (a == b).mean() > 0.99
            else:  # boxes
                np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-2)
                assert a.labels == b.labels
        assert device.execution.record()["data_path"] == "device"
