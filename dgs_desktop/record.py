"""One scanned file, one record: what the scan produces and the CSV, the case, the window and
the report read. Torch-free and Qt-free.

Each stored field of `ScanRecord` names its CSV column and its SQL column in its metadata, so
the column lists exist once: `CSV_COLUMNS` (the scan CSV's header, the stored fields plus the
ones derived at writing time: verdict, reasons, reference rate, run facts) and `SQL_COLUMNS`
(the case file's `files` table) are generated from them. A field's codec follows its type:

    text      CSV as is              SQL TEXT
    int/float CSV number ('' = None) SQL INTEGER/REAL (NULL = None)
    flag      CSV 'yes' or ''        SQL INTEGER 0/1
    list      CSV '; '-joined text   SQL JSON
    json      (not in the CSV)       SQL JSON (patch boxes, flags, entropies)
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .detector.patches import PATCH_SIZE, PatchSelection, high_frequency_ratio, reliability_notes
from .verdict import verdict


class Status(str, enum.Enum):
    """Where a file stands: scored, failed (with an error), or not scored yet."""

    OK = "ok"
    ERROR = "error"
    QUEUED = "queued"
    NOT_SCANNED = "not scanned"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, text: str) -> Status:
        return cls(str(text))


@dataclass(frozen=True)
class RunInfo:
    """What every row records about the run that scored it. `calibration` (a
    `dgs_desktop.calibration.Calibration`) replaces the checkpoint's threshold when given."""

    checkpoint: str
    checkpoint_sha256: str
    device: str
    threshold: float
    precision: str = "fp32"
    calibration: Any = None
    tta_orders: int = 1

    @property
    def calibration_sha256(self) -> str:
        return "" if self.calibration is None else self.calibration.sha256


# The field helpers return dataclasses.field(...), which stands for the field's value: Any here.
def _column(codec: str, csv: str | None, sql: str | None, **kwargs: Any) -> Any:
    return field(metadata={"codec": codec, "csv": csv, "sql": sql}, **kwargs)


def text(csv: str | None = None, sql: str | None = None, default: str = "") -> Any:
    return _column("text", csv, sql, default=default)


def number(kind: str, csv: str | None = None, sql: str | None = None) -> Any:
    return _column(kind, csv, sql, default=None)


def flag(csv: str | None = None, sql: str | None = None) -> Any:
    return _column("flag", csv, sql, default=False)


def text_list(csv: str | None = None, sql: str | None = None) -> Any:
    return _column("list", csv, sql, default_factory=list)


def json_value(sql: str) -> Any:
    return _column("json", None, sql, default_factory=list)


@dataclass
class ScanRecord:
    path: str = text("path", "path")
    status: Status = _column("status", "status", "status", default=Status.QUEUED)
    sha256: str = text("sha256", "sha256")
    fake_probability: float | None = number("float", "fake_probability", "fake_probability")
    error: str = text("error", "error")
    width: int | None = number("int", "width", "width")
    height: int | None = number("int", "height", "height")
    format: str = text("format", "format")
    # Reliability, structured (the window's warning and the inconclusive reasons read these, never the notes)
    distinct_patches: int | None = number("int", "distinct_patches", "distinct_patches")
    padded: bool = flag("padded", "padded")
    jpeg_quality: int | None = number("int", "jpeg_quality", "jpeg_quality")
    high_frequency_ratio: float | None = number("float", "high_frequency_ratio", "high_frequency_ratio")
    provenance_claim: str = text("provenance_claim", "provenance_claim")  # "ai", "camera" or ""
    stability_orders: int | None = number("int", "stability_orders", "stability_orders")
    stability_low: float | None = number("float", "stability_low", "stability_low")
    stability_high: float | None = number("float", "stability_high", "stability_high")
    notes: list[str] = text_list("notes", "notes")
    provenance: str = text("provenance", "provenance")
    same_content_as: str = text("same_content_as", "same_content_as")
    analyst_note: str = text("analyst_note", "analyst_note")
    tags: list[str] = text_list("tags", "tags")
    # The evidence: which patch is in which mosaic cell (case only; the CSV names no boxes)
    boxes: list[tuple[int, ...]] = json_value("boxes")
    low_entropy: list[bool] = json_value("low_entropy")
    entropies: list[float | None] = json_value("entropies")
    # Who scored it (the case keeps them per file; the CSV writes them from the run)
    checkpoint: str = text(None, "checkpoint")
    checkpoint_sha256: str = text(None, "checkpoint_sha256")
    device: str = text(None, "device")
    precision: str = text(None, "precision")
    scanned_at: str = text(None, "scanned_at")
    added_at: str = text(None, "added_at")
    selection: PatchSelection | None = field(default=None, metadata={"codec": None}, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.status, Status):
            self.status = Status.parse(str(self.status))

    @property
    def ok(self) -> bool:
        return self.status == Status.OK

    @property
    def scanned(self) -> bool:
        return self.status in (Status.OK, Status.ERROR)

    def verdict(self, threshold: float) -> str:
        """The two-way rule, p > threshold (counts that ignore the reasons); see `assess` for the row's verdict."""
        return verdict(self.fake_probability, threshold) if self.ok else ""

    @property
    def stability(self) -> tuple[float, float] | None:
        if self.stability_low is None or self.stability_high is None:
            return None
        return (self.stability_low, self.stability_high)

    def record_spread(self, scores: Iterable[float]) -> None:
        """The stability fields from the P(fake) of the content-seeded order and K others
        (the scan's `--stability K` and the window's check store them alike)."""
        values = [float(p) for p in scores]
        self.stability_orders = len(values) - 1
        self.stability_low, self.stability_high = reported_probability(min(values)), reported_probability(max(values))

    def with_selection(self, selection: PatchSelection) -> None:
        """Takes the reliability facts and the evidence boxes from the patch selection (not the
        selection itself: its mosaic is 150 KB)."""
        self.high_frequency_ratio = high_frequency_ratio(selection)
        self.distinct_patches = selection.distinct_patches
        self.padded = selection.padded
        self.boxes = [tuple(map(int, box)) for box in selection.boxes]
        self.low_entropy = [bool(v) for v in selection.low_entropy]
        self.entropies = [None if math.isnan(v) else float(v) for v in selection.entropies]

    def evidence(self) -> tuple[list[tuple[int, int, int, int]], list[bool], list[float]]:
        return ([(int(b[0]), int(b[1]), int(b[2]), int(b[3])) for b in self.boxes if len(b) == 4],
                [bool(v) for v in self.low_entropy],
                [math.nan if v is None else float(v) for v in self.entropies])


