"""Seed an HF hub cache with a tiny random-weight Depth Anything checkpoint, for offline tests.

``seed_tiny_depth_anything(cache_dir, repo_id)`` writes the hub cache layout
``<cache_dir>/models--<org>--<name>/{refs/main, snapshots/<commit>/...}`` so that
``from_pretrained(repo_id, cache_dir=cache_dir)`` works with ``HF_HUB_OFFLINE=1``.
``hub_snapshot``, ``seed_checkpoint`` and ``widen_weights`` are what every tiny-checkpoint
seeder (``tests.support.hf_seed_*``) builds on.
The model (~0.12 M parameters, seeded weights) has a 4-layer, 32-wide DINOv2 backbone and a metric head
(max depth 20 m); its processor resizes to about 56 px on the short side.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_REPO_ID = "depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf"
# Any 40-hex string works as the snapshot's commit.
TINY_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def hub_snapshot(cache_dir: str | Path, repo_id: str, commit: str = TINY_COMMIT) -> Path:
    """Create the hub cache folders of ``repo_id`` at ``cache_dir`` with ``refs/main`` pointing to
    ``commit``; returns the (empty) snapshot folder to save the checkpoint in."""
    repo_dir = Path(cache_dir) / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(commit)
    return snapshot


def seed_checkpoint(cache_dir: str | Path, repo_id: str, model, processor, commit: str = TINY_COMMIT) -> Path:
    """Save ``model`` and ``processor`` as ``repo_id`` in the hub cache at ``cache_dir``.

    Returns the snapshot folder.
    """
    snapshot = hub_snapshot(cache_dir, repo_id, commit)
    model.save_pretrained(snapshot)
    processor.save_pretrained(snapshot)
    return snapshot


def widen_weights(model, seed: int, std: float):
    """Redraw ``model``'s weight matrices from N(0, std) with a generator seeded by ``seed``: wider
    than the default init, so outputs differ across inputs and batching bugs show. Returns ``model``."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, std, generator=generator)
    return model


def build_tiny_depth_anything(seed: int = 0):
    """Return (model, image_processor) of a tiny random-weight metric Depth Anything."""
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessorPil

    backbone = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        mlp_ratio=2,
        patch_size=14,
        image_size=56,
        out_indices=[1, 2, 3, 4],
        reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        patch_size=14,
        reassemble_hidden_size=32,
        neck_hidden_sizes=[8, 16, 16, 32],
        fusion_hidden_size=16,
        head_hidden_size=8,
        depth_estimation_type="metric",
        max_depth=20,
    )
    torch.manual_seed(seed)
    model = DepthAnythingForDepthEstimation(config).eval()
    # The default init (std 0.02) predicts ~10 m everywhere; wider weights give depth maps
    # (about 6-12 m) that differ across pixels and frames, so batching bugs show.
    widen_weights(model, seed, 0.14)
    processor = DPTImageProcessorPil(
        size={"height": 56, "width": 56},
        keep_aspect_ratio=True,
        ensure_multiple_of=14,
        do_pad=False,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    )
    return model, processor


def seed_tiny_depth_anything(cache_dir: str | Path, repo_id: str = DEFAULT_REPO_ID) -> Path:
    """Write a tiny Depth Anything checkpoint into the hub cache at ``cache_dir`` under ``repo_id``.

    Returns the snapshot folder (it holds config.json, model.safetensors and
    preprocessor_config.json). Pass ``cache_dir`` as ``cache_dir=`` to the loader, or set
    ``HF_HUB_CACHE`` before huggingface_hub is imported.
    """
    return seed_checkpoint(cache_dir, repo_id, *build_tiny_depth_anything())
