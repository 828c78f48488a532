"""A tiny fake Hugging Face hub on 127.0.0.1 for download tests (no network needed).

Serves what `huggingface_hub.hf_hub_download` / `snapshot_download` ask for:

- HEAD/GET `/{org}/{name}/resolve/{revision}/{path}` with `X-Repo-Commit` (40 hex), `ETag`
  (sha256 for weight files, git blob sha1 for small text files, like the real hub),
  `Content-Length`, `Accept-Ranges` and HTTP Range support (206 + `Content-Range`);
- 404 with `X-Error-Code: RepoNotFound`, `RevisionNotFound` or `EntryNotFound`;
- `/api/models/{org}/{name}/revision/{revision}` and
  `/api/models/{org}/{name}/tree/{revision}?recursive=true`.

Faults for one file of one repo, applied to the next N GETs (`set_fault`):
- `"drop"`: send the headers and half the body, then close the connection;
- `"corrupt"`: send bytes of the right length but with wrong content.

The server binds loopback only on a random free port, runs in daemon threads, answers at most
`max_requests` requests and shuts itself down after `lifetime` seconds.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _etag(name: str, data: bytes) -> str:
    if name.endswith((".safetensors", ".bin", ".pth", ".pt")):
        return hashlib.sha256(data).hexdigest()  # LFS files: sha256 of the content
    return _git_sha1(data)  # regular git files: the git blob id


class _Repo:
    def __init__(self):
        self.commits: dict[str, dict[str, bytes]] = {}
        self.refs: dict[str, str] = {}

    def resolve(self, revision: str) -> str | None:
        if revision in self.refs:
            return self.refs[revision]
        if revision in self.commits:
            return revision
        return None


class FakeHub:
    """`with FakeHub() as hub: hub.add_repo("lab/model", files)`; `hub.endpoint` is the HF_ENDPOINT."""

    def __init__(self, lifetime: float = 120.0, max_requests: int = 2000):
        self.repos: dict[str, _Repo] = {}
        self.faults: dict[tuple[str, str], list] = {}
        self.log: list[tuple[str, str, str | None]] = []
        self._lock = threading.Lock()
        self.lifetime = lifetime
        self.max_requests = max_requests
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    # -- content --------------------------------------------------------------------------
    def add_repo(self, repo_id: str, files: dict[str, bytes] | str | Path, branch: str = "main") -> str:
        """Adds a commit with `files` (a dict or a folder) as `branch`; returns the commit sha."""
        if not isinstance(files, dict):
            folder = Path(files)
            files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
                     if p.is_file()}
        digest = hashlib.sha1(repo_id.encode())
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
        commit = digest.hexdigest()
        with self._lock:
            repo = self.repos.setdefault(repo_id, _Repo())
            repo.commits[commit] = dict(files)
            repo.refs[branch] = commit
        return commit

    def set_fault(self, repo_id: str, filename: str, mode: str, times: int = 1) -> None:
        if mode not in ("drop", "corrupt"):
            raise ValueError(f"unknown fault mode {mode!r}")
        with self._lock:
            self.faults[(repo_id, filename)] = [mode, times]

    def _take_fault(self, repo_id: str, filename: str) -> str | None:
        with self._lock:
            fault = self.faults.get((repo_id, filename))
            if not fault or fault[1] <= 0:
                return None
            fault[1] -= 1
            return fault[0]

    def requests(self, method: str | None = None, contains: str = "") -> list[tuple[str, str, str | None]]:
        with self._lock:
            return [entry for entry in self.log if (method is None or entry[0] == method) and contains in entry[1]]

    # -- server ---------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        assert self._server is not None, "FakeHub is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            fake = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fakehub", daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self.lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if self._timer is not None:
            self._timer.cancel()
        if server is not None:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeHub

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    # -- helpers --------------------------------------------------------------------------
    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, str(value))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, head: bool, extra: dict | None = None) -> None:
        body = json.dumps({"error": message}).encode()
        self._send(status, body, {"X-Error-Code": code, "X-Error-Message": message,
                                  "Content-Type": "application/json", **(extra or {})}, head=head)

    def _json(self, data, head: bool) -> None:
        self._send(200, json.dumps(data).encode(), {"Content-Type": "application/json"}, head=head)

    def _admit(self) -> bool:
        fake = self.fake
        with fake._lock:
            fake.log.append((self.command, self.path, self.headers.get("Range")))
            too_many = len(fake.log) > fake.max_requests
        if too_many:
            self._send(503, b"fake hub request limit reached", {"Connection": "close"})
            self.close_connection = True
            return False
        return True

    # -- routes ---------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    def _route(self, head: bool) -> None:
        if not self._admit():
            return
        parts = urlsplit(self.path)
        segments = [unquote(s) for s in parts.path.split("/")[1:]]
        try:
            if len(segments) >= 6 and segments[0] == "api" and segments[1] == "models":
                return self._api(segments[2] + "/" + segments[3], segments[4], "/".join(segments[5:]),
                                 parse_qs(parts.query), head)
            if len(segments) >= 5 and segments[2] == "resolve":
                # the revision is URL-quoted by huggingface_hub ("refs%2Fpr%2F1" stays one segment)
                raw = parts.path.split("/")[1:]
                return self._resolve(segments[0] + "/" + segments[1], unquote(raw[3]),
                                     "/".join(unquote(s) for s in raw[4:]), head)
        except (BrokenPipeError, ConnectionResetError):
            return
        self._error(404, "NotFound", "no such route", head)

    def _lookup(self, repo_id: str, revision: str, head: bool):
        repo = self.fake.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", f"Repository {repo_id} not found", head)
            return None, None
        commit = repo.resolve(revision)
        if commit is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
            return None, None
        return commit, repo.commits[commit]

    def _api(self, repo_id: str, kind: str, rest: str, query: dict, head: bool) -> None:
        if kind == "revision":
            commit, files = self._lookup(repo_id, rest, head)
            if commit is None:
                return
            return self._json({"id": repo_id, "modelId": repo_id, "sha": commit, "private": False,
                               "siblings": [{"rfilename": name} for name in sorted(files)]}, head)
        if kind == "tree":
            revision, _, prefix = rest.partition("/")
            commit, files = self._lookup(repo_id, revision, head)
            if commit is None:
                return
            entries = []
            for name in sorted(files):
                if prefix and not name.startswith(prefix.rstrip("/") + "/"):
                    continue
                data = files[name]
                entry = {"type": "file", "path": name, "size": len(data), "oid": _git_sha1(data)}
                if name.endswith(".safetensors"):
                    entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data),
                                    "pointerSize": 134}
                entries.append(entry)
            return self._json(entries, head)
        self._error(404, "NotFound", "no such api route", head)

    def _resolve(self, repo_id: str, revision: str, filename: str, head: bool) -> None:
        commit, files = self._lookup(repo_id, revision, head)
        if commit is None:
            return
        if filename not in files:
            self._error(404, "EntryNotFound", f"{filename} does not exist on {revision}", head,
                        {"X-Repo-Commit": commit})
            return
        data = files[filename]
        total = len(data)
        headers = {"X-Repo-Commit": commit, "ETag": f'"{_etag(filename, data)}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        if head:
            self._send(200, data, headers, head=True)
            return
        fault = self.fake._take_fault(repo_id, filename)
        if fault == "corrupt":
            data = bytes(b ^ 0x5A for b in data)
        start, end = 0, total - 1
        status = 200
        wanted = self.headers.get("Range")
        if wanted and wanted.startswith("bytes="):
            first, _, last = wanted[len("bytes="):].partition("-")
            try:
                start = int(first) if first else max(total - int(last), 0)
                end = min(int(last), total - 1) if first and last else total - 1
            except ValueError:
                start, end = 0, total - 1
            if start >= total:
                self._send(416, b"", {"Content-Range": f"bytes */{total}"})
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{total}"
        body = data[start:end + 1]
        if fault == "drop":
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body[: max(1, len(body) // 2)])
            self.wfile.flush()
            time.sleep(0.05)
            self.close_connection = True
            return
        self._send(status, body, headers)
