"""A small Hugging Face Hub look-alike for tests.

``HubServer`` runs ``http.server.ThreadingHTTPServer`` on 127.0.0.1 (free port) in a
background thread and speaks the part of the Hub API that ``huggingface_hub`` uses to
download datasets:

- ``GET /api/datasets/<repo>/revision/<rev>``: ``{id, sha, siblings, private}``
- ``GET /api/datasets/<repo>/tree/<rev>[/<path>]?recursive=true``: ``[{type, oid, size, path, lfs?}]``
- ``HEAD`` / ``GET /datasets/<repo>/resolve/<rev>/<path>``: ``X-Repo-Commit``, ``ETag``,
  ``Content-Length``, ``Accept-Ranges``; ``Range: bytes=N-`` gives ``206``
- 404 answers carry ``X-Error-Code``: ``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``;
  a private repo answers 401 ``RepoNotFound`` unless ``Authorization: Bearer <token>`` matches.

Every request is recorded (method, path, query, headers without ``Authorization``, whether an
Authorization header was sent, status). Faults can be injected per path pattern: a connection
reset, an HTTP status (e.g. 503) N times, a truncated body, or a slow answer.

``serve_dataset()`` starts one holding the test dataset of ``tests/support/hub_dataset.py``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from tests.support.hub_dataset import build_repo_files


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _is_lfs(path: str) -> bool:
    return path.endswith((".tar", ".png", ".npz", ".parquet"))


class HubRepo:
    """One dataset repo: files at one commit, reachable by ``main``, extra refs, or the sha."""

    def __init__(self, repo_id: str, files: dict[str, bytes], *, refs: tuple[str, ...] = (), token: str | None = None):
        self.repo_id = repo_id
        self.files = dict(files)
        digest = hashlib.sha1()
        for path in sorted(self.files):
            digest.update(path.encode() + b"\0" + hashlib.sha256(self.files[path]).digest())
        self.commit = digest.hexdigest()
        self.refs = {"main": self.commit, **{ref: self.commit for ref in refs}}
        self.token = token

    def resolve(self, revision: str) -> str | None:
        if revision in self.refs:
            return self.refs[revision]
        return self.commit if revision == self.commit else None

    def etag(self, path: str) -> str:
        data = self.files[path]
        return hashlib.sha256(data).hexdigest() if _is_lfs(path) else git_blob_id(data)

    def tree_entry(self, path: str) -> dict:
        data = self.files[path]
        entry = {"type": "file", "oid": git_blob_id(data), "size": len(data), "path": path}
        if _is_lfs(path):
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return entry


@dataclass
class RecordedRequest:
    method: str
    path: str  # URL path, percent-decoded, without the query
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names, without Authorization
    authorized: bool  # an Authorization header was sent
    status: int | None = None  # None when the connection was reset or cut

    @property
    def repo_file(self) -> str | None:
        """The repo path of a ``/resolve/`` request, else None."""
        match = re.match(r"^/datasets/[^/]+/[^/]+/resolve/[^/]+/(.+)$", self.path)
        return match.group(1) if match else None


@dataclass
class Fault:
    """Misbehave on requests whose path matches ``pattern`` (fnmatch on the decoded URL path).

    ``kind``: "reset" (close the connection with a TCP RST, no answer), "status" (answer
    ``status``), "truncate" (announce the full Content-Length, send half the body, close the
    connection cleanly), or
    "slow" (sleep ``delay`` seconds, then answer normally). The first ``skip`` matching
    requests pass untouched; the fault then fires ``times`` times (-1: always).
    """

    pattern: str
    kind: str
    times: int = 1
    skip: int = 0
    method: str | None = "GET"
    status: int = 503
    delay: float = 0.0
    fired: int = 0
    seen: int = 0

    def take(self, method: str, path: str) -> bool:
        if self.method is not None and method != self.method:
            return False
        if not fnmatch.fnmatchcase(path, self.pattern):
            return False
        self.seen += 1
        if self.seen <= self.skip or (self.times >= 0 and self.fired >= self.times):
            return False
        self.fired += 1
        return True


class HubServer:
    """A Hub-API server on 127.0.0.1 for tests; ``url`` is the value for ``HF_ENDPOINT``."""

    def __init__(self) -> None:
        self.repos: dict[str, HubRepo] = {}
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "HubServer":
        handler = type("BoundHubHandler", (_HubHandler,), {"hub": self})
        self._httpd = _QuietServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="hub-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # -- set-up ------------------------------------------------------------------------------
    def add_repo(self, repo_id: str, files: dict[str, bytes], **kwargs) -> HubRepo:
        repo = HubRepo(repo_id, files, **kwargs)
        self.repos[repo_id] = repo
        return repo

    def add_fault(self, pattern: str, kind: str, **kwargs) -> Fault:
        fault = Fault(pattern, kind, **kwargs)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        """Forget recorded requests and faults."""
        with self._lock:
            self.requests.clear()
            self.faults.clear()

    # -- queries -----------------------------------------------------------------------------
    def fetched_files(self, method: str = "GET") -> list[str]:
        """Repo paths requested through ``/resolve/`` with ``method``, in request order."""
        with self._lock:
            return [r.repo_file for r in self.requests if r.method == method and r.repo_file is not None]

    def api_calls(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.requests if r.path.startswith("/api/")]

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _fault_for(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.take(method, path):
                    return fault
        return None


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops SYNs under 8 parallel downloads: 1 s stalls

    def handle_error(self, request, client_address) -> None:  # resets are intentional
        pass


class _HubHandler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.0"  # one request per connection: a cut body is unambiguous

    def log_message(self, format, *args) -> None:
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    # -- dispatch ----------------------------------------------------------------------------
    def _serve(self, method: str) -> None:
        split = urlsplit(self.path)
        path = unquote(split.path)
        headers = {k.lower(): v for k, v in self.headers.items() if k.lower() != "authorization"}
        record = RecordedRequest(method, path, parse_qs(split.query), headers, "Authorization" in self.headers)
        self.hub._record(record)
        self._record = record
        fault = self.hub._fault_for(method, path)
        if fault is not None and fault.kind == "reset":
            self._reset()
            return
        if fault is not None and fault.kind == "status":
            self._error(fault.status, None, f"injected {fault.status}")
            return
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
        self._truncate = fault is not None and fault.kind == "truncate"

        match = re.match(r"^/api/datasets/([^/]+/[^/]+)/(revision|tree)/([^/]+)(?:/(.*))?$", path)
        if match:
            repo_id, endpoint, revision, sub = match.groups()
            repo, commit = self._open(repo_id, revision)
            if repo is None:
                return
            if endpoint == "revision":
                self._json(
                    {
                        "id": repo_id,
                        "sha": commit,
                        "private": repo.token is not None,
                        "siblings": [{"rfilename": p} for p in sorted(repo.files)],
                    }
                )
            else:
                self._tree(repo, commit, sub or "", record.query)
            return
        match = re.match(r"^/datasets/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
        if match:
            repo_id, revision, file_path = match.groups()
            repo, commit = self._open(repo_id, revision)
            if repo is not None:
                self._file(method, repo, commit, file_path)
            return
        self._error(404, None, "unknown endpoint")

    def _open(self, repo_id: str, revision: str) -> tuple[HubRepo | None, str | None]:
        repo = self.hub.repos.get(repo_id)
        if repo is not None and repo.token is not None:
            if self.headers.get("Authorization") != f"Bearer {repo.token}":
                self._error(401, "RepoNotFound", "Repository not found")
                return None, None
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return None, None
        commit = repo.resolve(revision)
        if commit is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return None, None
        return repo, commit

    # -- answers -----------------------------------------------------------------------------
    def _tree(self, repo: HubRepo, commit: str, sub: str, query: dict) -> None:
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        prefix = sub.strip("/") + "/" if sub.strip("/") else ""
        if prefix and not any(p.startswith(prefix) for p in repo.files):
            self._error(404, "EntryNotFound", f"{sub} does not exist on {commit}")
            return
        entries: list[dict] = []
        folders: set[str] = set()
        for path in sorted(repo.files):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix) :]
            if recursive or "/" not in rest:
                entries.append(repo.tree_entry(path))
            parts = rest.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                if recursive or depth == 1:
                    folders.add(prefix + "/".join(parts[:depth]))
        entries.extend(
            {"type": "directory", "oid": git_blob_id(f.encode()), "size": 0, "path": f} for f in sorted(folders)
        )
        self._json(entries)

    def _file(self, method: str, repo: HubRepo, commit: str, path: str) -> None:
        if path not in repo.files:
            self._error(404, "EntryNotFound", f"{path} does not exist", commit=commit)
            return
        data = repo.files[path]
        start = 0
        range_header = self.headers.get("Range")
        if method == "GET" and range_header:
            match = re.match(r"bytes=(\d+)-$", range_header.strip())
            if match:
                start = int(match.group(1))
        status = 206 if start else 200
        if start >= len(data) and start:
            self._error(416, None, "range not satisfiable", commit=commit)
            return
        body = data[start:]
        self.send_response(status)
        self.send_header("X-Repo-Commit", commit)
        self.send_header("ETag", f'"{repo.etag(path)}"')
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if method == "HEAD":
            self._record.status = status
            return
        if self._truncate:  # announce the full length, send half, close cleanly (FIN)
            self.wfile.write(body[: max(1, len(body) // 2)])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)
        self._record.status = status

    def _json(self, payload) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._record.status = 200

    def _error(self, status: int, code: str | None, message: str, *, commit: str | None = None) -> None:
        body = json.dumps({"error": message}).encode()
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        if commit:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._record.status = status

    def _reset(self) -> None:
        """Drop the connection with a TCP RST (SO_LINGER 0) instead of a clean close."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass


def serve_dataset(layouts=("loose", "sharded"), prefix: str = "rpx-test") -> HubServer:
    """Start a server holding ``<prefix>/<layout>`` for each layout (also reachable at ``v1``)."""
    server = HubServer().start()
    for layout in layouts:
        server.add_repo(f"{prefix}/{layout}", build_repo_files(layout), refs=("v1",))
    return server
