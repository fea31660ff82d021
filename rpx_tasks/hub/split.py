"""Fetch one task/split: manifest first, then only the files of its clips and modalities.

``download_split`` is the whole pipeline step: manifest -> ``max_samples`` -> (scene, phase)
clips -> task-scoped patterns -> snapshot (Hub cache or local mirror) -> shard verification and
extraction -> resolved manifest (``root`` = the local folder) written atomically under
``RPX_CACHE_DIR`` (default ``~/.cache/rpx_benchmark``)::

    <cache>/<repo, "/" -> "__">/manifests/<task>/<split>.<mods>.json         (all samples)
    <cache>/<repo, "/" -> "__">/manifests/<task>/<split>.<mods>.max<N>.json  (--max-samples N)

where ``<mods>`` is the modalities fetched, sorted and joined by "+" (``depth+rgb``), so an SGC
download (which adds depth) and a plain one of the same split never overwrite each other.

A local mirror's key is ``local__`` + its absolute path with "/" -> "__". The resolved manifest
also records where it came from under ``"source"`` (repo, requested revision, commit,
modalities, max_samples).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from rpx_tasks.constants import default_repo_id, default_revision, rpx_cache_dir
from rpx_tasks.errors import ConfigError, DatasetError, DownloadError, ManifestError
from rpx_tasks.manifest import PATH_KEYS, manifest_relpath, resolve_in_root, scene_phase_pairs

from .failures import OFFLINE_HINT, redact
from .modalities import CHECKSUMS_PATH, MODALITY_SAMPLE_KEYS, allow_patterns, check_modalities, shard_paths
from .shards import extract_shards, read_checksums
from .sources import HubSource, MirrorSource, looks_like_path, open_source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DownloadedSplit:
    """What ``download_split`` produced.

    ``manifest_path``: the resolved manifest; ``root``: the local folder its paths resolve
    against (HF snapshot or mirror); ``revision``: the commit sha (None for a local mirror).
    """

    manifest_path: Path
    root: Path
    num_samples: int
    pairs: list[tuple[str, str]]
    repo_id: str
    revision: str | None
    modalities: tuple[str, ...] = ()


@dataclass(frozen=True)
class SplitDescription:
    """What ``describe_split`` learnt from the manifest (and file sizes) without fetching data.

    ``total_bytes`` / ``num_files``: size and count of the task's files for the split (None
    when unknown, e.g. offline without a cached listing); ``estimated_bytes``: the part of it
    not in the local cache yet, i.e. what a download would fetch.
    """

    task: str
    split: str
    repo_id: str
    revision: str | None
    scenes: list[str]
    pairs: list[tuple[str, str]]
    num_samples: int
    modalities: tuple[str, ...]
    estimated_bytes: int | None
    total_bytes: int | None = None
    num_files: int | None = None


def repo_cache_key(repo_id: str) -> str:
    """Folder name for a repo in the RPX cache: ORG__NAME, or local__<path parts> for a mirror."""
    if looks_like_path(repo_id):
        parts = [p for p in Path(repo_id).expanduser().resolve().parts if p not in ("/", "\\")]
        return "local__" + "__".join(p.replace(":", "") for p in parts)
    return repo_id.replace("/", "__")


def resolved_manifest_path(
    repo_id: str | None, task: str, split: str, max_samples: int | None = None, *, modalities: Sequence[str]
) -> Path:
    """Where ``download_split`` writes the resolved manifest of (repo, task, split, modalities, max_samples).

    ``<RPX_CACHE_DIR or ~/.cache/rpx_benchmark>/<repo key>/manifests/<task>/<split>.<modalities>.json``,
    the modalities sorted and joined by ``+`` (``hard.depth+rgb.json``), then ``.max<N>`` before
    ``.json`` when ``max_samples`` is N: downloads of other sizes or modality sets (an SGC run adds
    depth) never overwrite each other. Raises ConfigError for an unknown or empty modality list.
    """
    suffix = "." + "+".join(sorted(check_modalities(modalities)))
    if max_samples is not None:
        suffix += f".max{max_samples}"
    return rpx_cache_dir() / repo_cache_key(repo_id or default_repo_id()) / manifest_relpath(task, split, suffix)


def _check_max_samples(max_samples: int | None) -> None:
    if max_samples is not None and (
        isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1
    ):
        raise ConfigError(
            f"max_samples must be a whole number >= 1, got {max_samples!r}.",
            hint="drop --max-samples to use every sample",
        )


def _limit(manifest: dict[str, Any], max_samples: int | None) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The manifest cut to its first ``max_samples`` samples, and the clips those need."""
    manifest = dict(manifest)
    if max_samples is not None:
        manifest["samples"] = list(manifest["samples"])[:max_samples]
        manifest.pop("scenes", None)  # the clip list of the full split would fetch too much
    return manifest, scene_phase_pairs(manifest)


