"""Verify and extract per-clip tar shards into ``extracted/`` under the dataset root (reference §4.4).

``scenes/<scene>/<phase>/rgb.tar`` holding ``rgb/00000.png`` extracts to
``extracted/scenes/<scene>/<phase>/rgb/00000.png``. Before extraction the shard's SHA-256 is
checked against ``manifest/checksums.json`` when that file lists it. Members already extracted
with the same size are skipped, each file is written to ``<name>.part`` and renamed, members
whose path would leave the target folder are refused, and one file lock per root serialises
concurrent extractions. A finished shard leaves a small marker (``extracted/.shards/<shard>.json``
with the shard's real path, size, mtime and the checksum it was verified against) so that
later runs skip both hashing and extraction.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tarfile
from pathlib import Path, PurePosixPath
from typing import Sequence

from rpx_tasks.errors import DatasetError

from .failures import disk_full
from .modalities import CHECKSUMS_PATH

log = logging.getLogger(__name__)

EXTRACTED_DIR = "extracted"
MARKER_DIR = ".shards"
LOCK_NAME = ".rpx-extraction.lock"
_CHUNK = 1 << 20


def read_checksums(root: Path) -> dict[str, str]:
    """SHA-256 per repo path from ``manifest/checksums.json`` under ``root``; {} when absent.

    Accepts ``{"sha256": {path: hex}}`` (the published form) or a flat ``{path: hex}``.
    Raises DatasetError when the file exists but is not such a JSON object.
    """
    path = root / CHECKSUMS_PATH
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(
            f"{CHECKSUMS_PATH} in {root} is not valid JSON: {exc}",
            hint="the download of the checksum file is damaged: delete it from the cache and download again",
            details={"path": str(path)},
        ) from exc
    table = data.get("sha256", data) if isinstance(data, dict) else None
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise DatasetError(
            f"{CHECKSUMS_PATH} in {root} must map shard paths to SHA-256 hex strings.",
            hint='expected {"sha256": {"scenes/<scene>/<phase>/rgb.tar": "<hex>", ...}}',
            details={"path": str(path)},
        )
    return {str(k): v.lower() for k, v in table.items()}


def extraction_base(shard: str) -> str | None:
    """``extracted/<top>/<name>/<phase>`` for a shard ``<top>/<name>/<phase>/...tar``; None otherwise."""
    parts = PurePosixPath(shard).parts
    if len(parts) < 4:
        return None
    return "/".join((EXTRACTED_DIR, *parts[:3]))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _identity(path: Path) -> dict:
    real = Path(os.path.realpath(path))
    stat = real.stat()
    return {"source": str(real), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _marker_path(root: Path, shard: str) -> Path:
    return root / EXTRACTED_DIR / MARKER_DIR / f"{shard}.json"


def _is_done(root: Path, shard: str, expected_sha: str | None) -> bool:
    try:
        marker = json.loads(_marker_path(root, shard).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return marker.get("identity") == _identity(root / shard) and marker.get("sha256") == expected_sha


def _write_marker(root: Path, shard: str, expected_sha: str | None) -> None:
    marker = _marker_path(root, shard)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_name(marker.name + ".part")
        tmp.write_text(json.dumps({"identity": _identity(root / shard), "sha256": expected_sha}), encoding="utf-8")
        os.replace(tmp, marker)
    except OSError as exc:  # a read-only, pre-extracted mirror: the next run checks again
        log.debug("Could not record extraction of %s: %s", shard, exc)


def _extraction_lock(root: Path):
    """An exclusive file lock on ``root``; a no-op when ``root`` is read-only (nothing can be written anyway)."""
    from filelock import FileLock

    lock_path = root / LOCK_NAME
    if os.access(root, os.W_OK):
        return FileLock(str(lock_path))
    log.debug("%s is read-only: extracting without a lock", root)
    return contextlib.nullcontext()


def _discard_cached_blob(pointer: Path) -> None:
    """Remove a bad shard from the HF cache (pointer symlink and its blob) so a rerun fetches it again.

    Only acts on a symlink into a ``blobs`` folder, i.e. inside an HF cache snapshot; files of a
    local mirror are never touched.
    """
    if not pointer.is_symlink():
        return
    blob = Path(os.path.realpath(pointer))
    if blob.parent.name != "blobs":
        return
    for path in (pointer, blob):
        try:
            path.unlink()
        except OSError:
            pass


def _refuse(shard: str, member: str, why: str) -> DatasetError:
    return DatasetError(
        f"Shard {shard} holds member {member!r} that {why}; refusing to extract it.",
        hint="the shard is malformed or malicious; report it to the dataset maintainers",
        details={"shard": shard, "member": member},
    )


def _extract_one(root: Path, shard: str, base: Path) -> tuple[int, int]:
    written = skipped = 0
    real_base = Path(os.path.realpath(base))
    with tarfile.open(root / shard, mode="r:*") as tar:
        for member in tar:
            name = PurePosixPath(member.name)
            if member.isdir():
                continue
            if name.is_absolute() or ".." in name.parts:
                raise _refuse(shard, member.name, "escapes the target folder")
            if not member.isreg():
                log.warning("Skipping %s in %s: not a regular file", member.name, shard)
                continue
            target = base.joinpath(*[p for p in name.parts if p not in ("", ".")])
            target.parent.mkdir(parents=True, exist_ok=True)
            if not Path(os.path.realpath(target.parent)).is_relative_to(real_base):
                raise _refuse(shard, member.name, "escapes the target folder through a link")
            if target.is_file() and not target.is_symlink() and target.stat().st_size == member.size:
                skipped += 1
                continue
            source = tar.extractfile(member)
            part = target.with_name(target.name + ".part")
            with source, open(part, "wb") as out:
                shutil.copyfileobj(source, out, _CHUNK)
            os.replace(part, target)
            written += 1
    return written, skipped


def extract_shards(root: Path, shards: Sequence[str], *, checksums: dict[str, str] | None = None) -> tuple[int, int]:
    """Verify and extract the shards (repo paths) that exist under ``root``.

    Returns (#members written, #members skipped). Shards absent from ``root`` are ignored.
    Raises DatasetError naming the shard when its SHA-256 differs from ``checksums`` (the bad
    shard is then removed from an HF cache so that the next run fetches it again), when it is
    not a readable tar, when a member would escape the target folder, or when the disk is full.
    """
    checksums = checksums if checksums is not None else read_checksums(root)
    todo = [s for s in shards if (root / s).is_file() and not _is_done(root, s, checksums.get(s))]
    if not todo:
        return 0, 0
    written = skipped = 0
    with _extraction_lock(root):
        for shard in todo:
            expected = checksums.get(shard)
            if _is_done(root, shard, expected):  # another process finished it while we waited
                continue
            base_rel = extraction_base(shard)
            if base_rel is None:
                log.warning("Not extracting %s: expected <top>/<scene>/<phase>/... ", shard)
                continue
            try:
                if expected is not None:
                    actual = sha256_of(root / shard)
                    if actual != expected:
                        _discard_cached_blob(root / shard)
                        raise DatasetError(
                            f"Shard {shard} failed its checksum: SHA-256 {actual} differs from {expected} "
                            f"in {CHECKSUMS_PATH}.",
                            hint="the shard is damaged or was changed; it has been removed from the cache, so "
                            "rerun to fetch it again; if the mismatch persists, report it to the dataset maintainers",
                            details={"shard": shard, "expected_sha256": expected, "actual_sha256": actual},
                        )
                counts = _extract_one(root, shard, root / base_rel)
            except tarfile.TarError as exc:
                _discard_cached_blob(root / shard)
                raise DatasetError(
                    f"Shard {shard} is not a readable tar archive: {exc}",
                    hint="the download is damaged; it has been removed from the cache, so rerun to fetch it again",
                    details={"shard": shard},
                ) from exc
            except OSError as exc:
                if disk_full(exc):
                    raise DatasetError(
                        f"Disk full while extracting shard {shard} into {root / base_rel}.",
                        hint="free some space, or pass --cache-dir to a disk with room",
                        details={"shard": shard},
                    ) from exc
                raise DatasetError(
                    f"Could not extract shard {shard} into {root / base_rel}: {exc}",
                    hint="the dataset folder must be writable (for a read-only mirror, extract the shards beforehand)",
                    details={"shard": shard},
                ) from exc
            written += counts[0]
            skipped += counts[1]
            _write_marker(root, shard, expected)
            log.info("Extracted %s: %d new file(s), %d already present", shard, *counts)
    return written, skipped
