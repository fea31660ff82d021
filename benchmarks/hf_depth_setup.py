"""What the HF depth benchmarks share (``hf_throughput.py``, ``gpu_check.py``): a Depth-Anything-V2
checkpoint with random weights, generated camera-like 640x480 frames, a split of them on disk, and the
by-hand reference loop.

- ``save_checkpoint(folder, arch)``: Depth-Anything-V2 ``small`` (the real Small architecture: DINOv2-S
  backbone, 384 wide, 12 layers, DPT neck 48/96/192/384, fusion 64, metric head up to 20 m; ~25 M
  parameters) or ``tiny`` (32 wide, 4 layers, a slim neck and head: a quick CPU run), random weights, with
  the real image
  processor (518 px, aspect kept, multiple of 14, bicubic), saved as a local checkpoint folder that
  ``rpx bench --hf-checkpoint FOLDER`` loads offline.
- ``camera_frames(n)``: smooth colour gradients with moving blobs and sensor noise (PNGs that barely
  compress, like RPX's camera frames).
- ``write_split(root, frames)``: those frames as a monocular_depth split (``manifest.json``, RGB PNGs and
  16-bit depth PNGs in millimetres).
- ``by_hand(model, processor, frames, batch)``: processor -> forward -> resize to the frame, the frames
  already decoded: the reference speed of the model. Returns per-batch seconds.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

HEIGHT, WIDTH = 480, 640
ARCHS = ("small", "tiny")


def build_depth_anything(arch: str = "small", *, processor_size: int = 518, seed: int = 0):
    """Return (model, image_processor) of a random-weight metric Depth-Anything-V2 of ``arch``."""
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessorPil

    width, layers, heads, neck, fusion, head = {
        "small": (384, 12, 6, [48, 96, 192, 384], 64, 32),
        "tiny": (32, 4, 2, [8, 16, 16, 32], 16, 8),
    }[arch]
    backbone = Dinov2Config(
        hidden_size=width,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        mlp_ratio=4,
        patch_size=14,
        image_size=518,
        out_indices=[layers // 4, layers // 2, 3 * layers // 4, layers],
        reshape_hidden_states=False,
        layerscale_value=1.0,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        patch_size=14,
        reassemble_hidden_size=width,
        reassemble_factors=[4, 2, 1, 0.5],
        neck_hidden_sizes=neck,
        fusion_hidden_size=fusion,
        head_hidden_size=head,
        depth_estimation_type="metric",
        max_depth=20,
    )
    torch.manual_seed(seed)
    model = DepthAnythingForDepthEstimation(config).eval()
    processor = DPTImageProcessorPil(
        size={"height": processor_size, "width": processor_size},
        keep_aspect_ratio=True,
        ensure_multiple_of=14,
        do_pad=False,
        resample=3,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    )
    return model, processor


def save_checkpoint(folder: Path, arch: str = "small", *, processor_size: int = 518) -> Path:
    """Write the random-weight checkpoint (config, safetensors, preprocessor config) to ``folder``."""
    model, processor = build_depth_anything(arch, processor_size=processor_size)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def camera_frames(count: int, height: int = HEIGHT, width: int = WIDTH, seed: int = 0) -> list[np.ndarray]:
    """``count`` camera-like (height, width, 3) uint8 frames: gradients, a moving blob, sensor noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for index in range(count):
        cx, cy = width * (0.3 + 0.4 * (index % 10) / 10), height * 0.5
        blob = 120.0 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (0.12 * width) ** 2))
        base = np.stack([xx / width * 160 + blob, yy / height * 140 + 40, 90 + blob * 0.5], -1)
        frames.append(np.clip(base + rng.normal(0.0, 6.0, base.shape), 0, 255).astype(np.uint8))
    return frames


def write_split(root: Path, frames: list[np.ndarray]) -> Path:
    """Write ``frames`` as one clip of a monocular_depth split under ``root``; returns the manifest path."""
    from PIL import Image

    clip = root / "scenes" / "scene_000" / "0"
    (clip / "rgb").mkdir(parents=True, exist_ok=True)
    (clip / "depth").mkdir(parents=True, exist_ok=True)
    samples = []
    depth = (1500 + 10 * np.arange(frames[0].shape[0])[:, None] + np.zeros(frames[0].shape[:2])).astype(np.uint16)
    for index, frame in enumerate(frames):
        stem = f"{index:06d}.png"
        Image.fromarray(frame).save(clip / "rgb" / stem, compress_level=1)
        Image.fromarray(depth).save(clip / "depth" / stem)
        samples.append(
            {
                "id": f"scene_000__clutter__{index:06d}",
                "rgb": f"scenes/scene_000/0/rgb/{stem}",
                "depth": f"scenes/scene_000/0/depth/{stem}",
                "phase": "clutter",
                "difficulty": "hard",
                "frame_idx": index,
            }
        )
    manifest = root / "manifest.json"
    manifest.write_text(json.dumps({"task": "monocular_depth", "split": "hard", "root": None, "samples": samples}))
    return manifest


def by_hand(model, processor, frames: list[np.ndarray], batch: int) -> list[float]:
    """Processor -> forward -> resize to the frame for ``frames`` in batches of ``batch`` on the CPU (the
    frames already decoded); returns the seconds of each batch."""
    import torch

    seconds = []
    for start in range(0, len(frames) - batch + 1, batch):
        images = frames[start : start + batch]
        began = time.perf_counter()
        inputs = processor(images=images, return_tensors="pt")
        with torch.inference_mode():
            outputs = model(**inputs)
            results = processor.post_process_depth_estimation(outputs, target_sizes=[img.shape[:2] for img in images])
            np.stack([r["predicted_depth"].numpy() for r in results])
        seconds.append(time.perf_counter() - began)
    return seconds
