"""A small Hugging Face Hub look-alike for tests, and the tiny RPX datasets it serves.

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

``build_repo_files(layout)`` generates the dataset in the RPX Hub layout, ``"loose"`` (frames
under ``scenes/<scene>/<phase>/<modality>/``) or ``"sharded"`` (per-clip tar shards plus
``manifest/checksums.json``, manifests pointing at ``extracted/scenes/...``).
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import io
import json
import re
import socket
import struct
import tarfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
from PIL import Image

# ---------------------------------------------------------------------------------------------
# The dataset
# ---------------------------------------------------------------------------------------------

SPLIT_SCENES: dict[str, tuple[str, ...]] = {"hard": ("scene_h1", "scene_h2"), "easy": ("scene_e1",)}
PHASE_FOLDERS: tuple[str, ...] = ("0", "1", "2")
FRAMES_PER_CLIP = 2
IMAGE_SIZE = (8, 6)  # (width, height)

# Where each modality lives: loose folder, shard path (relative to the clip), member folder in the shard.
_LAYOUT = {
    "rgb": ("rgb", "rgb.tar", "rgb", ".png"),
    "depth": ("depth", "depth.tar", "depth", ".png"),
    "mask": ("mask", "labels/masks/v1.tar", "sam2/masks", ".png"),
    "pose": ("pose", "labels/cam_pose/v1.tar", "cam_pose", ".npz"),
}

# Task -> sample keys -> modality, for the manifests the test repos carry.
TASK_KEYS: dict[str, dict[str, str]] = {
    "monocular_depth": {"rgb": "rgb", "depth": "depth"},
    "object_segmentation": {"rgb": "rgb", "mask": "mask"},
    "novel_view_synthesis": {"rgb": "rgb", "depth": "depth", "pose": "pose"},
}


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")  # uint16 -> 16-bit PNG ("I;16")
    return buffer.getvalue()


def _frame_files(scene: str, phase: str, frame: int) -> dict[str, bytes]:
    """The four modality files of one frame: RGB 8-bit, depth 16-bit mm, mask ids, pose npz."""
    seed = int(hashlib.sha1(f"{scene}/{phase}/{frame}".encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng(seed)
    width, height = IMAGE_SIZE
    rgb = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    depth = rng.integers(300, 5000, size=(height, width), dtype=np.uint16)
    depth[0, 0] = 0  # one invalid pixel, as real D435 frames have
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[1:4, 2:6] = 1 + int(phase)
    mask[5, :] = rng.integers(0, 3, size=width)  # every frame's bytes differ (no cache dedup)
    pose = io.BytesIO()
    np.savez(pose, position=rng.normal(size=3), orientation=np.array([0.0, 0.0, 0.0, 1.0]))
    return {"rgb": _png(rgb), "depth": _png(depth), "mask": _png(mask), "pose": pose.getvalue()}


def _tar(members: dict[str, bytes]) -> bytes:
    """A content-stable tar: sorted members, zero mtime, root owner."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(members):
            info = tarfile.TarInfo(name)
            info.size = len(members[name])
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(members[name]))
    return buffer.getvalue()


def stem(frame: int) -> str:
    return f"{frame:05d}"


def sample_path(layout: str, scene: str, phase: str, modality: str, frame: int) -> str:
    """Repo-relative path of one frame file as the manifests of ``layout`` name it."""
    loose_folder, _, member_folder, suffix = _LAYOUT[modality]
    if layout == "loose":
        return f"scenes/{scene}/{phase}/{loose_folder}/{stem(frame)}{suffix}"
    return f"extracted/scenes/{scene}/{phase}/{member_folder}/{stem(frame)}{suffix}"


def _manifest(task: str, split: str, layout: str) -> dict:
    samples = []
    for scene in SPLIT_SCENES[split]:
        for phase in PHASE_FOLDERS:
            for frame in range(FRAMES_PER_CLIP):
                entry = {
                    "id": f"{scene}__{phase}__{stem(frame)}",
                    "scene_id": scene,
                    "phase": int(phase),
                    "frame_idx": frame,
                    "difficulty": split,
                    "metadata": {"scene_id": scene, "phase_idx": int(phase), "frame": stem(frame)},
                }
                for key, modality in TASK_KEYS[task].items():
                    entry[key] = sample_path(layout, scene, phase, modality, frame)
                samples.append(entry)
    return {"task": task, "split": split, "root": None, "samples": samples}


@functools.lru_cache(maxsize=None)
def _build_repo_files(layout: str) -> tuple[tuple[str, bytes], ...]:
    if layout not in ("loose", "sharded"):
        raise ValueError(f"unknown layout {layout!r}")
    files: dict[str, bytes] = {
        ".gitattributes": b"*.tar filter=lfs diff=lfs merge=lfs -text\n*.png filter=lfs diff=lfs merge=lfs -text\n",
        "README.md": b"# RPX test dataset\n",
        "metadata/scenes.parquet": b"not really parquet",
    }
    checksums: dict[str, str] = {}
    for scenes in SPLIT_SCENES.values():
        for scene in scenes:
            for phase in PHASE_FOLDERS:
                frames = [_frame_files(scene, phase, frame) for frame in range(FRAMES_PER_CLIP)]
                for modality, (loose_folder, shard, member_folder, suffix) in _LAYOUT.items():
                    if layout == "loose":
                        for frame, data in enumerate(frames):
                            files[f"scenes/{scene}/{phase}/{loose_folder}/{stem(frame)}{suffix}"] = data[modality]
                    else:
                        members = {
                            f"{member_folder}/{stem(f)}{suffix}": data[modality] for f, data in enumerate(frames)
                        }
                        path = f"scenes/{scene}/{phase}/{shard}"
                        files[path] = _tar(members)
                        checksums[path] = hashlib.sha256(files[path]).hexdigest()
    if layout == "sharded":
        files["manifest/checksums.json"] = json.dumps({"sha256": checksums}, indent=1, sort_keys=True).encode()
    for task in TASK_KEYS:
        for split in SPLIT_SCENES:
            files[f"manifests/{task}/{split}.json"] = json.dumps(_manifest(task, split, layout)).encode()
    return tuple(sorted(files.items()))


def build_repo_files(layout: str) -> dict[str, bytes]:
    """A fresh ``{repo path: bytes}`` dict of the test dataset in ``layout`` ("loose" or "sharded")."""
    return dict(_build_repo_files(layout))


def write_repo_files(files: dict[str, bytes], folder: Path) -> Path:
    """Write ``files`` under ``folder`` (a local mirror laid out like the Hub repo); return the folder."""
    for path, data in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return folder


def files_of(layout: str, scenes, phases=PHASE_FOLDERS, modalities=("rgb", "depth", "mask", "pose")) -> set[str]:
    """Repo paths of the data files of ``modalities`` for ``scenes`` x ``phases`` in ``layout``."""
    out: set[str] = set()
    for scene in scenes:
        for phase in phases:
            for modality in modalities:
                loose_folder, shard, _, suffix = _LAYOUT[modality]
                if layout == "loose":
                    out.update(
                        f"scenes/{scene}/{phase}/{loose_folder}/{stem(f)}{suffix}" for f in range(FRAMES_PER_CLIP)
                    )
                else:
                    out.add(f"scenes/{scene}/{phase}/{shard}")
    return out


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------


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
