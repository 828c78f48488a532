"""A case: one SQLite file that keeps an analyst's work (files, hashes, scores, model, notes).

The window saves into the open case as results arrive, so nothing is lost when it closes;
`dgs-desktop --case FILE` and File -> Open case reopen it, and the report command reads it
with `read_case`. No Qt here: the CLI uses this module as it is.

What a file's verdict rests on is stored with it: the probability, the threshold of the case
and the sha256 of the checkpoint manifest that produced the score. The verdict itself is
never stored; it is recomputed with `dgs_desktop.verdict.verdict` (one rule everywhere).

Safety: a case file is only ever written when this program created it (the `meta` table
names the format); an existing file that is not a case is refused, never overwritten.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import __version__
from .errors import InputError
from .verdict import DEFAULT_THRESHOLD, check_threshold, verdict

log = logging.getLogger(__name__)

CASE_FORMAT = "dgs-desktop-case"
CASE_VERSION = 1
CASE_SUFFIX = ".dgscase"
SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'queued',
    fake_probability REAL,
    error TEXT NOT NULL DEFAULT '',
    width INTEGER,
    height INTEGER,
    format TEXT NOT NULL DEFAULT '',
    notes TEXT NOT NULL DEFAULT '[]',
    provenance TEXT NOT NULL DEFAULT '',
    checkpoint TEXT NOT NULL DEFAULT '',
    checkpoint_sha256 TEXT NOT NULL DEFAULT '',
    device TEXT NOT NULL DEFAULT '',
    boxes TEXT NOT NULL DEFAULT '[]',
    low_entropy TEXT NOT NULL DEFAULT '[]',
    entropies TEXT NOT NULL DEFAULT '[]',
    analyst_note TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '[]',
    added_at TEXT NOT NULL,
    scanned_at TEXT
);
CREATE INDEX IF NOT EXISTS files_sha256 ON files (sha256);
"""


class CaseError(InputError):
    """A case file cannot be opened or written; one line for the user."""


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class CaseFile:
    """One file of a case, as stored."""

    path: str
    sha256: str = ""
    status: str = "queued"  # ok, error, queued, not scanned
    fake_probability: float | None = None
    error: str = ""
    width: int | None = None
    height: int | None = None
    format: str = ""
    notes: list[str] = field(default_factory=list)
    provenance: str = ""
    checkpoint: str = ""
    checkpoint_sha256: str = ""  # the model that produced fake_probability
    device: str = ""
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    low_entropy: list[bool] = field(default_factory=list)
    entropies: list[float] = field(default_factory=list)
    analyst_note: str = ""
    tags: list[str] = field(default_factory=list)
    added_at: str = ""
    scanned_at: str | None = None

    @property
    def scanned(self) -> bool:
        return self.status in ("ok", "error")

    def verdict(self, threshold: float) -> str:
        return verdict(self.fake_probability, threshold) if self.status == "ok" else ""


@dataclass
class CaseInfo:
    path: str
    name: str
    created: str
    modified: str
    threshold: float
    checkpoint: str  # what the analyst loaded: a folder or hf:org/name@rev
    checkpoint_sha256: str
    device: str
    created_with: str  # dgs_desktop version


