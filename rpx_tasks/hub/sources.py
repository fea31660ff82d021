"""Where the dataset comes from: the Hugging Face Hub (through its cache) or a local mirror folder.

Both sources answer the same three questions: the manifest of a task/split, the local folder
holding the files that match some patterns (fetching them first when needed), and the size of
those files. ``open_source`` picks one from the ``--repo`` value.

Hub notes (huggingface_hub 2.x):

- The revision is resolved to a commit once (``HfApi.resolve_revision``; one API call for a
  branch or tag, none for a commit sha or offline) and every later call is pinned to that
  commit, so the manifest and the data always come from the same commit. With a warm cache a
  pinned commit makes no request at all: the manifest and the per-commit tree listing are read
  from the cache (``trees/<sha>.json``) and every file is already in the snapshot.
- ``HF_ENDPOINT`` is read when a source is opened and passed as ``endpoint=``:
  ``huggingface_hub.constants.ENDPOINT`` is frozen at import time, so setting the variable later
  (tests, notebooks) would otherwise be ignored. ``HF_HUB_OFFLINE`` is likewise read at call
  time (and also honoured when only huggingface_hub's constant says so); offline, every call is
  made with ``local_files_only=True``.
- The token is huggingface_hub's own (``HF_TOKEN`` or the saved login); this code never reads it
  except to scrub it from error texts.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from pathlib import Path
from typing import Any, Callable, Sequence

from rpx_tasks.constants import REPO_TYPE
from rpx_tasks.errors import DownloadError, ManifestError
from rpx_tasks.manifest import manifest_relpath, read_manifest

from .failures import env_true, translate
from .modalities import clip_prefix

log = logging.getLogger(__name__)


def select(paths, patterns: Sequence[str]) -> list[str]:
    """The ``paths`` that match at least one pattern (fnmatch, ``*`` crosses ``/`` as on the Hub)."""
    return [p for p in paths if any(fnmatch.fnmatchcase(p, pattern) for pattern in patterns)]


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set now or was at import."""
    if env_true("HF_HUB_OFFLINE") or env_true("TRANSFORMERS_OFFLINE"):
        return True
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def looks_like_path(repo_id: str) -> bool:
    """True when ``repo_id`` names a local folder rather than ORG/NAME on the Hub."""
    if repo_id.startswith(("/", "./", "../", "~", ".\\")) or repo_id in (".", ".."):
        return True
    return Path(repo_id).expanduser().is_dir()


def mirror_manifest_stamp(repo_id: str, task: str, split: str) -> int | None:
    """Return the modification time (ns) of the manifest of ``task``/``split`` in a local mirror folder.

    None when ``repo_id`` names a Hub repo or the mirror has no such manifest. Cache keys
    include it, so a changed mirror is a new key. Raises nothing.
    """
    if not looks_like_path(repo_id):
        return None
    manifest = Path(repo_id).expanduser() / manifest_relpath(task, split)
    return manifest.stat().st_mtime_ns if manifest.is_file() else None


def _parse_manifest(path: Path, *, file: str, where: str) -> dict[str, Any]:
    try:
        manifest = read_manifest(path)
    except ManifestError as exc:
        raise ManifestError(
            f"{exc.message} (manifest {file} of {where})",
            hint=(
                "the manifest in the dataset repo is broken: try another "
                "--revision, or report it to the dataset maintainers"
            ),
            details={**exc.details, "file": file, "source": where},
        ) from exc
    samples = manifest.get("samples")
    if not isinstance(samples, list) or not all(isinstance(s, dict) for s in samples):
        raise ManifestError(
            f"Manifest {file} of {where} must hold a list of sample objects under 'samples'.",
            hint="the manifest in the dataset repo is broken: try another --revision, or report it",
            details={"file": file, "source": where},
        )
    return manifest


class MirrorSource:
    """A local folder laid out like the Hub repo; nothing is copied, huggingface_hub is not used."""

    is_mirror = True
    offline = False

    def __init__(self, folder: str, revision: str | None) -> None:
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise DownloadError(
                f"Local dataset folder {folder} does not exist.",
                hint="pass --repo ORG/NAME for a Hub repo, or the path of a folder laid out like it "
                "(manifests/, scenes/, manifest/checksums.json)",
                details={"repo_id": folder},
            )
        self.root = path.resolve()
        self.repo_id = str(self.root)
        self.revision = revision
        self.commit: str | None = None
        self.where = f"local folder {self.root}"

    def manifest(self, task: str, split: str) -> dict[str, Any]:
        file = manifest_relpath(task, split)
        if not (self.root / file).is_file():
            raise ManifestError(
                f"No manifest {file} in {self.where}.",
                hint="check the task and split names (`rpx ls`), and that the folder is laid out like the Hub repo",
                details={"file": file, "source": self.repo_id},
            )
        return _parse_manifest(self.root / file, file=file, where=self.where)

    def fetch(self, patterns: Sequence[str], *, max_workers: int = 8) -> Path:
        return self.root

    def file_sizes(self, pairs: Sequence[tuple[str, str]], patterns: Sequence[str]) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for scene, phase in pairs:
            clip = self.root / clip_prefix(scene, phase)
            if clip.is_dir():
                for path in clip.rglob("*"):
                    if path.is_file():
                        sizes[path.relative_to(self.root).as_posix()] = path.stat().st_size
        return {p: sizes[p] for p in select(sizes, patterns)}

    def is_cached(self, path: str) -> bool:
        return True


