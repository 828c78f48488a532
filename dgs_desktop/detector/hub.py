"""Checkpoints from the Hugging Face hub: `hf:org/name[@revision]` (grammar and wording: `hubaccess`).

The manifest (`dgs_checkpoint.json`) is fetched first, then every file it lists, pinned to the
commit the manifest came from, into the normal huggingface_hub cache (`HF_HOME` / `HF_HUB_CACHE`).
Afterwards every file is checked against the sha256 in the manifest; a file that does not match
is removed from the cache so it is never reused as good.

Behaviour:
- `HF_HUB_OFFLINE=1` (read by huggingface_hub when it is first imported): only the cache is used.
- hub unreachable (no network, closed port, DNS failure): the cached copy is used if there is one;
  otherwise a one-line `CheckpointError`. A single quick probe is made (no long retry loop).
- a download interrupted mid-file is resumed by huggingface_hub within the call (HTTP Range);
  if the call still fails, huggingface_hub never keeps the partial file, so the next call
  starts that file again cleanly.
- `progress(done_bytes, total_bytes, message)` is called as bytes arrive; `cancel()` returning
  True aborts the download with `CheckpointError` (no partial file is kept).
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, one_line
from .hubaccess import (
    CHECKPOINT_SCHEME,
    RepoSpec,
    hub_error_message,
    is_offline,
    network_errors,
    parse_repo_spec,
)
from .manifest import MANIFEST_NAME, Checkpoint, check_manifest, read_checkpoint, safe_member, sha256_file

ProgressFn = Callable[[int, int, str], None]
CancelFn = Callable[[], bool]


class DownloadCancelled(CheckpointError):
    """The user cancelled a hub download."""


class _Cancelled(Exception):
    """Raised from inside huggingface_hub's progress bar to stop a transfer."""


def parse_hub_spec(spec: str) -> tuple[str, str | None]:
    """`hf:org/name[@revision]` -> (`org/name`, revision or None for the default branch)."""
    ref = parse_repo_spec(spec, CHECKPOINT_SCHEME, CheckpointError)
    return ref.repo_id, ref.revision


def _progress_class(sink: _ProgressSink) -> type:
    """A tqdm class for huggingface_hub's `tqdm_class` that forwards byte counts to `sink`."""
    from huggingface_hub.utils import tqdm as hf_tqdm

    class _ProgressBar(hf_tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True  # never draw on a terminal; the app shows its own progress
            super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call] # huggingface_hub's tqdm

        def update(self, n: float | None = 1) -> bool | None:
            sink.advance(int(n or 0))
            return super().update(n)  # type: ignore[no-any-return] # tqdm ships no types

        # Xet downloads report network bytes separately; the written bytes (update) are enough.
        def update_transfer(self, n: float | None = 1) -> None:
            sink.check_cancel()

        def set_transfer_postfix_str(self, *args: Any, **kwargs: Any) -> None:
            return None

    return _ProgressBar


class _ProgressSink:
    def __init__(self, progress: ProgressFn | None, cancel: CancelFn | None):
        self.progress = progress
        self.cancel = cancel
        self.done = 0
        self.total = 0
        self.message = ""

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel():
            raise _Cancelled()

    def report(self, message: str | None = None) -> None:
        if message is not None:
            self.message = message
        if self.progress is not None:
            self.progress(max(0, min(self.done, self.total)) if self.total else self.done, self.total, self.message)

    def advance(self, n: int) -> None:
        self.done += n
        self.report()
        self.check_cancel()


