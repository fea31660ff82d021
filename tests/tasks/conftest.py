"""Fixtures the task tests share: the tiny OWL-ViT cache and a manifest path resolver (``offline`` is in
tests/conftest.py)."""

from __future__ import annotations

import pytest

from rpx_tasks.manifest import resolve_in_root


@pytest.fixture(scope="module")
def owl_cache(tmp_path_factory):
    """An HF cache holding the tiny OWL-ViT as google/owlvit-base-patch32 (one per test module)."""
    from tests.support.hf_seed_detection import seed_tiny_owlvit

    cache = tmp_path_factory.mktemp("hf-owlvit")
    seed_tiny_owlvit(cache)
    return cache


@pytest.fixture
def resolve(tmp_path):
    """A manifest path resolver rooted at the test's ``tmp_path`` (``resolve_in_root``)."""
    return lambda value, sample_id, key: resolve_in_root(tmp_path, value, sample_id=sample_id, key=key)