def reliability_warning(record: ScanRecord) -> str:
    """Why a score deserves less trust, or "": fewer than 49 distinct patches, or padding (a
    short side), in the words of the scan's notes (`detector.patches.reliability_notes`).

    Read from the record's structured fields (`distinct_patches`, `padded`); a record stored
    before they existed falls back to its image size (a side under 32 px is padded; fewer than
    49 whole 32x32 patches means repeated or empty cells), never to the wording of its notes.
    """
    width, height = record.width, record.height
    distinct = record.distinct_patches
    sized = width is not None and height is not None and width > 0 and height > 0
    if distinct is None and width and height:
        distinct = max(1, width // PATCH_SIZE) * max(1, height // PATCH_SIZE)
    padded = bool(record.padded) or (sized and min(width or 0, height or 0) < PATCH_SIZE)
    return "; ".join(reliability_notes(distinct, padded))


STORED_FIELDS = tuple(f for f in dataclasses.fields(ScanRecord) if f.metadata.get("codec"))
_CSV_FIELDS = {f.metadata["csv"]: f for f in STORED_FIELDS if f.metadata["csv"]}
SQL_FIELDS = tuple(f for f in STORED_FIELDS if f.metadata["sql"])
SQL_COLUMNS = tuple(f.metadata["sql"] for f in SQL_FIELDS)

# Derived at writing time (README "CSV columns"): the verdict and what it rests on.
DERIVED_COLUMNS = ("verdict", "inconclusive_reasons", "threshold", "reference_fpr", "reference_n", "checkpoint",
                   "checkpoint_sha256", "calibration_sha256", "device", "precision", "tta_orders",
                   "dgs_desktop_version", "path_bytes_hex")
# The first seven are the contract's, in its order (shared/DESIGN.md "CSV").
CSV_COLUMNS = ("path", "sha256", "status", "fake_probability", "verdict", "threshold", "error",
               "inconclusive_reasons", "reference_fpr", "reference_n", "width", "height", "format", "distinct_patches", "padded",
               "jpeg_quality", "high_frequency_ratio", "provenance_claim", "stability_orders", "stability_low",
               "stability_high", "notes", "provenance", "same_content_as", "analyst_note", "tags", "checkpoint",
               "checkpoint_sha256", "calibration_sha256", "device", "precision", "tta_orders",
               "dgs_desktop_version", "path_bytes_hex")
assert set(CSV_COLUMNS) == set(_CSV_FIELDS) | set(DERIVED_COLUMNS), "every CSV column is a field or derived"

_SQL_TYPES = {"text": "TEXT NOT NULL DEFAULT ''", "status": "TEXT NOT NULL DEFAULT 'queued'", "int": "INTEGER",
              "float": "REAL", "flag": "INTEGER NOT NULL DEFAULT 0", "list": "TEXT NOT NULL DEFAULT '[]'",
              "json": "TEXT NOT NULL DEFAULT '[]'"}


def sql_column_definitions() -> list[str]:
    """`name TYPE` for each stored field (the case's `files` table)."""
    return [f"{f.metadata['sql']} {_SQL_TYPES[f.metadata['codec']]}" for f in SQL_FIELDS]


# ------------------------------------------------------------------------------ CSV codec
PROBABILITY_DECIMALS = 8  # the CSV's precision; the scan rounds to it, so the score written is the score judged


def reported_probability(p: float) -> float:
    """P(fake) as the scan reports, judges and stores it (NaN stays NaN: an error row)."""
    return round(float(p), PROBABILITY_DECIMALS) if math.isfinite(p) else float(p)


def format_probability(value: float | None) -> str:
    return "" if value is None else f"{value:.{PROBABILITY_DECIMALS}f}"


def format_threshold(value: float) -> str:
    """Shortest text that reads back as the same float: a calibrated threshold keeps every digit."""
    return repr(float(value))


def _csv_value(codec: str, value: Any) -> str:
    if value is None:
        return ""
    if codec == "float":
        return format_probability(value)
    if codec == "flag":
        return "yes" if value else ""
    if codec == "list":
        return "; ".join(str(v) for v in value)
    if codec == "status":
        return Status.parse(str(value)).value
    return str(value)


def csv_values(record: ScanRecord) -> dict[str, str]:
    """The record's own CSV cells (before the cell safety rules; derived columns not included)."""
    return {name: _csv_value(f.metadata["codec"], getattr(record, f.name)) for name, f in _CSV_FIELDS.items()}


def _parse_csv_value(codec: str, text_value: str) -> Any:
    if codec == "status":
        return Status.parse(text_value)
    if codec == "int":
        return int(text_value) if text_value.strip() else None
    if codec == "float":
        if not text_value.strip():
            return None
        value = float(text_value)
        return value if math.isfinite(value) else None
    if codec == "flag":
        return text_value.strip().lower() in ("yes", "true", "1")
    if codec == "list":
        return [part for part in text_value.split("; ") if part]
    return text_value


def record_from_csv(row: dict[str, str]) -> ScanRecord:
    """A record from a CSV row (our writer's, or an older version's: missing columns keep their
    defaults). A cell that does not parse keeps the default too: the row's own `status` and
    probability were checked by the CSV reader."""
    values: dict[str, Any] = {}
    for name, f in _CSV_FIELDS.items():
        cell = row.get(name)
        if cell is None:
            continue
        try:
            values[f.name] = _parse_csv_value(f.metadata["codec"], cell)
        except ValueError:
            continue
    for name in ("checkpoint", "checkpoint_sha256", "device", "precision"):
        values[name] = row.get(name) or ""
    return ScanRecord(**values)


# ------------------------------------------------------------------------------ SQL codec
def sql_values(record: ScanRecord) -> list[Any]:
    values: list[Any] = []
    for f in SQL_FIELDS:
        value, codec = getattr(record, f.name), f.metadata["codec"]
        if codec in ("list", "json"):
            value = json.dumps(list(value or []))
        elif codec == "flag":
            value = int(bool(value))
        elif codec == "status":
            value = Status.parse(str(value)).value
        values.append(value)
    return values


def _loads(text_value: str | None) -> list[Any]:
    try:
        value = json.loads(text_value) if text_value else []
    except (TypeError, ValueError):
        return []
    return value if isinstance(value, list) else []


def record_from_sql(row: sqlite3.Row) -> ScanRecord:
    """A record from a `sqlite3.Row` of SQL_COLUMNS (a damaged JSON cell reads as empty)."""
    values: dict[str, Any] = {}
    keys = row.keys()
    for f in SQL_FIELDS:
        name, codec = f.metadata["sql"], f.metadata["codec"]
        if name not in keys:
            continue
        value = row[name]
        if codec in ("list", "json"):
            value = _loads(value)
            if codec == "list":
                value = [str(v) for v in value]
            elif name == "boxes":
                value = [tuple(int(v) for v in box) for box in value if isinstance(box, list) and len(box) == 4]
        elif codec == "flag":
            value = bool(value)
        elif codec == "text":
            value = value or ""
        elif codec == "status":
            try:
                value = Status.parse(value)
            except ValueError:
                value = Status.QUEUED
        values[f.name] = value
    return ScanRecord(**values)
