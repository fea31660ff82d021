"""Turn whatever ``huggingface_hub``, ``httpx2`` or the OS raised into an RPX error with a hint.

Transient failures (connection reset or refused, timeout, HTTP 408/429/5xx, a body cut short)
become ``TransientDownloadError`` so the orchestration layer can retry exactly those. The HF
token never appears in a message, hint or detail: every text is passed through ``redact``.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass
from typing import Any, Iterator

from rpx_tasks.errors import ConfigError, DownloadError, ManifestError, RPXError, TransientDownloadError

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})

OFFLINE_HINT = (
    "the local cache does not hold this yet: run the same command once with network access "
    "(unset HF_HUB_OFFLINE) to fill it, point --cache-dir at a cache that has it, "
    "or pass --repo <local directory> laid out like the Hub repo"
)
TRANSIENT_HINT = (
    "this looks temporary (network or server trouble): retry in a moment; with a warm cache, "
    "HF_HUB_OFFLINE=1 runs without the network"
)


def env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _known_tokens() -> list[str]:
    tokens = [os.environ.get("HF_TOKEN"), os.environ.get("HUGGING_FACE_HUB_TOKEN")]
    try:
        from huggingface_hub import get_token

        tokens.append(get_token())
    except Exception:  # an unreadable token file: nothing more to hide
        pass
    return [t.strip() for t in tokens if t and len(t.strip()) >= 4]


def redact(value: Any) -> Any:
    """Replace any HF token in ``value`` (a str, or a dict/list of them) by ``***``."""
    if isinstance(value, str):
        for token in _known_tokens():
            value = value.replace(token, "***")
        return re.sub(r"(?i)(bearer\s+)\S+", r"\1***", value)
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v) for v in value)
    return value


def redacted(error: RPXError) -> RPXError:
    """Return a copy of ``error`` of the same type whose message, hint and details hold no token."""
    return type(error)(redact(error.message), hint=redact(error.hint), details=redact(error.details))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None) if response is not None else None


def short(exc: BaseException) -> str:
    """``Type: message`` on one line, at most 300 characters."""
    text = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) is worth retrying: network trouble, 408/429/5xx."""
    try:
        import httpx2

        transient_types: tuple[type, ...] = (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)
        proxy = httpx2.ProxyError
    except ImportError:  # pragma: no cover - httpx2 ships with huggingface_hub 2.x
        transient_types, proxy = (), ()
    for cause in _chain(exc):
        if type(cause).__name__ == "OfflineModeIsEnabled" or (proxy and isinstance(cause, proxy)):
            return False
        if isinstance(cause, transient_types) or isinstance(cause, (ConnectionError, TimeoutError)):
            return True
        status = _status(cause)
        if status is not None and (status in TRANSIENT_STATUS or status >= 500):
            return True
        if isinstance(cause, OSError) and "Consistency check failed" in str(cause):
            return True
    return False


def disk_full(exc: BaseException) -> bool:
    return any(isinstance(c, OSError) and c.errno in (errno.ENOSPC, errno.EDQUOT) for c in _chain(exc))


@dataclass(frozen=True)
class _Failure:
    """What ``translate`` knows about one failure: the exception and the fetch it interrupted."""

    exc: BaseException
    doing: str
    repo_id: str
    revision: str | None
    offline: bool
    file: str | None
    details: dict[str, Any]
    where: str


def _disk_full_error(failure: _Failure) -> RPXError | None:
    """A DownloadError when the disk (or quota) filled up, else None."""
    if not disk_full(failure.exc):
        return None
    return DownloadError(
        f"Disk full while {failure.doing} from {failure.where}.",
        hint="free some space, or pass --cache-dir (or set HF_HUB_CACHE) to a disk with room",
        details=failure.details,
    )