def _is_case_file(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            if handle.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                return False
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = connection.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        finally:
            connection.close()
    except (OSError, sqlite3.Error):
        return False
    return row is not None and row[0] == CASE_FORMAT


class Case:
    """An open case file. Every method commits at once: a crash loses nothing written so far."""

    def __init__(self, path: str | os.PathLike, connection: sqlite3.Connection):
        self.path = Path(path)
        self._db = connection

    # ------------------------------------------------------------------------ opening
    @classmethod
    def create(cls, path: str | os.PathLike, name: str | None = None) -> Case:
        """A new, empty case at `path`; refuses to replace any existing file."""
        path = Path(path)
        if path.exists() or path.is_symlink():
            raise CaseError(f"{path} already exists; choose a new file name for the case")
        if not path.parent.is_dir():
            raise CaseError(f"cannot create {path}: folder {path.parent} does not exist")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)  # never races onto a file
            os.close(fd)
            case = cls(path, cls._connect(path))
            created = now_iso()
            with case._db:
                case._db.executescript(_SCHEMA)
                case._db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [
                    ("format", CASE_FORMAT), ("version", str(CASE_VERSION)), ("name", name or path.stem),
                    ("created", created), ("modified", created), ("threshold", repr(DEFAULT_THRESHOLD)),
                    ("checkpoint", ""), ("checkpoint_sha256", ""), ("device", ""),
                    ("created_with", __version__)])
        except (OSError, sqlite3.Error) as exc:
            raise CaseError(f"cannot create the case {path}: {exc}") from None
        return case

    @classmethod
    def open(cls, path: str | os.PathLike) -> Case:
        """An existing case, for reading and writing."""
        path = Path(path)
        if not path.is_file():
            raise CaseError(f"{path} does not exist or is not a file")
        if not _is_case_file(path):
            raise CaseError(f"{path} is not a DGS Desktop case file")
        try:
            case = cls(path, cls._connect(path))
            version = int(case._meta("version") or 0)
        except (sqlite3.Error, ValueError) as exc:
            raise CaseError(f"cannot open the case {path}: {exc}") from None
        if version > CASE_VERSION:
            case.close()
            raise CaseError(f"{path} was written by a newer DGS Desktop (case format {version}); update to open it")
        return case

    @classmethod
    def open_or_create(cls, path: str | os.PathLike) -> Case:
        return cls.open(path) if Path(path).exists() else cls.create(path)

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        connection = sqlite3.connect(path, timeout=5.0)
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute("PRAGMA synchronous = FULL")  # a case must survive a power cut
        return connection

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> Case:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --------------------------------------------------------------------------- meta
    def _meta(self, key: str) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return "" if row is None else row[0]

    def _set_meta(self, values: dict[str, str]) -> None:
        values = dict(values, modified=now_iso())
        self._db.executemany("INSERT INTO meta (key, value) VALUES (?, ?) "
                             "ON CONFLICT(key) DO UPDATE SET value = excluded.value", list(values.items()))

    def info(self) -> CaseInfo:
        try:
            threshold = check_threshold(float(self._meta("threshold")))
        except ValueError:
            threshold = DEFAULT_THRESHOLD
        return CaseInfo(path=str(self.path), name=self._meta("name"), created=self._meta("created"),
                        modified=self._meta("modified"), threshold=threshold,
                        checkpoint=self._meta("checkpoint"), checkpoint_sha256=self._meta("checkpoint_sha256"),
                        device=self._meta("device"), created_with=self._meta("created_with"))

    @property
    def threshold(self) -> float:
        return self.info().threshold

    def set_threshold(self, threshold: float) -> None:
        threshold = check_threshold(threshold)
        with self._db:
            self._set_meta({"threshold": repr(threshold)})

    def set_model(self, checkpoint: str, checkpoint_sha256: str, device: str) -> None:
        with self._db:
            self._set_meta({"checkpoint": checkpoint, "checkpoint_sha256": checkpoint_sha256, "device": device})

    # -------------------------------------------------------------------------- files
    def add_paths(self, paths: Iterable[str]) -> None:
        """Lists files (not scanned yet); paths already in the case are left as they are."""
        added = now_iso()
        with self._db:
            self._db.executemany("INSERT OR IGNORE INTO files (path, added_at) VALUES (?, ?)",
                                 [(str(p), added) for p in paths])

    def set_status(self, paths: Iterable[str], status: str) -> None:
        """Marks files that have no result (queued, not scanned)."""
        with self._db:
            self._db.executemany("UPDATE files SET status = ? WHERE path = ? AND status NOT IN ('ok', 'error')",
                                 [(status, str(p)) for p in paths])

    def record_results(self, results: Iterable, checkpoint: str, checkpoint_sha256: str, device: str,
                       selections: dict | None = None) -> None:
        """Stores scan results (`scan.engine.ScanRecord`-like objects) with the model that made them.

        `selections` maps a path to its patch boxes, low/high flags and entropies
        (`(boxes, low_entropy, entropies)`), so the evidence can be shown again without a rescan.
        """
        selections = selections or {}
        scanned = now_iso()
        rows = []
        for result in results:
            boxes, low, entropies = selections.get(result.path, ((), (), ()))
            rows.append((result.path, result.sha256 or "", result.status, result.fake_probability,
                         result.error or "", result.width, result.height, result.format or "",
                         json.dumps(list(result.notes or [])), result.provenance or "", checkpoint,
                         checkpoint_sha256, device, json.dumps([list(map(int, b)) for b in boxes or ()]),
                         json.dumps([bool(v) for v in low or ()]),
                         json.dumps([float(v) for v in entropies or ()]), scanned, scanned))
        with self._db:
            self._db.executemany(
                "INSERT INTO files (path, sha256, status, fake_probability, error, width, height, format, notes, "
                "provenance, checkpoint, checkpoint_sha256, device, boxes, low_entropy, entropies, added_at, "
                "scanned_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(path) DO UPDATE SET sha256 = excluded.sha256, status = excluded.status, "
                "fake_probability = excluded.fake_probability, error = excluded.error, width = excluded.width, "
                "height = excluded.height, format = excluded.format, notes = excluded.notes, "
                "provenance = excluded.provenance, checkpoint = excluded.checkpoint, "
                "checkpoint_sha256 = excluded.checkpoint_sha256, device = excluded.device, "
                "boxes = excluded.boxes, low_entropy = excluded.low_entropy, entropies = excluded.entropies, "
                "scanned_at = excluded.scanned_at", rows)
            self._set_meta({})

    def set_note(self, path: str, note: str) -> None:
        with self._db:
            self._db.execute("UPDATE files SET analyst_note = ? WHERE path = ?", (note, str(path)))

    def set_tags(self, path: str, tags: Iterable[str]) -> None:
        clean = sorted({t.strip() for t in tags if t and t.strip()})
        with self._db:
            self._db.execute("UPDATE files SET tags = ? WHERE path = ?", (json.dumps(clean), str(path)))

    def files(self) -> list[CaseFile]:
        """Every file in the order it was added."""
        cursor = self._db.execute(
            "SELECT path, sha256, status, fake_probability, error, width, height, format, notes, provenance, "
            "checkpoint, checkpoint_sha256, device, boxes, low_entropy, entropies, analyst_note, tags, added_at, "
            "scanned_at FROM files ORDER BY id")
        return [_case_file(row) for row in cursor]

    def file(self, path: str) -> CaseFile | None:
        return next((f for f in self.files() if f.path == str(path)), None)

    def duplicates(self) -> dict[str, list[str]]:
        """sha256 -> paths, for content listed more than once (first-added path first)."""
        groups: dict[str, list[str]] = {}
        for row in self._db.execute("SELECT sha256, path FROM files WHERE sha256 != '' ORDER BY id"):
            groups.setdefault(row[0], []).append(row[1])
        return {sha: paths for sha, paths in groups.items() if len(paths) > 1}


