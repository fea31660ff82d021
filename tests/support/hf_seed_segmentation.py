"""Seed an HF hub cache with a tiny random-weight Mask2Former checkpoint, for offline tests.

``seed_tiny_mask2former(cache_dir, repo_id)`` writes the hub cache layout
``<cache_dir>/models--<org>--<name>/{refs/main, snapshots/<commit>/...}`` so that
``from_pretrained(repo_id, cache_dir=cache_dir)`` works with ``HF_HUB_OFFLINE=1``.
The model (~0.35 M parameters, seeded weights) has a 4-stage, 16-wide Swin backbone, one
pixel-decoder layer, two transformer-decoder layers, 8 queries and 3 classes; its class head is
biased towards the object classes so that segments clear the default 0.5 score threshold. The
PIL image processor resizes to about 64 px on the short side (a multiple of 32). Building
Mask2Former needs scipy (its training loss is constructed with the model).
"""

from __future__ import annotations

from pathlib import Path

from tests.support.hf_seed import seed_checkpoint, widen_weights

DEFAULT_REPO_ID = "facebook/mask2former-swin-tiny-coco-instance"
LABELS = ("box", "bottle", "arm")


def build_tiny_mask2former(seed: int = 0):
    """Return (model, image_processor) of a tiny random-weight Mask2Former for instance segmentation."""
    import torch
    from transformers import (
        Mask2FormerConfig,
        Mask2FormerForUniversalSegmentation,
        Mask2FormerImageProcessorPil,
        SwinConfig,
    )

    backbone = SwinConfig(
        image_size=64,
        patch_size=4,
        embed_dim=16,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 2, 2],
        window_size=4,
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    config = Mask2FormerConfig(
        backbone_config=backbone,
        feature_size=32,
        mask_feature_size=32,
        hidden_dim=32,
        encoder_feedforward_dim=64,
        dim_feedforward=64,
        encoder_layers=1,
        decoder_layers=2,
        num_attention_heads=2,
        num_queries=8,
        common_stride=4,
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
        use_pretrained_backbone=False,
    )
    torch.manual_seed(seed)
    model = Mask2FormerForUniversalSegmentation(config).eval()
    widen_weights(model, seed, 0.1)
    with torch.no_grad():
        # Confident object classes (the last logit is "no object") and sharp masks, so that segments
        # clear the 0.5 score threshold: score = class probability x mean mask probability.
        model.class_predictor.weight.mul_(0.3)
        model.class_predictor.bias.copy_(torch.tensor([3.0, 1.0, 0.0, -6.0]))
        model.get_submodule("model.transformer_module.decoder.mask_predictor.mask_embedder.2.0").weight.mul_(20.0)
    processor = Mask2FormerImageProcessorPil(
        size={"shortest_edge": 64, "longest_edge": 96},
        size_divisor=32,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
        ignore_index=255,
    )
    return model, processor


def seed_tiny_mask2former(cache_dir: str | Path, repo_id: str = DEFAULT_REPO_ID) -> Path:
    """Write a tiny Mask2Former checkpoint into the hub cache at ``cache_dir`` under ``repo_id``.

    Returns the snapshot folder (config.json, model.safetensors, preprocessor_config.json).
    """
    return seed_checkpoint(cache_dir, repo_id, *build_tiny_mask2former())
