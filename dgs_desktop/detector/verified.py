"""Remembers which checkpoint files were hashed, so a warm start does not hash them again.

Every weight file is still checked against the sha256 its manifest lists; the cache only
says "this exact file was hashed before and gave this sha256". An entry is keyed by the
file's identity, `(st_dev, st_ino)`, and holds `size`, `st_mtime_ns`, `st_ctime_ns` and the
sha256. A file is taken as verified without reading it only when all five stat values are
equal to those recorded *and* the recorded sha256 is the one the manifest expects.

What this trusts, and why that is enough:
- The kernel's change time. Any write, truncate, rename onto the name, chmod or utime sets
  `st_ctime_ns` to the current clock, and no unprivileged call can set it back: `os.utime`
  restores mtime but itself moves ctime. So a file whose stat values are unchanged has not
  been written through the file system since it was hashed. Defeating this takes root
  (setting the clock back, writing the raw disk) or a file system that does not keep ctime
  (some network and FUSE mounts): there, set `DGS_DESKTOP_VERIFY_CACHE=0`.
- Coarse timestamps. A file changed within a timestamp tick of its last change can keep the
  same times (2 s on FAT), so a file changed less than 3 s (`RACY_WINDOW_NS`) before it was
  hashed is not remembered, nor is one whose stat values moved while it was being read.
- The cache file itself, in the user's cache folder (`$DGS_DESKTOP_CACHE` or platformdirs'
  user cache). Whoever can write there can already run code as the user. A cache file that is
  unreadable, too large, not JSON or not in this format is ignored (never trusted, never
  overwritten); a malformed entry is dropped.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CACHE_DIR_ENV = "DGS_DESKTOP_CACHE"  # also the trainer's cache folder
SWITCH_ENV = "DGS_DESKTOP_VERIFY_CACHE"  # "0" / "off" / "no": hash every file every time
CACHE_NAME = "verified-files.json"
CACHE_FORMAT = "dgs-desktop-verified-files"
MAX_CACHE_BYTES = 256 * 1024
MAX_ENTRIES = 512
RACY_WINDOW_NS = 3_000_000_000  # 3 s: FAT's 2 s mtime ticks, with a margin
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_KEY = re.compile(r"^[0-9]{1,20}:[0-9]{1,20}$")


def user_cache_dir() -> Path:
    """`$DGS_DESKTOP_CACHE`, else the per-user cache folder of the platform."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env)
    from platformdirs import user_cache_dir as platform_cache_dir

    return Path(platform_cache_dir("dgs-desktop"))


@dataclass(frozen=True)
class FileIdentity:
    """What the cache compares: a changed byte changes ctime even when size and mtime are kept."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, info: os.stat_result) -> FileIdentity:
        return cls(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)

    @property
    def key(self) -> str:
        return f"{self.dev}:{self.ino}"


def _identity(path: Path) -> FileIdentity | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return FileIdentity.of(info) if stat.S_ISREG(info.st_mode) else None


def _valid_entry(entry: object) -> bool:
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) \
            or not _SHA256.match(entry["sha256"]):
        return False
    return all(isinstance(entry.get(k), int) and not isinstance(entry.get(k), bool) and entry[k] >= 0
               for k in ("size", "mtime_ns", "ctime_ns", "used_ns"))


class VerifyCache:
    """The remembered hashes of one cache file (`path=None`: remembers nothing)."""

    def __init__(self, path: Path | None, clock: Callable[[], int] = time.time_ns):
        self.path = path
        self._clock = clock
        self._entries: dict[str, dict[str, Any]] = {}
        self._writable = path is not None
        self._dirty = False
        if path is not None:
            self._load(path)

    @classmethod
    def default(cls) -> VerifyCache:
        if os.environ.get(SWITCH_ENV, "").strip().lower() in ("0", "off", "no", "false"):
            return cls(None)
        return cls(user_cache_dir() / CACHE_NAME)

    def _load(self, path: Path) -> None:
        try:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_CACHE_BYTES + 1)
        except FileNotFoundError:
            return
        except OSError as exc:
            log.debug("verify cache %s is unreadable (%s); hashing every file", path, exc)
            self._writable = False
            return
        try:
            data = json.loads(raw) if len(raw) <= MAX_CACHE_BYTES else None
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT or not isinstance(data.get("files"), dict):
            log.info("%s is not a DGS Desktop verify cache; it is ignored and left as it is", path)
            self._writable = False
            return
        self._entries = {key: entry for key, entry in data["files"].items()
                         if isinstance(key, str) and _KEY.match(key) and _valid_entry(entry)}

    def vouches_for(self, path: Path, sha256: str) -> bool:
        """Whether `path` is the very file that was hashed to `sha256`, unchanged since."""
        now = _identity(path)
        entry = self._entries.get(now.key) if now is not None else None
        if now is None or entry is None or entry["sha256"] != sha256:
            return False
        if (entry["size"], entry["mtime_ns"], entry["ctime_ns"]) != (now.size, now.mtime_ns, now.ctime_ns):
            return False
        entry["used_ns"] = self._clock()
        self._dirty = True
        return True

    def hash_file(self, path: Path, hash_file: Callable[[Path], str]) -> str:
        """`hash_file(path)`, remembered when the file held still while it was read and had not
        changed just before (see the module docstring)."""
        started = self._clock()
        before = _identity(path)
        digest = hash_file(path)
        after = _identity(path)
        if before is not None and before == after and \
                started - max(before.mtime_ns, before.ctime_ns) >= RACY_WINDOW_NS:
            self._entries[before.key] = {"size": before.size, "mtime_ns": before.mtime_ns,
                                         "ctime_ns": before.ctime_ns, "sha256": digest, "used_ns": started}
            self._dirty = True
        return digest

    def save(self) -> None:
        """Writes the cache in one step (the most recently used entries); a failure only costs
        a re-hash next time."""
        if not (self._dirty and self._writable and self.path is not None):
            return
        from ..atomic import atomic_path

        newest = sorted(self._entries.items(), key=lambda item: item[1]["used_ns"], reverse=True)[:MAX_ENTRIES]
        text = json.dumps({"format": CACHE_FORMAT, "files": dict(newest)}, separators=(",", ":"))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.path) as tmp:
                tmp.write_text(text)
        except OSError as exc:
            log.debug("could not write the verify cache %s: %s", self.path, exc)
        self._dirty = False