def _loads(text: str | None, default):
    try:
        value = json.loads(text) if text else default
    except (TypeError, ValueError):
        return default
    return value if isinstance(value, type(default)) else default


def _case_file(row) -> CaseFile:
    (path, sha256, status, probability, error, width, height, fmt, notes, provenance, checkpoint,
     checkpoint_sha256, device, boxes, low, entropies, note, tags, added_at, scanned_at) = row
    return CaseFile(path=path, sha256=sha256, status=status, fake_probability=probability, error=error,
                    width=width, height=height, format=fmt, notes=[str(n) for n in _loads(notes, [])],
                    provenance=provenance, checkpoint=checkpoint, checkpoint_sha256=checkpoint_sha256,
                    device=device, boxes=[tuple(int(v) for v in b) for b in _loads(boxes, []) if len(b) == 4],
                    low_entropy=[bool(v) for v in _loads(low, [])], entropies=[float(v) for v in _loads(entropies, [])],
                    analyst_note=note, tags=[str(t) for t in _loads(tags, [])], added_at=added_at,
                    scanned_at=scanned_at)


def read_case(path: str | os.PathLike) -> tuple[CaseInfo, list[CaseFile]]:
    """The case's facts and files, read without changing the file (for reports)."""
    path = Path(path)
    if not _is_case_file(path):
        raise CaseError(f"{path} is not a DGS Desktop case file")
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise CaseError(f"cannot read the case {path}: {exc}") from None
    case = Case(path, connection)
    try:
        return case.info(), case.files()
    except sqlite3.Error as exc:
        raise CaseError(f"cannot read the case {path}: {exc}") from None
    finally:
        case.close()
