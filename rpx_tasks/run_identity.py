"""Run identity: run ids, UTC time stamps, what names a run's model and data, its config fingerprint,
and the labels that say which runs are comparable (data source, device class).

The fingerprint is the sha256 of a canonical JSON of what a run computes; two runs with one
fingerprint compute the same numbers (timings excepted), so one may resume the other.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import rpx_tasks
from rpx_tasks.alignment_record import resolve_alignment
from rpx_tasks.config import RunConfig
from rpx_tasks.device import is_cuda
from rpx_tasks.model_selection import get_entry
from rpx_tasks.models.hf_loading import checkpoint_identity
from rpx_tasks.sample_data.builtin import is_builtin


def utc_now() -> str:
    """Return the current UTC time as ISO 8601 with a ``Z`` (seconds precision)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_run_id(now: datetime | None = None) -> str:
    """Return a fresh run id ``<UTC yyyymmddTHHMMSSZ>-<6 hex>`` (random hex: two runs in one second differ)."""
    stamp = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_identity(config: RunConfig) -> dict[str, Any]:
    """Return what names the config's model: registry name and target, import path, HF checkpoint, or
    the module and qualified name of a library model object. A checkpoint (``--hf-checkpoint`` or an HF
    registry entry) adds the revision and the commit it resolves to in the HF cache, or a local
    folder's file digest (``checkpoint_identity``), so new weights make a new fingerprint. Raises
    ConfigError for an unknown name."""
    if config.hf_checkpoint:
        return {
            "hf_checkpoint": config.hf_checkpoint,
            **checkpoint_identity(config.hf_checkpoint, None, config.cache_dir),
        }
    if config.model_name and ":" in config.model_name:
        return {"import": config.model_name}
    if config.model_name:
        entry = get_entry(config.model_name, config.task)
        weights = checkpoint_identity(entry.target, None, config.cache_dir) if entry.kind == "hf" else {}
        return {"registry": entry.name, "kind": entry.kind, "target": entry.target, **weights}
    kind = config.model if isinstance(config.model, type) or callable(config.model) else type(config.model)
    return {
        "object": f"{getattr(kind, '__module__', '?')}.{getattr(kind, '__qualname__', '?')}",
        "name": config.display_name,
    }


def data_identity(config: RunConfig) -> dict[str, Any]:
    """Return where the run's samples come from: the built-in sample data and package version, a manifest
    file and its sha256, or the dataset repo and revision. Raises OSError when the manifest cannot be read."""
    if is_builtin(config.manifest):
        return {"builtin": config.manifest, "version": rpx_tasks.__version__}
    if config.manifest:
        path = Path(config.manifest).resolve()
        return {"manifest": str(path), "sha256": _file_sha256(path)}
    return {"repo_id": config.effective_repo_id, "revision": config.effective_revision}


def data_source_label(data: dict[str, Any]) -> str:
    """Return the short name of a run's data source (its ``data_identity``) for artifact keys and tags:
    ``sample`` for the built-in sample data, ``manifest-<first 8 hex of its sha256>`` for a manifest file,
    else the Hub revision's first 8 characters (a commit's short hash; a branch name as it is, made
    safe: lowercase letters, digits and dashes). ``unknown`` when ``data`` names none. Raises nothing."""
    if data.get("builtin"):
        return "sample"
    if data.get("sha256"):
        return f"manifest-{str(data['sha256'])[:8]}"
    revision = re.sub(r"[^a-z0-9]+", "-", str(data.get("revision") or "").lower()).strip("-")
    if not revision:
        return "unknown"
    return revision[:8] if re.fullmatch(r"[0-9a-f]{40}", revision) else revision


def device_class(device: str | None) -> str:
    """Return ``cuda`` for a CUDA device string (``cuda``, ``cuda:N``), ``mps`` for Apple's GPU, else ``cpu``:
    runs of one class are comparable. Raises nothing."""
    if device and is_cuda(device):
        return "cuda"
    return "mps" if device and str(device).split(":", 1)[0] == "mps" else "cpu"


def config_fingerprint(config: RunConfig, data: dict[str, Any] | None = None, *, with_shard: bool = True) -> str:
    """Return the sha256 (hex) of a canonical JSON of what the run computes: task, model identity,
    model kwargs, split, data source (``data``: its ``data_identity`` when already computed),
    max_samples, SGC, vocabulary, temporal stability, FLOP counting on or off, the depth
    alignment the run applies (``--alignment`` or the model's default; left out when ``none``), for a
    clip task the frame budget, sampling and fscore option, the shard (``--shard i/K``; left out for
    an unsharded run, or with ``with_shard=False``: the fingerprint of the unsharded run that merging all
    shards equals) and the HF fast path's ``--precision`` (left out when ``fp32``; ``--compile`` is not
    part of it).
    Batch size, device, the output folder and the checkpoint interval are not part of it.
    Raises ConfigError / OSError as ``model_identity`` / ``data_identity``."""
    identity = {
        "task": config.task,
        "model": model_identity(config),
        "model_kwargs": config.model_kwargs,
        "split": config.split,
        "data": data if data is not None else data_identity(config),
        "max_samples": config.max_samples,
        "geometric_coherence": config.geometric_coherence,
        "vocabulary": config.vocabulary,
        "temporal_stability": config.temporal_stability,
        "count_flops": config.count_flops,
    }
    alignment = resolve_alignment(config.task, config.alignment, config.model_name).mode
    if alignment != "none":  # absent means none, so runs from before --alignment keep their fingerprints
        identity["alignment"] = alignment
    selection = config.frame_selection
    if selection is not None:  # clip tasks only, so the other tasks' fingerprints do not change
        identity["frames"] = {**selection.record(), "fscore": config.fscore}
    if config.shard is not None and with_shard:  # absent when unsharded: earlier runs keep their fingerprints
        identity["shard"] = config.shard
    if config.precision != "fp32":  # autocast changes the predictions; absent means fp32, as before --precision
        identity["precision"] = config.precision
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