def _translate(exc: BaseException, what: RepoSpec, filename: str, offline: bool, endpoint: str) -> CheckpointError:
    """A one-line CheckpointError for an exception raised by huggingface_hub."""
    from huggingface_hub import errors

    if isinstance(exc, _Cancelled):
        return DownloadCancelled(f"download of {what} was cancelled")
    shared = hub_error_message(exc, what, offline=offline, endpoint=endpoint, filename=filename)
    if shared is not None:
        return CheckpointError(shared)
    if isinstance(exc, errors.EntryNotFoundError):
        if filename == MANIFEST_NAME:
            return CheckpointError(f"{what} has no {MANIFEST_NAME}: it is not a DGS Desktop checkpoint repository")
        return CheckpointError(f"{what}: its manifest lists {filename} but the repository has no such file")
    if isinstance(exc, network_errors()):
        return CheckpointError(f"connection to the Hugging Face hub at {endpoint} failed while fetching {filename} "
                               f"of {what} ({type(exc).__name__}: {one_line(exc)}); try again - the download "
                               f"restarts cleanly")
    if isinstance(exc, OSError):
        return CheckpointError(f"downloading {filename} of {what} failed: {one_line(exc)}")
    return CheckpointError(f"downloading {filename} of {what} failed ({type(exc).__name__}: {one_line(exc)})")


def _remove_from_cache(pointer: Path, cache_dir: str | os.PathLike[str]) -> None:
    """Removes a snapshot entry and the blob it points to (so the bad bytes are fetched again)."""
    cache_root = Path(cache_dir).resolve()
    try:
        target = pointer.resolve()
    except OSError:
        target = None
    try:
        pointer.unlink(missing_ok=True)
    except OSError:
        pass
    if target is not None and target != pointer and cache_root in target.parents:
        try:
            target.unlink(missing_ok=True)
        except OSError:
            pass


def _probe(repo_id: str, revision: str | None, endpoint: str, token: str | bool | None) -> BaseException | None:
    """One quick HEAD of the manifest without retries; returns a network/5xx error or None.

    huggingface_hub retries unreachable hosts with back-off for ~20 s before giving up; this probe
    lets a missing network fail (or fall back to the cache) at once.
    """
    import huggingface_hub as hub
    from huggingface_hub import constants, errors

    url = hub.hf_hub_url(repo_id, MANIFEST_NAME, revision=revision, endpoint=endpoint)
    try:
        hub.get_hf_file_metadata(url, token=token, timeout=constants.HF_HUB_ETAG_TIMEOUT, endpoint=endpoint)
    except errors.HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if isinstance(exc, (errors.RepositoryNotFoundError, errors.RevisionNotFoundError,
                            errors.EntryNotFoundError)) or status is None or status < 500:
            raise
        return exc
    except network_errors() as exc:
        return exc
    return None


