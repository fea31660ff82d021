"""keypoint_matching's HF fast path on tiny random-weight LightGlue and SuperGlue checkpoints seeded into an
offline HF cache: loading, coordinates, batching, the processor's post-processing, refusals and CLI runs."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from rpx_tasks.contracts.keypoints import KeypointMatches
from rpx_tasks.errors import AdapterError, ConfigError, ModelError
from rpx_tasks.model_selection import resolve_model
from rpx_tasks.sample import Sample
from rpx_tasks.tasks import get_task
from tests.support.bench_cli import bench_all

SPEC = get_task("keypoint_matching")


@pytest.fixture(scope="module")
def hf_cache(tmp_path_factory):
    from tests.support.hf_seed_keypoints import seed_tiny_lightglue, seed_tiny_superglue

    cache = tmp_path_factory.mktemp("hf-keypoints")
    seed_tiny_lightglue(cache)
    seed_tiny_superglue(cache)
    return cache


@pytest.fixture(scope="module")
def tiny_matcher(hf_cache):
    from rpx_tasks.models.hf_keypoints import load_hf_keypoint_model

    model = load_hf_keypoint_model("ETH-CVG/lightglue_superpoint", cache_dir=str(hf_cache))
    model.setup()
    return model


def _frames(seed: int, shape=(96, 128)) -> Sample:
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    return Sample(id=f"f{seed}", rgb=rgb, ground_truth=None, metadata={"rgb_b": np.roll(rgb, 3, axis=1)})


def test_hf_matcher_loads_offline_through_the_resolver(hf_cache):
    from rpx_tasks.models.hf_keypoints import HFKeypointMatchingModel
    from rpx_tasks.models.torch_module import count_parameters_m

    by_checkpoint = resolve_model(SPEC, hf_checkpoint="ETH-CVG/lightglue_superpoint", cache_dir=str(hf_cache))
    by_name = resolve_model(SPEC, model_name="lightglue_superpoint", cache_dir=str(hf_cache))
    assert isinstance(by_checkpoint, HFKeypointMatchingModel) and by_checkpoint.task == "keypoint_matching"
    assert by_checkpoint.name == "ETH-CVG/lightglue_superpoint" and by_name.name == "lightglue_superpoint"
    assert 0 < count_parameters_m(by_checkpoint) < 0.1


def test_hf_matches_are_in_frame_coordinates_and_batching_changes_nothing(tiny_matcher):
    samples = [_frames(0), _frames(1), _frames(2, shape=(60, 80))]
    batched = tiny_matcher.predict(samples)
    single = [tiny_matcher.predict([sample])[0] for sample in samples]
    assert sum(len(m.points0) for m in batched) > 0
    for sample, together, alone in zip(samples, batched, single):
        assert isinstance(together, KeypointMatches)
        np.testing.assert_array_equal(together.points0, alone.points0)
        np.testing.assert_array_equal(together.points1, alone.points1)
        height, width = sample.rgb.shape[:2]
        for points in (together.points0, together.points1):
            assert points.dtype == np.float64
            assert ((points >= 0) & (points <= [width, height])).all()
        assert together.scores is not None and len(together.scores) == len(together.points0)
        SPEC.validate_prediction(together, sample)


def test_hf_matches_agree_with_the_processors_integer_post_processing(tiny_matcher):
    import torch

    sample = _frames(0)
    ours = tiny_matcher.predict([sample])[0]
    processor = tiny_matcher.processor
    inputs = processor(images=[[sample.rgb, sample.metadata["rgb_b"]]], return_tensors="pt")
    with torch.inference_mode():
        outputs = tiny_matcher.torch_module(**inputs)
    plain = processor.post_process_keypoint_matching(outputs, target_sizes=[[(96, 128), (96, 128)]])[0]
    assert len(plain["keypoints0"]) == len(ours.points0) > 0
    # the processor truncates to whole pixels; the fast path keeps 1/64 px
    np.testing.assert_allclose(ours.points0, plain["keypoints0"].numpy(), atol=1.0)
    np.testing.assert_allclose(ours.points1, plain["keypoints1"].numpy(), atol=1.0)


def test_hf_missing_second_frame_and_bad_checkpoints(tiny_matcher, hf_cache, tmp_path):
    from rpx_tasks.models.hf_keypoints import load_hf_keypoint_model
    from tests.support.hf_seed import seed_tiny_depth_anything

    with pytest.raises(AdapterError, match="requires a second RGB frame"):
        tiny_matcher.predict([Sample(id="solo", rgb=np.zeros((8, 8, 3), np.uint8), ground_truth=None)])
    with pytest.raises(ConfigError, match="trust_remote_code"):
        load_hf_keypoint_model("ETH-CVG/lightglue_superpoint", cache_dir=str(hf_cache), trust_remote_code=True)
    with pytest.raises(ModelError) as info:
        load_hf_keypoint_model("nobody/not-a-matcher", cache_dir=str(hf_cache))
    assert "HF_HUB_OFFLINE=1" in info.value.hint
    seed_tiny_depth_anything(tmp_path, "someone/depth-model")
    with pytest.raises(ModelError, match="not a keypoint-matching model") as info:
        load_hf_keypoint_model("someone/depth-model", cache_dir=str(tmp_path))
    assert "lightglue" in info.value.hint


@pytest.mark.parametrize(
    "selector",
    [["--hf-checkpoint", "ETH-CVG/lightglue_superpoint"], ["--model", "superglue_indoor"]],
    ids=["lightglue-by-checkpoint", "superglue-by-registry-name"],
)
def test_cli_run_with_tiny_hf_checkpoints(selector, sample_dataset, hf_cache, tmp_path, capsys):
    out_dir = tmp_path / "out"
    samples, out = bench_all(
        "keypoint_matching",
        [*selector, "--cache-dir", str(hf_cache), "--batch-size", "4"],
        sample_dataset,
        out_dir,
        capsys,
    )
    rows = pq.read_table(out_dir / "per_sample_metrics.parquet").to_pylist()
    assert len(rows) == len(samples)
    assert all(0.0 <= row["keypoint_acc"] <= 1.0 for row in rows)
    result = json.loads((out_dir / "result.json").read_text())
    assert result["compute"]["params_m"] > 0 and result["compute"]["flops_g"] is not None
