"""A case: one SQLite file that keeps an analyst's work (files, hashes, scores, model, notes).

The window saves into the open case as results arrive, so nothing is lost when it closes;
`dgs-desktop --case FILE` and File -> Open case reopen it, and the report command reads it
with `read_case`. No Qt here: the CLI uses this module as it is.

What a file's verdict rests on is stored with it: the probability, the threshold of the case
and the sha256 of the checkpoint manifest that produced the score. The verdict itself is
never stored; it is recomputed with `dgs_desktop.verdict.verdict` (one rule everywhere).

Nothing the analyst did is lost: `files` holds each file's current score, and every scoring
is also appended to `scores` (never updated, except to add a stability check to the same
score), so re-scoring with another model keeps the earlier results beside the new ones. The
`audit` table is the case's log: timestamped actions (created, opened, files added, scanned
with which model, threshold changed, notes, exports), appended and never changed.

Safety: a case file is only ever written when this program created it (the `meta` table
names the format); an existing file that is not a case is refused, never overwritten.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from . import __version__
from .errors import InputError
from .ownfiles import CASE_FORMAT as CASE_FORMAT
from .ownfiles import CASE_SUFFIX as CASE_SUFFIX
from .ownfiles import is_case_file
from .record import SQL_COLUMNS, ScanRecord, record_from_sql, sql_column_definitions, sql_values
from .verdict import DEFAULT_THRESHOLD, check_threshold

log = logging.getLogger(__name__)

_T = TypeVar("_T")
# A file's patch boxes, their low-entropy flags and entropies (what the evidence view shows).
Evidence = tuple[Sequence[Sequence[int]], Sequence[bool], Sequence[float | None]]

# 2: the files table holds every ScanRecord column (added to a version-1 file on open)
# 3: every scoring kept in `scores`, the case's log in `audit` (a version-2 file's scores seed both on open)
CASE_VERSION = 3

# What a scan stores; the analyst's note and tags, and when the file was added, are kept as they are.
_RESULT_COLUMNS = tuple(c for c in SQL_COLUMNS if c not in ("analyst_note", "tags", "added_at"))
# One scoring in the history: the result without the evidence boxes (they depend on the image only).
SCORE_COLUMNS = tuple(c for c in _RESULT_COLUMNS if c not in ("boxes", "low_entropy", "entropies"))
_SCORE_EXTRA = ("threshold REAL", "calibration_sha256 TEXT NOT NULL DEFAULT ''")
_STABILITY_COLUMNS = ("stability_orders", "stability_low", "stability_high")
_SAME_SCORING = ("sha256", "status", "fake_probability", "checkpoint_sha256", "device", "precision")


def _score_definitions() -> list[str]:
    return [*_SCORE_EXTRA, *(d for d in sql_column_definitions() if d.split()[0] in SCORE_COLUMNS)]


def _history_schema() -> str:
    columns = ["id INTEGER PRIMARY KEY AUTOINCREMENT", *_score_definitions()]
    return (f"CREATE TABLE IF NOT EXISTS scores (\n    {(','+chr(10)+'    ').join(columns)}\n);\n"
            "CREATE INDEX IF NOT EXISTS scores_path ON scores (path);\n"
            "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, "
            "user TEXT NOT NULL DEFAULT '', action TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '', "
            "data TEXT NOT NULL DEFAULT '{}');\n")


def _schema() -> str:
    """The tables, generated from the record's fields (dgs_desktop.record): one column list."""
    columns = ["id INTEGER PRIMARY KEY AUTOINCREMENT", "path TEXT NOT NULL UNIQUE"]
    columns += [c for c in sql_column_definitions() if not c.startswith("path ")]
    return ("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);\n"
            f"CREATE TABLE IF NOT EXISTS files (\n    {(','+chr(10)+'    ').join(columns)}\n);\n"
            "CREATE INDEX IF NOT EXISTS files_sha256 ON files (sha256);\n" + _history_schema())


_SCHEMA = _schema()


class CaseError(InputError):
    """A case file cannot be opened or written; one line for the user."""


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def current_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):  # no user name in the environment or the password database
        return ""


@dataclass
class ScoreEntry:
    """One scoring of one file, as the case's history keeps it."""

    record: ScanRecord
    threshold: float | None  # the case's threshold when the score was stored
    calibration_sha256: str = ""


