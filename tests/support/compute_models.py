"""Depth models for the compute-figure tests, importable by path (``tests.support.compute_models:build_*``)
as a deployment or the matrix flow names them.

- ``MemoryHungryDepth`` allocates and touches a large buffer in every ``predict`` (resident, then
  freed), ``FrugalDepth`` allocates next to nothing: a run after the hungry one must report its
  own, much lower, peak.
- ``TorchStatefulDepth`` is a torch model that keeps state from frame to frame, for ``--no-flops``
  through the CLI.
"""

from __future__ import annotations

import numpy as np
import torch

HUNGRY_BYTES = 300 * 2**20


class FrugalDepth:
    """A constant 2 m everywhere; allocates only its outputs."""

    task = "monocular_depth"
    torch_module = None

    def __init__(self, name: str = "frugal_depth") -> None:
        self.name = name

    def setup(self) -> None:
        pass

    def predict(self, batch):
        return [np.full(sample.rgb.shape[:2], 2.0, np.float32) for sample in batch]


class MemoryHungryDepth(FrugalDepth):
    """FrugalDepth that writes every byte of a ``HUNGRY_BYTES`` scratch buffer per batch (so it is
    resident), then lets it go."""

    def predict(self, batch):
        scratch = np.empty(HUNGRY_BYTES, np.uint8)
        scratch.fill(1)
        del scratch
        return super().predict(batch)


class TorchStatefulDepth:
    """A torch model with frame-to-frame state: ``frames_seen`` lists the ids of the samples its
    ``predict`` received, in order, and its depth grows with the number of frames seen."""

    task = "monocular_depth"

    def __init__(self, name: str = "torch_stateful_depth") -> None:
        self.name = name
        torch.manual_seed(0)
        self.torch_module = torch.nn.Linear(3, 1)
        self.frames_seen: list[str] = []

    def setup(self) -> None:
        self.torch_module.eval()

    def predict(self, batch):
        depths = []
        for sample in batch:
            self.frames_seen.append(sample.id)
            pixels = torch.from_numpy(np.asarray(sample.rgb, np.float32).reshape(-1, 3) / 255.0)
            with torch.inference_mode():
                shade = self.torch_module(pixels).abs().reshape(sample.rgb.shape[:2])
            depths.append((shade.numpy() + 1.0 + 0.01 * len(self.frames_seen)).astype(np.float32))
        return depths


def build_frugal(device: str = "cpu") -> FrugalDepth:
    """The frugal model (any device: it computes in numpy)."""
    return FrugalDepth()


def build_memory_hungry(device: str = "cpu") -> MemoryHungryDepth:
    """The memory-hungry model (any device: it computes in numpy)."""
    return MemoryHungryDepth(name="memory_hungry_depth")


def build_torch_stateful(device: str = "cpu") -> TorchStatefulDepth:
    """The stateful torch model, on the CPU."""
    return TorchStatefulDepth()
