"""Seed an HF hub cache with tiny random-weight keypoint matchers (LightGlue, SuperGlue), for offline tests.

``seed_tiny_lightglue(cache_dir, repo_id)`` / ``seed_tiny_superglue(cache_dir, repo_id)`` write
the hub cache layout ``<cache_dir>/models--<org>--<name>/{refs/main, snapshots/<commit>/...}``
so that ``from_pretrained(repo_id, cache_dir=cache_dir)`` works with ``HF_HUB_OFFLINE=1``.
Both sit on a 4-block SuperPoint with 16-wide descriptors and at most 64 keypoints per frame
(about 20-30 k parameters, seeded weights); LightGlue has 2 layers and no match-score filter,
SuperGlue one self/cross pair and 5 Sinkhorn iterations, so random weights still produce
matches. Their processors resize pairs to 48 x 64 grey.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.hf_seed import seed_checkpoint, widen_weights

LIGHTGLUE_REPO_ID = "ETH-CVG/lightglue_superpoint"
SUPERGLUE_REPO_ID = "magic-leap-community/superglue_indoor"
# Any 40-hex string works as the snapshot's commit.
TINY_COMMIT = "89abcdef0123456789abcdef0123456789abcdef"


def _tiny_superpoint():
    from transformers import SuperPointConfig

    return SuperPointConfig(
        encoder_hidden_sizes=[8, 8, 16, 16], decoder_hidden_size=16, descriptor_decoder_dim=16, max_keypoints=64
    )


def build_tiny_lightglue(seed: int = 0):
    """Return (model, image_processor) of a tiny random-weight LightGlue on SuperPoint."""
    import torch
    from transformers import LightGlueConfig, LightGlueForKeypointMatching, LightGlueImageProcessorPil

    config = LightGlueConfig(
        keypoint_detector_config=_tiny_superpoint(),
        descriptor_dim=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        filter_threshold=0.0,
    )
    torch.manual_seed(seed)
    # Wider weights than the default init, so match scores differ across points.
    model = widen_weights(LightGlueForKeypointMatching(config).eval(), seed, 0.3)
    return model, LightGlueImageProcessorPil(size={"height": 48, "width": 64})


def build_tiny_superglue(seed: int = 0):
    """Return (model, image_processor) of a tiny random-weight SuperGlue on SuperPoint."""
    import torch
    from transformers import SuperGlueConfig, SuperGlueForKeypointMatching, SuperGlueImageProcessorPil

    config = SuperGlueConfig(
        keypoint_detector_config=_tiny_superpoint(),
        hidden_size=16,
        keypoint_encoder_sizes=[8, 16],
        gnn_layers_types=["self", "cross"],
        num_attention_heads=2,
        sinkhorn_iterations=5,
    )
    torch.manual_seed(seed)
    model = SuperGlueForKeypointMatching(config).eval()
    return model, SuperGlueImageProcessorPil(size={"height": 48, "width": 64})


def seed_tiny_lightglue(cache_dir: str | Path, repo_id: str = LIGHTGLUE_REPO_ID) -> Path:
    """Write a tiny LightGlue checkpoint into the hub cache at ``cache_dir`` under ``repo_id``.

    Returns the snapshot folder (config.json, model.safetensors, preprocessor_config.json).
    Pass ``cache_dir`` as ``cache_dir=`` to the loader (or ``--cache-dir`` to the CLI).
    """
    return seed_checkpoint(cache_dir, repo_id, *build_tiny_lightglue(), commit=TINY_COMMIT)


def seed_tiny_superglue(cache_dir: str | Path, repo_id: str = SUPERGLUE_REPO_ID) -> Path:
    """Write a tiny SuperGlue checkpoint into the hub cache at ``cache_dir`` under ``repo_id``; returns the snapshot."""
    return seed_checkpoint(cache_dir, repo_id, *build_tiny_superglue(), commit=TINY_COMMIT)