@dataclass
class AuditEntry:
    at: str  # UTC, ISO 8601
    user: str
    action: str  # created, opened, added, scanned, threshold, model, calibration, note, tags, exported, ...
    detail: str
    data: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclass
class ScoringRun:
    """The scores of one model on one device and precision (the history's groups)."""

    checkpoint: str
    checkpoint_sha256: str
    device: str
    precision: str
    first: str
    last: str
    files: int
    ok: int
    thresholds: list[float]


def scoring_runs(scores: list[ScoreEntry]) -> list[ScoringRun]:
    """The history grouped by model, device and precision, in the order each group began."""
    runs: dict[tuple[str, str, str], ScoringRun] = {}
    paths: dict[tuple[str, str, str], set[str]] = {}
    for entry in scores:
        record = entry.record
        key = (record.checkpoint_sha256, record.device, record.precision)
        run = runs.get(key)
        if run is None:
            run = runs[key] = ScoringRun(record.checkpoint, record.checkpoint_sha256, record.device, record.precision,
                                         record.scanned_at, record.scanned_at, 0, 0, [])
            paths[key] = set()
        run.last = max(run.last, record.scanned_at)
        if record.path not in paths[key]:
            paths[key].add(record.path)
            run.files += 1
            run.ok += record.ok
        if entry.threshold is not None and entry.threshold not in run.thresholds:
            run.thresholds.append(entry.threshold)
    return list(runs.values())


CaseFile = ScanRecord  # one file of a case, as stored: the scan's own record


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
    examiner: str = ""  # who examines the case, and the case number the report carries
    case_number: str = ""