class HubSource:
    """A dataset repo on the Hub, fetched into the huggingface_hub cache (``cache_dir``)."""

    is_mirror = False

    def __init__(self, repo_id: str, revision: str, cache_dir: str | None) -> None:
        self.repo_id = repo_id
        self.revision = revision
        self.cache_dir = str(Path(cache_dir).expanduser()) if cache_dir else None
        self.offline = hub_offline()
        self.endpoint = os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or None
        self.where = f"{repo_id}@{revision}"
        self._resolved = None

    def _call(self, doing: str, fn: Callable[..., Any], *args, file: str | None = None, **kwargs) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise translate(
                exc, doing=doing, repo_id=self.repo_id, revision=self.revision, offline=self.offline, file=file
            ) from exc

    @property
    def resolved(self):
        """The revision pinned to its commit (``ResolvedRevision``); resolves on first use."""
        if self._resolved is None:
            from huggingface_hub import HfApi

            api = HfApi(endpoint=self.endpoint)
            self._resolved = self._call(
                "resolving the revision",
                api.resolve_revision,
                self.repo_id,
                repo_type=REPO_TYPE,
                revision=self.revision,
                cache_dir=self.cache_dir,
                local_files_only=self.offline,
            )
        return self._resolved

    @property
    def commit(self) -> str:
        return self.resolved.resolved

    def manifest(self, task: str, split: str) -> dict[str, Any]:
        from huggingface_hub import hf_hub_download

        file = manifest_relpath(task, split)
        revision = self.resolved
        local = self._call(
            f"fetching the manifest {file}",
            hf_hub_download,
            self.repo_id,
            file,
            repo_type=REPO_TYPE,
            revision=revision,
            cache_dir=self.cache_dir,
            endpoint=self.endpoint,
            local_files_only=self.offline,
            file=file,
        )
        return _parse_manifest(Path(local), file=file, where=f"{self.repo_id}@{self.commit}")

    def fetch(self, patterns: Sequence[str], *, max_workers: int = 8) -> Path:
        from huggingface_hub import snapshot_download

        revision = self.resolved
        log.info("Fetching %d pattern(s) from %s (commit %s)", len(patterns), self.where, self.commit)
        folder = self._call(
            "downloading the split's files",
            snapshot_download,
            self.repo_id,
            repo_type=REPO_TYPE,
            revision=revision,
            cache_dir=self.cache_dir,
            allow_patterns=list(patterns),
            max_workers=max_workers,
            endpoint=self.endpoint,
            local_files_only=self.offline,
        )
        return Path(folder)

    def _snapshot_dir(self) -> Path:
        from huggingface_hub import constants
        from huggingface_hub.file_download import repo_folder_name

        cache = Path(self.cache_dir or constants.HF_HUB_CACHE).expanduser()
        return cache / repo_folder_name(repo_id=self.repo_id, repo_type=REPO_TYPE) / "snapshots" / self.commit

    def is_cached(self, path: str) -> bool:
        return (self._snapshot_dir() / path).exists()

    def file_sizes(self, pairs: Sequence[tuple[str, str]], patterns: Sequence[str]) -> dict[str, int] | None:
        """Sizes of the repo files matching ``patterns``, from the cached tree listing or the Hub.

        Returns None when offline and the listing of this commit is not cached.
        """
        from huggingface_hub import HfApi, get_cached_repo_tree
        from huggingface_hub.errors import CachedRepoTreeNotFoundError, RemoteEntryNotFoundError
        from huggingface_hub.hf_api import RepoFile

        try:
            tree = get_cached_repo_tree(
                self.repo_id, repo_type=REPO_TYPE, revision=self.commit, cache_dir=self.cache_dir
            )
            sizes = {f.path: f.size for f in tree}
        except CachedRepoTreeNotFoundError:
            if self.offline:
                return None
            api = HfApi(endpoint=self.endpoint)
            sizes = {}
            for scene, phase in pairs:
                try:
                    entries = list(
                        api.list_repo_tree(
                            self.repo_id,
                            path_in_repo=clip_prefix(scene, phase),
                            recursive=True,
                            revision=self.commit,
                            repo_type=REPO_TYPE,
                        )
                    )
                except RemoteEntryNotFoundError:  # a clip folder the repo does not have
                    continue
                except Exception as exc:
                    raise translate(
                        exc,
                        doing="listing the split's files",
                        repo_id=self.repo_id,
                        revision=self.revision,
                        offline=self.offline,
                    ) from exc
                sizes.update({f.path: f.size for f in entries if isinstance(f, RepoFile)})
        return {p: sizes[p] for p in select(sizes, patterns)}


def open_source(repo_id: str, revision: str, cache_dir: str | None) -> MirrorSource | HubSource:
    """A MirrorSource when ``repo_id`` is a local folder (or looks like a path), else a HubSource.

    Raises DownloadError when a path-like ``repo_id`` does not exist.
    """
    if looks_like_path(repo_id):
        return MirrorSource(repo_id, revision)
    return HubSource(repo_id, revision, cache_dir)