def download_checkpoint(spec: str, progress: ProgressFn | None = None, cancel: CancelFn | None = None, *,
                        cache_dir: str | os.PathLike[str] | None = None,
                        token: str | bool | None = None) -> Checkpoint:
    """Downloads (or finds in the cache) the checkpoint `hf:org/name[@revision]` and verifies it.

    Returns the verified `Checkpoint` whose directory is the snapshot folder in the hub cache.
    Every failure is a `CheckpointError` with a one-line message (`DownloadCancelled` when
    `cancel()` returned True).
    """
    what = parse_repo_spec(spec, CHECKPOINT_SCHEME, CheckpointError)
    repo_id, revision = what.repo_id, what.revision
    import huggingface_hub as hub
    from huggingface_hub import constants

    endpoint = constants.ENDPOINT
    cache_root = str(cache_dir or constants.HF_HUB_CACHE)
    offline = is_offline()
    # byte-level progress and cancel need hf_hub_download(tqdm_class=...) (recent huggingface_hub);
    # older releases still get per-file progress and cancel between files
    byte_progress = "tqdm_class" in inspect.signature(hub.hf_hub_download).parameters
    sink = _ProgressSink(progress, cancel)
    tqdm_class = _progress_class(sink)
    local_only = offline
    current = MANIFEST_NAME

    try:
        sink.check_cancel()
        sink.report(f"looking up {what}")
        if not offline:
            failure = _probe(repo_id, revision, endpoint, token)
            if failure is not None:
                local_only = True  # unreachable or hub down: fall back to the cache
                sink.report(f"hub unreachable ({type(failure).__name__}); using the local cache")

        def fetch(filename: str, rev: str | None) -> Path:
            if byte_progress:
                return Path(hub.hf_hub_download(repo_id, filename, revision=rev, cache_dir=cache_root,
                                                local_files_only=local_only, token=token, tqdm_class=tqdm_class))
            return Path(hub.hf_hub_download(repo_id, filename, revision=rev, cache_dir=cache_root,
                                            local_files_only=local_only, token=token))

        manifest_path = fetch(MANIFEST_NAME, revision)
        sink.done = 0  # progress counts the weight files only
        snapshot = manifest_path.parent
        commit = snapshot.name  # the cache layout is snapshots/<commit>/<file>
        manifest = _read_manifest(manifest_path, what, cache_root)
        names = sorted(manifest["files"])
        for name in names:
            safe_member(snapshot, name)

        # Sizes of what is still missing (a HEAD each, pinned to the manifest's commit).
        sizes: dict[str, int] = {}
        if not local_only:
            for name in names:
                current = name
                sink.check_cancel()
                cached = hub.try_to_load_from_cache(repo_id, name, cache_dir=cache_root, revision=commit)
                if isinstance(cached, str) and os.path.isfile(cached):
                    continue
                url = hub.hf_hub_url(repo_id, name, revision=commit, endpoint=endpoint)
                meta = hub.get_hf_file_metadata(url, token=token, endpoint=endpoint)
                sizes[name] = int(meta.size or 0)
        sink.total = sum(sizes.values())
        for name in names:
            current = name
            sink.check_cancel()
            sink.report(f"downloading {name}" if name in sizes else f"{name} (cached)")
            fetch(name, commit)
            if not byte_progress:
                sink.advance(sizes.get(name, 0))
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - huggingface_hub, httpx and OS errors, _Cancelled
        raise _translate(exc, what, current, offline, endpoint) from None

    sink.done = sink.total
    sink.report("verifying")
    try:
        checkpoint = read_checkpoint(snapshot, source=str(what))
    except CheckpointError as exc:
        bad = _remove_corrupt_files(snapshot, manifest, cache_root)
        if bad:
            raise CheckpointError(f"{what}: downloaded file(s) {', '.join(bad)} do not match the sha256 in the "
                                  f"manifest; removed them from the cache - try again, and if it persists the "
                                  f"repository itself is broken") from None
        raise CheckpointError(f"{what}: {exc}") from None
    sink.report(f"ready (commit {commit[:12]})")
    return checkpoint


def _read_manifest(path: Path, what: RepoSpec, cache_dir: str) -> dict[str, Any]:
    """Parses the downloaded manifest; an unreadable one is removed from the cache."""
    try:
        manifest: dict[str, Any] = json.loads(path.read_bytes())
        check_manifest(manifest)
        if not isinstance(manifest["files"], dict):
            raise CheckpointError("the manifest's 'files' field is not a mapping")
    except (UnicodeDecodeError, json.JSONDecodeError, CheckpointError) as exc:
        _remove_from_cache(path, cache_dir)
        detail = exc if isinstance(exc, CheckpointError) else f"not valid JSON ({one_line(exc)})"
        raise CheckpointError(f"{what}: its {MANIFEST_NAME} is unusable: {detail}; removed it from the cache") \
            from None
    return manifest


def _remove_corrupt_files(snapshot: Path, manifest: dict[str, Any], cache_dir: str) -> list[str]:
    bad = []
    for name, expected in sorted(manifest["files"].items()):
        path = safe_member(snapshot, name)
        if not path.exists():
            continue
        if sha256_file(path) != expected:
            _remove_from_cache(path, cache_dir)
            bad.append(name)
    return bad


__all__ = ["parse_hub_spec", "download_checkpoint", "DownloadCancelled"]