class Case:
    """An open case file. Every method commits at once: a crash loses nothing written so far."""

    def __init__(self, path: str | os.PathLike[str], connection: sqlite3.Connection):
        self.path = Path(path)
        self._db = connection

    # ------------------------------------------------------------------------ opening
    @classmethod
    def create(cls, path: str | os.PathLike[str], name: str | None = None) -> Case:
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
                case._log("created", f"case {path.name} created by dgs-desktop {__version__}")
        except (OSError, sqlite3.Error) as exc:
            raise CaseError(f"cannot create the case {path}: {exc}") from None
        return case

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Case:
        """An existing case, for reading and writing."""
        path = Path(path)
        if not path.is_file():
            raise CaseError(f"{path} does not exist or is not a file")
        if not is_case_file(path):
            raise CaseError(f"{path} is not a DGS Desktop case file")
        try:
            case = cls(path, cls._connect(path))
            version = int(case._meta("version") or 0)
        except (sqlite3.Error, ValueError) as exc:
            raise CaseError(f"cannot open the case {path}: {exc}") from None
        if version > CASE_VERSION:
            case.close()
            raise CaseError(f"{path} was written by a newer DGS Desktop (case format {version}); update to open it")
        try:
            case._upgrade()
        except sqlite3.Error as exc:
            case.close()
            raise CaseError(f"cannot open the case {path}: {exc}") from None
        return case

    def _columns(self) -> list[str]:
        return [row[1] for row in self._db.execute("PRAGMA table_info(files)")]

    def _tables(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def _upgrade(self) -> None:
        """Adds what a case of an older version lacks (nothing stored is changed): the columns of
        `files`, and the history and log, seeded with the scores it holds."""
        present = set(self._columns())
        missing = [d for d in sql_column_definitions() if d.split()[0] not in present]
        had_history = {"scores", "audit"} <= self._tables()
        if not missing and had_history and int(self._meta("version") or 0) >= CASE_VERSION:
            return
        with self._db:
            for definition in missing:
                self._db.execute(f"ALTER TABLE files ADD COLUMN {definition}")
            for statement in _history_schema().split(";\n"):
                if statement.strip():
                    self._db.execute(statement)
            score_present = {row[1] for row in self._db.execute("PRAGMA table_info(scores)")}
            for definition in _score_definitions():
                if definition.split()[0] not in score_present:
                    self._db.execute(f"ALTER TABLE scores ADD COLUMN {definition}")
            if not had_history:
                columns = ", ".join(SCORE_COLUMNS)
                seeded = self._db.execute(
                    f"INSERT INTO scores (threshold, {columns}) SELECT ?, {columns} FROM files "
                    "WHERE status IN ('ok', 'error') ORDER BY id", (self.info().threshold,)).rowcount
                self._log("upgraded", f"case format {self._meta('version') or 1} → {CASE_VERSION}: the log starts "
                          f"here; the {seeded} stored score(s) are the history's first entries")
            self._set_meta({"version": str(CASE_VERSION)})

    @classmethod
    def open_or_create(cls, path: str | os.PathLike[str]) -> Case:
        return cls.open(path) if Path(path).exists() else cls.create(path)

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        connection = sqlite3.connect(path, timeout=5.0)
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute("PRAGMA synchronous = FULL")  # a case must survive a power cut
        return connection

    def close(self) -> None:
        self._db.close()  # closing again does nothing

    def __enter__(self) -> Case:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --------------------------------------------------------------------------- meta
    def _meta(self, key: str) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return "" if row is None else row[0]

    def _set_meta(self, values: dict[str, str]) -> None:
        values = dict(values, modified=now_iso())
        self._db.executemany("INSERT INTO meta (key, value) VALUES (?, ?) "
                             "ON CONFLICT(key) DO UPDATE SET value = excluded.value", list(values.items()))

    # ---------------------------------------------------------------------------- log
    def _log(self, action: str, detail: str, data: dict[str, Any] | None = None) -> None:
        self._db.execute("INSERT INTO audit (at, user, action, detail, data) VALUES (?, ?, ?, ?, ?)",
                         (now_iso(), current_user(), action, detail, json.dumps(data or {}, ensure_ascii=False)))

    def log(self, action: str, detail: str, **data: Any) -> None:
        """Appends one timestamped action to the case's log."""
        with self._db:
            self._log(action, detail, data)

    def audit(self) -> list[AuditEntry]:
        """The case's log, oldest first (empty for a case made before it had one and not reopened)."""
        if "audit" not in self._tables():
            return []
        entries = []
        for at, user, action, detail, data in self._db.execute(
                "SELECT at, user, action, detail, data FROM audit ORDER BY id"):
            try:
                values = json.loads(data) if data else {}
            except ValueError:
                values = {}
            entries.append(AuditEntry(at, user or "", action, detail or "", values if isinstance(values, dict) else {}))
        return entries

    def info(self) -> CaseInfo:
        try:
            threshold = check_threshold(float(self._meta("threshold")))
        except ValueError:
            threshold = DEFAULT_THRESHOLD
        return CaseInfo(path=str(self.path), name=self._meta("name"), created=self._meta("created"),
                        modified=self._meta("modified"), threshold=threshold,
                        checkpoint=self._meta("checkpoint"), checkpoint_sha256=self._meta("checkpoint_sha256"),
                        device=self._meta("device"), created_with=self._meta("created_with"),
                        examiner=self._meta("examiner"), case_number=self._meta("case_number"))

    def set_details(self, examiner: str, case_number: str) -> None:
        """The examiner and the case number (shown at the top of the report); a change is logged."""
        examiner, case_number = examiner.strip(), case_number.strip()
        if (examiner, case_number) == (self._meta("examiner"), self._meta("case_number")):
            return
        with self._db:
            self._set_meta({"examiner": examiner, "case_number": case_number})
            self._log("details", f"examiner {examiner or '(none)'}, case number {case_number or '(none)'}")

    @property
    def threshold(self) -> float:
        return self.info().threshold

    def set_threshold(self, threshold: float) -> None:
        threshold = check_threshold(threshold)
        with self._db:
            self._set_meta({"threshold": repr(threshold)})

    def set_model(self, checkpoint: str, checkpoint_sha256: str, device: str) -> None:
        """The model in use; logged when it is another model or device than before."""
        before = (self._meta("checkpoint_sha256"), self._meta("device"))
        with self._db:
            self._set_meta({"checkpoint": checkpoint, "checkpoint_sha256": checkpoint_sha256, "device": device})
            if before != (checkpoint_sha256, device):
                self._log("model", f"model {checkpoint} (manifest sha256 {checkpoint_sha256}) on {device}",
                          {"checkpoint": checkpoint, "checkpoint_sha256": checkpoint_sha256, "device": device})

    # -------------------------------------------------------------------------- files
    def add_paths(self, paths: Iterable[str]) -> list[str]:
        """Lists files (not scanned yet); paths already in the case are left as they are.
        Returns the new ones (logged as one action)."""
        added = now_iso()
        known = {row[0] for row in self._db.execute("SELECT path FROM files")}
        new = list(dict.fromkeys(str(p) for p in paths if str(p) not in known))
        if not new:
            return []
        with self._db:
            self._db.executemany("INSERT OR IGNORE INTO files (path, added_at) VALUES (?, ?)",
                                 [(p, added) for p in new])
            folders = sorted({os.path.dirname(p) for p in new})
            shown = ", ".join(folders[:3]) + (f" and {len(folders) - 3} more folders" if len(folders) > 3 else "")
            self._log("added", f"{len(new)} file(s) added from {shown}", {"paths": new})
        return new

    def set_status(self, paths: Iterable[str], status: str) -> None:
        """Marks files that have no result (queued, not scanned)."""
        with self._db:
            self._db.executemany("UPDATE files SET status = ? WHERE path = ? AND status NOT IN ('ok', 'error')",
                                 [(status, str(p)) for p in paths])

    def record_results(self, results: Iterable[object], checkpoint: str, checkpoint_sha256: str, device: str,
                       selections: dict[str, Evidence] | None = None, precision: str = "", threshold: float | None = None,
                       calibration_sha256: str = "") -> None:
        """Stores scan results (ScanRecords, or objects with their fields) with the model that made them.

        `selections` maps a path to its patch boxes, low/high flags and entropies
        (`(boxes, low_entropy, entropies)`) when the records do not carry them, so the evidence
        can be shown again without a rescan. The analyst's note and tags are left as they are.
        Each result is also appended to the history with `threshold` (default: the case's); the
        same score stored again (a stability check added) completes its history entry instead.
        """
        selections = selections or {}
        threshold = self.threshold if threshold is None else check_threshold(threshold)
        scanned = now_iso()
        rows: list[list[Any]] = []
        history: list[dict[str, Any]] = []
        for result in results:
            record = _as_record(result)
            boxes, low, entropies = selections.get(record.path, (record.boxes, record.low_entropy, record.entropies))
            record.boxes = [tuple(map(int, b)) for b in boxes or ()]
            record.low_entropy, record.entropies = [bool(v) for v in low or ()], list(entropies or ())
            record.checkpoint, record.checkpoint_sha256, record.device = checkpoint, checkpoint_sha256, device
            record.precision = precision or record.precision
            record.scanned_at = record.added_at = scanned
            values = dict(zip(SQL_COLUMNS, sql_values(record)))
            rows.append([values[c] for c in ("added_at", *_RESULT_COLUMNS)])
            history.append(values)
        columns = ", ".join(("added_at", *_RESULT_COLUMNS))
        updates = ", ".join(f"{c} = excluded.{c}" for c in _RESULT_COLUMNS if c != "path")
        with self._db:
            self._db.executemany(
                f"INSERT INTO files ({columns}) VALUES ({', '.join('?' * (len(_RESULT_COLUMNS) + 1))}) "
                f"ON CONFLICT(path) DO UPDATE SET {updates}", rows)
            for values in history:
                self._append_score(values, threshold, calibration_sha256)
            self._set_meta({})

    def _append_score(self, values: dict[str, Any], threshold: float, calibration_sha256: str) -> None:
        last = self._db.execute(f"SELECT id, threshold, calibration_sha256, {', '.join(_SAME_SCORING)} FROM scores "
                                "WHERE path = ? ORDER BY id DESC LIMIT 1", (values["path"],)).fetchone()
        if last is not None and tuple(last[1:]) == (threshold, calibration_sha256, *(values[c] for c in _SAME_SCORING)):
            self._db.execute(f"UPDATE scores SET {', '.join(f'{c} = ?' for c in _STABILITY_COLUMNS)} WHERE id = ?",
                             [*(values[c] for c in _STABILITY_COLUMNS), last[0]])
            return
        columns = ("threshold", "calibration_sha256", *SCORE_COLUMNS)
        self._db.execute(f"INSERT INTO scores ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                         [threshold, calibration_sha256, *(values[c] for c in SCORE_COLUMNS)])

    def scores(self, path: str | None = None) -> list[ScoreEntry]:
        """Every scoring kept, oldest first (of one file, or of all)."""
        if "scores" not in self._tables():
            return []
        present = [row[1] for row in self._db.execute("PRAGMA table_info(scores)")]
        columns = ", ".join(c for c in ("threshold", "calibration_sha256", *SCORE_COLUMNS) if c in present)
        where, args = ("WHERE path = ?", (str(path),)) if path is not None else ("", ())
        self._db.row_factory = sqlite3.Row
        try:
            rows = list(self._db.execute(f"SELECT {columns} FROM scores {where} ORDER BY id", args))
        finally:
            self._db.row_factory = None
        return [ScoreEntry(record_from_sql(row), row["threshold"], row["calibration_sha256"] or "") for row in rows]

    def _annotation(self, path: str, column: str) -> str | None:
        row = self._db.execute(f"SELECT {column} FROM files WHERE path = ?", (str(path),)).fetchone()
        return None if row is None else row[0]

    def set_note(self, path: str, note: str) -> None:
        """The analyst's note on a file; a change is logged with the new text."""
        before = self._annotation(path, "analyst_note")
        with self._db:
            self._db.execute("UPDATE files SET analyst_note = ? WHERE path = ?", (note, str(path)))
            if before is not None and before != note:
                self._log("note", f"note on {os.path.basename(str(path))}: {note or '(removed)'}", {"path": str(path)})

    def set_tags(self, path: str, tags: Iterable[str]) -> None:
        clean = sorted({t.strip() for t in tags if t and t.strip()})
        before = self._annotation(path, "tags")
        with self._db:
            self._db.execute("UPDATE files SET tags = ? WHERE path = ?", (json.dumps(clean), str(path)))
            if before is not None and json.loads(before or "[]") != clean:
                self._log("tags", f"tags on {os.path.basename(str(path))}: {', '.join(clean) or '(none)'}",
                          {"path": str(path)})

    def files(self) -> list[ScanRecord]:
        """Every file in the order it was added (a read-only older case: the columns it has)."""
        present = set(self._columns())
        columns = ", ".join(c for c in SQL_COLUMNS if c in present)
        self._db.row_factory = sqlite3.Row
        try:
            return [record_from_sql(row) for row in self._db.execute(f"SELECT {columns} FROM files ORDER BY id")]
        finally:
            self._db.row_factory = None

    def file(self, path: str) -> ScanRecord | None:
        return next((f for f in self.files() if f.path == str(path)), None)

    def duplicates(self) -> dict[str, list[str]]:
        """sha256 -> paths, for content listed more than once (first-added path first)."""
        groups: dict[str, list[str]] = {}
        for row in self._db.execute("SELECT sha256, path FROM files WHERE sha256 != '' ORDER BY id"):
            groups.setdefault(row[0], []).append(row[1])
        return {sha: paths for sha, paths in groups.items() if len(paths) > 1}


def _as_record(result: object) -> ScanRecord:
    """A copy of a ScanRecord, or one from an object with (some of) its fields."""
    if isinstance(result, ScanRecord):
        return dataclasses.replace(result, selection=None)
    values = {f.name: getattr(result, f.name) for f in dataclasses.fields(ScanRecord)
              if f.name != "selection" and hasattr(result, f.name)}
    return ScanRecord(**values)


def _read(path: str | os.PathLike[str], read: Callable[[Case], _T]) -> _T:
    path = Path(path)
    if not is_case_file(path):
        raise CaseError(f"{path} is not a DGS Desktop case file")
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise CaseError(f"cannot read the case {path}: {exc}") from None
    case = Case(path, connection)
    try:
        return read(case)
    except sqlite3.Error as exc:
        raise CaseError(f"cannot read the case {path}: {exc}") from None
    finally:
        case.close()


def read_case(path: str | os.PathLike[str]) -> tuple[CaseInfo, list[CaseFile]]:
    """The case's facts and files, read without changing the file (for reports)."""
    return _read(path, lambda case: (case.info(), case.files()))


def read_history(path: str | os.PathLike[str]) -> tuple[list[ScoreEntry], list[AuditEntry]]:
    """Every scoring the case keeps and its log, read without changing the file."""
    return _read(path, lambda case: (case.scores(), case.audit()))
