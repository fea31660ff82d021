"""Downloads from the test Hub with the ``hub_env`` defaults, and the check every resolved split must pass."""

from __future__ import annotations

import json

from rpx_tasks.hub import download_split
from tests.support.hub_dataset import SPLIT_SCENES

HARD = SPLIT_SCENES["hard"]
DEPTH = ("rgb", "depth")


def download(env, repo="rpx-test/loose", task="monocular_depth", split="hard", modalities=DEPTH, **kwargs):
    """``download_split`` against the test Hub of ``env`` (a ``HubEnv``): revision ``main`` and the env's
    HF cache unless given. Returns the DownloadedSplit; raises what ``download_split`` raises."""
    kwargs.setdefault("revision", "main")
    kwargs.setdefault("cache_dir", str(env.hf_cache))
    return download_split(task, split, modalities=modalities, repo_id=repo, **kwargs)


def assert_resolved_ok(result, expected_samples: int) -> dict:
    """Assert the resolved manifest of ``result`` is rooted at ``result.root``, lists ``expected_samples``
    samples and every frame file it names exists. Returns the manifest."""
    manifest = json.loads(result.manifest_path.read_text(encoding="utf-8"))
    assert manifest["root"] == str(result.root)
    assert len(manifest["samples"]) == result.num_samples == expected_samples
    for sample in manifest["samples"]:
        for key in ("rgb", "depth", "mask", "pose"):
            if key in sample:
                assert (result.root / sample[key]).is_file(), sample[key]
    return manifest