def fetch_manifest(
    task: str, split: str, *, repo_id: str | None = None, revision: str | None = None, cache_dir: str | None = None
) -> dict[str, Any]:
    """The Hub manifest ``manifests/<task>/<split>.json`` as a dict (``root`` as published).

    ``repo_id`` may be a local mirror folder. Raises ManifestError when the manifest is missing
    or not valid JSON, TransientDownloadError when the Hub is unreachable or answers 5xx/429,
    DownloadError for an unknown repo or revision, a refused token, or a cold cache offline.
    """
    source = open_source(repo_id or default_repo_id(), revision or default_revision(), cache_dir)
    return source.manifest(task, split)


def _resolve_samples(
    manifest: dict[str, Any], root: Path, modalities: Sequence[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Copies of the samples with every path checked to stay in ``root``; and the missing files.

    A ``scenes/...`` path whose file only exists under ``extracted/`` (a shard layout manifest
    written for loose files) is rewritten to the extracted copy.
    """
    needed = {key for name in modalities for key in MODALITY_SAMPLE_KEYS.get(name, ())}
    samples, missing = [], []
    for entry in manifest["samples"]:
        entry = dict(entry)
        sample_id = str(entry.get("id", "?"))
        for key in PATH_KEYS:
            value = entry.get(key)
            if not isinstance(value, str) or not value:
                continue
            path = resolve_in_root(root, value, sample_id=sample_id, key=key)
            if key in needed and not path.exists():
                alternative = f"extracted/{value}"
                if not Path(value).is_absolute() and (root / alternative).is_file():
                    entry[key] = alternative
                else:
                    missing.append(value)
        samples.append(entry)
    return samples, missing


def _write_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as JSON to ``path`` through a temp file + rename; DatasetError on failure."""
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise DatasetError(
            f"Could not write the resolved manifest {path}: {exc}",
            hint="set RPX_CACHE_DIR to a writable folder with free space",
            details={"path": str(path)},
        ) from exc


def _forget_resolved(path: Path, root: Path) -> None:
    """Remove a resolved manifest that points at ``root`` (whose data just proved bad)."""
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("root") == str(root):
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def _raise_missing(missing: list[str], source, task: str, split: str, root: Path, target: Path) -> None:
    """Raise for files the manifest names that are not under ``root`` after the download."""
    shown = ", ".join(missing[:5]) + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
    if source.offline:
        raise DownloadError(
            f"Offline mode (HF_HUB_OFFLINE=1): {len(missing)} file(s) "
            f"of {task}/{split} are not in the local cache: {shown}",
            hint=OFFLINE_HINT,
            details={"missing": missing[:20]},
        )
    _forget_resolved(target, root)
    raise DatasetError(
        f"{len(missing)} file(s) named by manifest {task}/{split} are missing from {source.where}: {shown}",
        hint="this revision of the dataset is incomplete or its manifest is wrong: try another --revision "
        "or report it; for a local folder, copy the missing files into it",
        details={"missing": missing[:20], "root": str(root)},
    )


def _require_clips(manifest: dict[str, Any], pairs: list[tuple[str, str]], source, task: str, split: str) -> None:
    """Raise ManifestError when the (limited) manifest names no (scene, phase) clip to fetch."""
    if not pairs:
        raise ManifestError(
            f"Manifest {task}/{split} of {source.where} references no scenes; cannot derive download patterns.",
            hint="sample paths need a 'scenes/<scene>/<phase>/' part or scene_id and phase fields; "
            "the manifest may have been generated against an empty scene list",
            details={"task": task, "split": split, "samples": len(manifest["samples"])},
        )


def _fetch_split_files(
    source,
    manifest: dict[str, Any],
    pairs: list[tuple[str, str]],
    names: tuple[str, ...],
    task: str,
    split: str,
    max_workers: int,
) -> Path:
    """Fetch the clips' files of ``names``, the manifest and the checksums; return the local root."""
    patterns = allow_patterns(pairs, names) + [manifest_relpath(task, split), CHECKSUMS_PATH]
    log.info(
        "%s/%s: %d sample(s) in %d clip(s), modalities %s",
        task,
        split,
        len(manifest["samples"]),
        len(pairs),
        ", ".join(names),
    )
    return source.fetch(patterns, max_workers=max_workers)


def _extract_and_resolve(
    manifest: dict[str, Any], root: Path, target: Path, pairs: list[tuple[str, str]], names: tuple[str, ...]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Verify and extract the shards, then resolve the samples' paths: (samples, missing files).

    On a DatasetError that is not a Download/ManifestError (bad data), forgets the resolved
    manifest at ``target`` that points at ``root``, then re-raises.
    """
    try:
        extract_shards(root, shard_paths(pairs, names), checksums=read_checksums(root))
        return _resolve_samples(manifest, root, names)
    except DatasetError as exc:
        if not isinstance(exc, (DownloadError, ManifestError)):
            _forget_resolved(target, root)
        raise


def _resolved_manifest(
    manifest: dict[str, Any],
    samples: list[dict[str, Any]],
    root: Path,
    source,
    task: str,
    split: str,
    names: tuple[str, ...],
    max_samples: int | None,
) -> dict[str, Any]:
    """The manifest to write: ``root`` set to the local folder, resolved samples, and its ``source``."""
    resolved = {
        **manifest,
        "task": manifest.get("task") or task,
        "split": manifest.get("split") or split,
        "root": str(root),
        "samples": samples,
    }
    resolved["source"] = redact(
        {
            "repo_id": source.repo_id,
            "revision": source.revision,
            "commit": source.commit,
            "modalities": list(names),
            "max_samples": max_samples,
        }
    )
    return resolved


def download_split(
    task: str,
    split: str,
    *,
    modalities: Sequence[str],
    repo_id: str | None = None,
    revision: str | None = None,
    cache_dir: str | None = None,
    max_samples: int | None = None,
    max_workers: int = 8,
) -> DownloadedSplit:
    """Fetch the files ``task`` needs for ``split`` and write its resolved manifest.

    ``repo_id`` (default ``RPX_HF_REPO`` or IRVLUTD/RPX) is ORG/NAME on the Hub or a local
    mirror folder; ``revision`` (default ``RPX_HF_REVISION`` or the pinned commit) a branch, tag
    or commit; ``cache_dir`` the huggingface_hub cache (default ``HF_HUB_CACHE``). Only the
    ``modalities`` (keys of MODALITY_FILES) of the clips of the first ``max_samples`` samples
    are fetched, and only those missing from the cache.

    Returns a DownloadedSplit. Raises ConfigError (unknown modality, bad max_samples),
    ManifestError (manifest missing, invalid, no clips, a path escaping the root),
    DatasetError (shard checksum mismatch, files named by the manifest missing, disk full),
    TransientDownloadError (Hub unreachable, timeout, HTTP 5xx/429: worth retrying) or
    DownloadError (unknown repo or revision, refused token, cold cache offline).
    """
    names = check_modalities(modalities)
    _check_max_samples(max_samples)
    source = open_source(repo_id or default_repo_id(), revision or default_revision(), cache_dir)
    manifest, pairs = _limit(source.manifest(task, split), max_samples)
    _require_clips(manifest, pairs, source, task, split)
    root = _fetch_split_files(source, manifest, pairs, names, task, split, max_workers)
    target = resolved_manifest_path(source.repo_id, task, split, max_samples, modalities=names)
    samples, missing = _extract_and_resolve(manifest, root, target, pairs, names)
    if missing:
        _raise_missing(missing, source, task, split, root, target)
    resolved = _resolved_manifest(manifest, samples, root, source, task, split, names, max_samples)
    _write_atomic(target, resolved)
    log.info("Resolved manifest: %s (root %s)", target, root)
    return DownloadedSplit(
        manifest_path=target,
        root=root,
        num_samples=len(samples),
        pairs=list(pairs),
        repo_id=source.repo_id,
        revision=source.commit,
        modalities=names,
    )


def describe_split(
    task: str,
    split: str,
    *,
    modalities: Sequence[str],
    repo_id: str | None = None,
    revision: str | None = None,
    cache_dir: str | None = None,
    max_samples: int | None = None,
) -> SplitDescription:
    """Read the manifest only (no data file) and say what a download of the split would fetch.

    Sizes come from the cached tree listing of the commit, else from the Hub's tree API per
    clip (or from the files of a local mirror). Raises like ``fetch_manifest``, plus
    ConfigError for an unknown modality or a bad ``max_samples``.
    """
    names = check_modalities(modalities)
    _check_max_samples(max_samples)
    source = open_source(repo_id or default_repo_id(), revision or default_revision(), cache_dir)
    manifest, pairs = _limit(source.manifest(task, split), max_samples)
    sizes = source.file_sizes(pairs, allow_patterns(pairs, names)) if pairs else {}
    total = estimated = files = None
    if sizes is not None:
        total, files = sum(sizes.values()), len(sizes)
        estimated = (
            0 if isinstance(source, MirrorSource) else sum(s for p, s in sizes.items() if not source.is_cached(p))
        )
    return SplitDescription(
        task=task,
        split=split,
        repo_id=source.repo_id,
        revision=source.commit if isinstance(source, HubSource) else None,
        scenes=sorted({scene for scene, _ in pairs}),
        pairs=list(pairs),
        num_samples=len(manifest["samples"]),
        modalities=names,
        estimated_bytes=estimated,
        total_bytes=total,
        num_files=files,
    )