def _missing_repo_error(failure: _Failure, hf: Any) -> RPXError | None:
    """An error for a gated or unknown repo, an unknown revision or a missing manifest, else None."""
    exc, repo_id, doing, details = failure.exc, failure.repo_id, failure.doing, failure.details
    if isinstance(exc, hf.GatedRepoError):
        return DownloadError(
            f"Dataset repo {repo_id} is gated: access was refused while {doing}.",
            hint=f"accept the conditions on the repo page of {repo_id}, then log in (`hf auth login`) or set HF_TOKEN",
            details=details,
        )
    if isinstance(exc, hf.RepositoryNotFoundError):
        return DownloadError(
            f"Dataset repo {repo_id} was not found (or is private) while {doing}.",
            hint="check --repo / RPX_HF_REPO (ORG/NAME of a dataset repo, or a local directory); "
            "a private repo needs HF_TOKEN or `hf auth login`",
            details=details,
        )
    if isinstance(exc, hf.RevisionNotFoundError):
        return DownloadError(
            f"Revision {failure.revision!r} does not exist in dataset repo {repo_id}.",
            hint="check --revision / RPX_HF_REVISION (a branch, tag or commit sha of the repo)",
            details=details,
        )
    if isinstance(exc, hf.RemoteEntryNotFoundError) and failure.file is not None:
        return ManifestError(
            f"No manifest {failure.file} in {failure.where}.",
            hint="check the task and split names (`rpx ls`), and that this revision of the repo has manifests for them",
            details={**details, "file": failure.file},
        )
    return None


def _access_denied_error(failure: _Failure) -> RPXError | None:
    """A DownloadError when the Hub answered HTTP 401 or 403, else None."""
    if _status(failure.exc) not in (401, 403):
        return None
    return DownloadError(
        f"Access denied by the Hub while {failure.doing} from {failure.where} (HTTP {_status(failure.exc)}).",
        hint="set HF_TOKEN or run `hf auth login` with an account that can read the repo",
        details=failure.details,
    )


def _network_error(failure: _Failure) -> RPXError | None:
    """A DownloadError for a cold cache offline, a TransientDownloadError for network trouble, else None."""
    exc, doing, where, details = failure.exc, failure.doing, failure.where, failure.details
    if failure.offline or "OfflineModeIsEnabled" in {type(c).__name__ for c in _chain(exc)}:
        return DownloadError(
            f"Offline mode (HF_HUB_OFFLINE=1): {where} is not in the local cache (needed while {doing}).",
            hint=OFFLINE_HINT,
            details={**details, "offline": True},
        )
    if is_transient(exc):
        return TransientDownloadError(
            f"Could not reach the Hugging Face Hub while {doing} from {where}: {short(exc)}",
            hint=TRANSIENT_HINT + ", or pass --repo <local directory>",
            details={**details, "endpoint": os.environ.get("HF_ENDPOINT") or "https://huggingface.co"},
        )
    return None


def _local_setup_error(failure: _Failure, hf: Any) -> RPXError | None:
    """A DownloadError for an unwritable cache, a ConfigError for an invalid repo id, else None."""
    exc, details = failure.exc, failure.details
    if isinstance(exc, PermissionError):
        return DownloadError(
            f"Permission denied while {failure.doing}: {short(exc)}",
            hint="pass --cache-dir (or set HF_HUB_CACHE) to a folder you can write",
            details=details,
        )
    if isinstance(exc, hf.HFValidationError):
        return ConfigError(
            f"{failure.repo_id!r} is not a valid dataset repo id: {short(exc)}",
            hint="use ORG/NAME for a Hub repo, or the path of an existing local directory",
            details=details,
        )
    return None


def _unclassified_error(failure: _Failure) -> RPXError:
    """The DownloadError for a failure no other family claimed."""
    return DownloadError(
        f"Download failed while {failure.doing} from {failure.where}: {short(failure.exc)}",
        hint=(
            "rerun with --cache-dir pointing at a writable folder; "
            "with a warm cache, HF_HUB_OFFLINE=1 avoids the network"
        ),
        details=failure.details,
    )


def translate(
    exc: BaseException,
    *,
    doing: str,
    repo_id: str,
    revision: str | None,
    offline: bool,
    file: str | None = None,
) -> RPXError:
    """The RPX error for ``exc``, raised while ``doing`` (e.g. "fetching the manifest").

    ``file`` names the repo file being fetched (the manifest); a missing file then becomes a
    ManifestError. Returns (does not raise) an RPXError whose texts hold no token.
    """
    if isinstance(exc, RPXError):
        return redacted(exc)
    from huggingface_hub import errors as hf

    failure = _Failure(
        exc=exc,
        doing=doing,
        repo_id=repo_id,
        revision=revision,
        offline=offline,
        file=file,
        details={"repo_id": repo_id, "revision": revision, "cause": short(exc)},
        where=f"{repo_id}@{revision}" if revision else repo_id,
    )
    # The families are tried in this order; the first that recognises the failure names it.
    error = (
        _disk_full_error(failure)
        or _missing_repo_error(failure, hf)
        or _access_denied_error(failure)
        or _network_error(failure)
        or _local_setup_error(failure, hf)
        or _unclassified_error(failure)
    )
    return redacted(error)
