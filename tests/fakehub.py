"""A tiny fake Hugging Face hub on 127.0.0.1 for download and upload tests (no network needed).

Model repositories (`add_repo("org/name", ...)`) and dataset repositories
(`add_repo("org/name", ..., repo_type="dataset")`, URLs under `/datasets/` and `/api/datasets/`).
Serves what `huggingface_hub.hf_hub_download` / `snapshot_download` ask for:

- HEAD/GET `/[datasets/]{org}/{name}/resolve/{revision}/{path}` with `X-Repo-Commit` (40 hex),
  `ETag` (sha256 for LFS files, git blob sha1 for small text files, like the real hub),
  `Content-Length`, `Accept-Ranges` and HTTP Range support (206 + `Content-Range`);
- 404 with `X-Error-Code: RepoNotFound`, `RevisionNotFound` or `EntryNotFound`;
- `/api/{models,datasets}/{org}/{name}[/revision/{revision}]` and
  `/api/{models,datasets}/{org}/{name}/tree/{revision}[/{folder}]?recursive=true`.

And what `HfApi.create_repo` / `create_branch` / `upload_folder` (the legacy, non-Xet commit path:
run the client with `HF_HUB_DISABLE_XET=1`, the fake hub has no Xet storage) call:

- POST `/api/repos/create` (409 when the repository exists); POST `/api/validate-yaml` (the card's
  front matter must be a YAML mapping, model-index metrics need a type and a value);
- POST `/api/{type}s/{org}/{name}/branch/{branch}`;
- POST `/api/{type}s/{org}/{name}/preupload/{revision}` (upload mode `lfs` for weight and data
  files and anything over 10 MB, `regular` otherwise, with the existing blob id as `oid`);
- POST `/[datasets/]{org}/{name}.git/info/lfs/objects/batch` (basic transfer; objects already
  stored get no actions), PUT `/_lfs/{oid}` (content checked against the oid), POST `/_lfs/verify`;
- POST `/api/{type}s/{org}/{name}/commit/{revision}` with the NDJSON body (`header`, `file`
  base64, `lfsFile` by oid, `deletedFile`, `deletedFolder`), which makes a new commit on top of
  the branch.

Write routes answer 401 without an `Authorization` header, like the real hub (the LFS PUT URL is
"presigned", as on S3).

Faults for one file of one repo, applied to the next N GETs (`set_fault`):
- `"drop"`: send the headers and half the body, then close the connection;
- `"corrupt"`: send bytes of the right length but with wrong content.

The server binds loopback only on a random free port, runs in daemon threads, answers at most
`max_requests` requests and shuts itself down after `lifetime` seconds.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


LFS_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".parquet", ".arrow", ".png", ".jpg", ".jpeg", ".webp",
                ".zip", ".tar", ".gz")
LFS_MIN_SIZE = 10 * 1024 * 1024


def is_lfs(name: str, size: int) -> bool:
    """Whether the hub stores this file in LFS (its default .gitattributes patterns, or > 10 MB)."""
    return name.lower().endswith(LFS_SUFFIXES) or size >= LFS_MIN_SIZE


def _etag(name: str, data: bytes) -> str:
    if is_lfs(name, len(data)):
        return hashlib.sha256(data).hexdigest()  # LFS files: sha256 of the content
    return _git_sha1(data)  # regular git files: the git blob id


def _repo_key(repo_id: str, repo_type: str) -> str:
    return repo_id if repo_type == "model" else f"{repo_type}s/{repo_id}"


class _Repo:
    def __init__(self, private: bool = False):
        self.commits: dict[str, dict[str, bytes]] = {}
        self.refs: dict[str, str] = {}
        self.messages: dict[str, str] = {}
        self.private = private

    def resolve(self, revision: str) -> str | None:
        if revision in self.refs:
            return self.refs[revision]
        if revision in self.commits:
            return revision
        return None


class FakeHub:
    """`with FakeHub() as hub: hub.add_repo("lab/model", files)`; `hub.endpoint` is the HF_ENDPOINT."""

    def __init__(self, lifetime: float = 120.0, max_requests: int = 2000):
        self.repos: dict[str, _Repo] = {}  # "org/name" for models, "datasets/org/name" for datasets
        self.faults: dict[tuple[str, str], list] = {}
        self.lfs_objects: dict[str, bytes] = {}  # sha256 -> content, uploaded through the LFS batch API
        self.log: list[tuple[str, str, str | None]] = []
        self._lock = threading.Lock()
        self.lifetime = lifetime
        self.max_requests = max_requests
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    # -- content --------------------------------------------------------------------------
    def add_repo(self, repo_id: str, files: dict[str, bytes] | str | Path, branch: str = "main",
                 repo_type: str = "model") -> str:
        """Adds a commit with `files` (a dict or a folder) as `branch`; returns the commit sha."""
        if not isinstance(files, dict):
            folder = Path(files)
            files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
                     if p.is_file()}
        with self._lock:
            repo = self.repos.setdefault(_repo_key(repo_id, repo_type), _Repo())
            return self._commit(repo, repo_id, branch, dict(files), "add_repo", parent=None)

    @staticmethod
    def _commit(repo: _Repo, repo_id: str, branch: str, files: dict[str, bytes], message: str,
                parent: str | None) -> str:
        """Records `files` as a new commit on `branch` (the caller holds the lock)."""
        digest = hashlib.sha1(repo_id.encode() + b"\0" + (parent or "").encode())
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
        commit = digest.hexdigest()
        repo.commits[commit] = files
        repo.refs[branch] = commit
        repo.messages[commit] = message
        return commit

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        """The files of `revision` (for test assertions)."""
        with self._lock:
            repo = self.repos[_repo_key(repo_id, repo_type)]
            return dict(repo.commits[repo.resolve(revision)])

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

    def _json(self, data, head: bool = False) -> None:
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

    def _body(self) -> bytes:
        """The request body, sent with Content-Length or chunked."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    # -- routes ---------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    def do_POST(self) -> None:
        self._write_route()

    def do_PUT(self) -> None:
        self._write_route()

    def _route(self, head: bool) -> None:
        if not self._admit():
            return
        parts = urlsplit(self.path)
        raw = parts.path.split("/")[1:]
        segments = [unquote(s) for s in raw]
        try:
            if len(segments) >= 4 and segments[0] == "api" and segments[1] in ("models", "datasets"):
                repo_type = segments[1][:-1]
                repo_id = segments[2] + "/" + segments[3]
                if len(segments) == 4:
                    return self._api(repo_id, repo_type, "revision", "main", parse_qs(parts.query), head)
                # the revision is URL-quoted by huggingface_hub ("refs%2Fpr%2F1" stays one segment)
                return self._api(repo_id, repo_type, segments[4], "/".join(segments[5:]),
                                 parse_qs(parts.query), head)
            repo_type = "model"
            if segments and segments[0] == "datasets":
                repo_type, raw, segments = "dataset", raw[1:], segments[1:]
            if len(segments) >= 5 and segments[2] == "resolve":
                return self._resolve(segments[0] + "/" + segments[1], repo_type, unquote(raw[3]),
                                     "/".join(unquote(s) for s in raw[4:]), head)
        except (BrokenPipeError, ConnectionResetError):
            return
        self._error(404, "NotFound", "no such route", head)

    def _lookup(self, repo_id: str, revision: str, head: bool, repo_type: str = "model"):
        repo = self.fake.repos.get(_repo_key(repo_id, repo_type))
        if repo is None:
            self._error(404, "RepoNotFound", f"Repository {repo_id} not found", head)
            return None, None
        commit = repo.resolve(revision)
        if commit is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
            return None, None
        return commit, repo.commits[commit]

    def _api(self, repo_id: str, repo_type: str, kind: str, rest: str, query: dict, head: bool) -> None:
        if kind == "revision":
            commit, files = self._lookup(repo_id, rest, head, repo_type)
            if commit is None:
                return
            repo = self.fake.repos[_repo_key(repo_id, repo_type)]
            info = {"id": repo_id, "sha": commit, "private": repo.private,
                    "siblings": [{"rfilename": name} for name in sorted(files)]}
            if repo_type == "model":
                info["modelId"] = repo_id
            return self._json(info, head)
        if kind == "tree":
            revision, _, prefix = rest.partition("/")
            commit, files = self._lookup(repo_id, revision, head, repo_type)
            if commit is None:
                return
            recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
            base = prefix.strip("/")
            entries, folders = [], set()
            for name in sorted(files):
                if base and not name.startswith(base + "/"):
                    continue
                below = name[len(base) + 1:] if base else name
                if not recursive and "/" in below:
                    folders.add((base + "/" if base else "") + below.split("/", 1)[0])
                    continue
                data = files[name]
                entry = {"type": "file", "path": name, "size": len(data), "oid": _git_sha1(data)}
                if is_lfs(name, len(data)):
                    entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data),
                                    "pointerSize": 134}
                entries.append(entry)
            if recursive:  # a recursive listing also names every folder on the way
                for name in files:
                    if base and not name.startswith(base + "/"):
                        continue
                    parts = name.split("/")[:-1]
                    for depth in range(1, len(parts) + 1):
                        folder = "/".join(parts[:depth])
                        if not base or folder.startswith(base + "/"):
                            folders.add(folder)
            entries += [{"type": "directory", "path": folder, "oid": _git_sha1(folder.encode())}
                        for folder in sorted(folders)]
            return self._json(entries, head)
        self._error(404, "NotFound", "no such api route", head)

    def _resolve(self, repo_id: str, repo_type: str, revision: str, filename: str, head: bool) -> None:
        commit, files = self._lookup(repo_id, revision, head, repo_type)
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
        fault = self.fake._take_fault(_repo_key(repo_id, repo_type), filename)
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

    # -- uploads --------------------------------------------------------------------------
    def _write_route(self) -> None:
        if not self._admit():
            return
        body = self._body()
        if self.command == "POST" and urlsplit(self.path).path == "/api/validate-yaml":
            return self._validate_yaml(json.loads(body or b"{}"))
        presigned = self.command == "PUT" and urlsplit(self.path).path.startswith("/_lfs/")  # like S3 URLs
        if not presigned and not self.headers.get("Authorization"):
            self._error(401, "Unauthorized", "Invalid credentials in Authorization header", False)
            return
        parts = urlsplit(self.path)
        raw = parts.path.split("/")[1:]
        segments = [unquote(s) for s in raw]
        query = parse_qs(parts.query)
        try:
            if self.command == "POST" and segments == ["api", "repos", "create"]:
                return self._create_repo(json.loads(body or b"{}"))
            if self.command == "PUT" and len(segments) == 2 and segments[0] == "_lfs":
                return self._lfs_put(segments[1], body)
            if self.command == "POST" and segments == ["_lfs", "verify"]:
                return self._lfs_verify(json.loads(body or b"{}"))
            if self.command == "POST" and len(segments) >= 6 and segments[0] == "api" \
                    and segments[1] in ("models", "datasets"):
                repo_type, repo_id = segments[1][:-1], segments[2] + "/" + segments[3]
                action, revision = segments[4], unquote(raw[5]) if len(raw) > 5 else ""
                if action == "preupload":
                    return self._preupload(repo_id, repo_type, revision, json.loads(body or b"{}"))
                if action == "commit":
                    return self._commit(repo_id, repo_type, revision, body, query)
                if action == "branch":
                    return self._branch(repo_id, repo_type, "/".join(segments[5:]), json.loads(body or b"{}"))
            repo_type = "model"
            if segments and segments[0] == "datasets":
                repo_type, segments = "dataset", segments[1:]
            if self.command == "POST" and segments[-4:] == ["info", "lfs", "objects", "batch"] \
                    and len(segments) == 6 and segments[1].endswith(".git"):
                return self._lfs_batch(segments[0] + "/" + segments[1][:-len(".git")], repo_type,
                                       json.loads(body or b"{}"))
        except (BrokenPipeError, ConnectionResetError):
            return
        except (ValueError, KeyError) as exc:
            self._error(400, "BadRequest", f"malformed request: {exc}", False)
            return
        self._error(404, "NotFound", "no such route", False)

    def _validate_yaml(self, payload: dict) -> None:
        """The card metadata check create_commit asks for: YAML front matter, model-index shape."""
        import yaml

        content = str(payload.get("content", ""))
        errors = []
        if content.startswith("---"):
            end = content.find("\n---", 3)
            try:
                metadata = yaml.safe_load(content[3:end]) if end > 0 else None
            except yaml.YAMLError as exc:
                metadata, errors = None, [f"invalid YAML: {exc}"]
            if end < 0:
                errors.append("front matter is not closed")
            elif not errors and not isinstance(metadata, dict):
                errors.append("metadata must be a mapping")
            elif not errors:
                for model in metadata.get("model-index") or []:
                    for result in model.get("results") or []:
                        for metric in result.get("metrics") or []:
                            if "type" not in metric or "value" not in metric:
                                errors.append("model-index metrics need a type and a value")
        if errors:
            body = json.dumps({"errors": [{"message": m} for m in errors], "warnings": []}).encode()
            self._send(400, body, {"Content-Type": "application/json", "X-Error-Code": "BadRequest"})
            return
        self._json({"errors": [], "warnings": []})

    def _repo(self, repo_id: str, repo_type: str) -> _Repo | None:
        repo = self.fake.repos.get(_repo_key(repo_id, repo_type))
        if repo is None:
            self._error(404, "RepoNotFound", f"Repository {repo_id} not found", False)
        return repo

    def _create_repo(self, payload: dict) -> None:
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload['organization']}/{payload['name']}" if payload.get("organization") else payload["name"]
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        with self.fake._lock:
            key = _repo_key(repo_id, repo_type)
            if key in self.fake.repos:
                conflict = True
            else:
                conflict = False
                repo = self.fake.repos[key] = _Repo(private=private)
                self.fake._commit(repo, repo_id, "main", {".gitattributes": b"*.safetensors filter=lfs\n"},
                                  "initial commit", parent=None)
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        url = f"{self.fake.endpoint}/{prefix}{repo_id}"
        if conflict:  # the real hub's 409 also carries the url, which create_repo(exist_ok=True) reads
            body = json.dumps({"error": "You already created this repo", "url": url}).encode()
            self._send(409, body, {"Content-Type": "application/json", "X-Error-Code": "RepoExists"})
            return
        self._json({"url": url, "name": repo_id})

    def _branch(self, repo_id: str, repo_type: str, branch: str, payload: dict) -> None:
        repo = self._repo(repo_id, repo_type)
        if repo is None:
            return
        with self.fake._lock:
            if branch in repo.refs:
                exists, start = True, None
            else:
                exists, start = False, repo.resolve(payload.get("startingPoint") or "main")
                if start is not None:
                    repo.refs[branch] = start
        if exists:
            self._error(409, "BranchExists", f"Reference {branch} already exists", False)
        elif start is None:
            self._error(404, "RevisionNotFound", "Invalid starting point", False)
        else:
            self._json({})

    def _preupload(self, repo_id: str, repo_type: str, revision: str, payload: dict) -> None:
        repo = self._repo(repo_id, repo_type)
        if repo is None:
            return
        commit = repo.resolve(revision)
        existing = repo.commits.get(commit, {}) if commit else {}
        files = []
        for item in payload["files"]:
            path, size = item["path"], int(item["size"])
            sample = base64.b64decode(item.get("sample") or "")
            binary = b"\0" in sample
            mode = "lfs" if is_lfs(path, size) or binary else "regular"
            old = existing.get(path)
            oid = None
            if old is not None:
                oid = hashlib.sha256(old).hexdigest() if is_lfs(path, len(old)) else _git_sha1(old)
            files.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        self._json({"files": files, "commitOid": commit})

    def _lfs_batch(self, repo_id: str, repo_type: str, payload: dict) -> None:
        if self._repo(repo_id, repo_type) is None:
            return
        objects = []
        for obj in payload["objects"]:
            oid, size = obj["oid"], int(obj["size"])
            entry = {"oid": oid, "size": size, "authenticated": True}
            if oid not in self.fake.lfs_objects:
                entry["actions"] = {"upload": {"href": f"{self.fake.endpoint}/_lfs/{oid}"},
                                    "verify": {"href": f"{self.fake.endpoint}/_lfs/verify"}}
            objects.append(entry)
        self._json({"transfer": "basic", "objects": objects, "hash_algo": "sha256"})

    def _lfs_put(self, oid: str, body: bytes) -> None:
        if hashlib.sha256(body).hexdigest() != oid:
            self._error(400, "BadRequest", "uploaded content does not match its oid", False)
            return
        with self.fake._lock:
            self.fake.lfs_objects[oid] = body
        self._send(200)

    def _lfs_verify(self, payload: dict) -> None:
        data = self.fake.lfs_objects.get(payload["oid"])
        if data is None or len(data) != int(payload["size"]):
            self._error(404, "EntryNotFound", "LFS object not found", False)
            return
        self._json({})

    def _commit(self, repo_id: str, repo_type: str, revision: str, body: bytes, query: dict) -> None:
        repo = self._repo(repo_id, repo_type)
        if repo is None:
            return
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            self._error(400, "BadRequest", "the commit payload must start with a header line", False)
            return
        with self.fake._lock:
            parent = repo.resolve(revision)
            if parent is None:
                missing = True
            else:
                missing = False
                files = dict(repo.commits[parent])
                for line in lines[1:]:
                    key, value = line["key"], line["value"]
                    if key == "file":
                        files[value["path"]] = base64.b64decode(value["content"])
                    elif key == "lfsFile":
                        data = self.fake.lfs_objects.get(value["oid"])
                        if data is None:
                            break
                        files[value["path"]] = data
                    elif key == "deletedFile":
                        files.pop(value["path"], None)
                    elif key == "deletedFolder":
                        folder = value["path"].rstrip("/") + "/"
                        files = {k: v for k, v in files.items() if not k.startswith(folder)}
                else:
                    line = None
                if line is None:
                    commit = self.fake._commit(repo, repo_id, revision, files, lines[0]["value"]["summary"],
                                               parent=parent)
        if missing:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", False)
            return
        if line is not None:
            self._error(400, "BadRequest", f"LFS object {line['value']['oid']} was never uploaded", False)
            return
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        self._json({"commitUrl": f"{self.fake.endpoint}/{prefix}{repo_id}/commit/{commit}", "commitOid": commit,
                    "success": True, "pullRequestUrl": None})


def run_steps(runner: str, steps: list, *, endpoint: str, hf_home: Path, offline: bool, root: Path,
              timeout: float = 180) -> tuple[list[dict], str]:
    """Runs `runner` (a script that prints one `RESULT <json>` line per step) in a fresh
    process: huggingface_hub reads HF_ENDPOINT/HF_HUB_OFFLINE when it is first imported, so a
    test that switches hubs or offline mode needs a new interpreter. Returns (results, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(hf_home), HF_HUB_OFFLINE="1" if offline else "0",
               HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
               PYTHONPATH=str(root) + os.pathsep + env.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", runner, json.dumps(steps)], env=env, cwd=root,
                          capture_output=True, text=True, timeout=timeout)
    results = [json.loads(line[len("RESULT "):]) for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and len(results) == len(steps), proc.stdout[-2000:] + proc.stderr[-4000:]
    return results, proc.stderr
