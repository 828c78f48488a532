"""What a report is made from: the rows of a scan CSV (or of a case file), and the model.

A CSV that is not a DGS Desktop scan CSV is refused with one line. Every value is kept as
text from outside: the HTML builder escapes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..case import AuditEntry, ScoreEntry, read_history
from ..case import read_case as read_case_file
from ..detector.hubaccess import is_hub_checkpoint
from ..detector.manifest import MANIFEST_NAME, MAX_MANIFEST_BYTES, sha256_file
from ..errors import InputError
from ..record import RunInfo, ScanRecord, Status, record_from_csv
from ..scan.content import ContentGroups
from ..verdict import DEFAULT_THRESHOLD, Assessment, assess, is_valid_probability

_T = TypeVar("_T")


@dataclass
class ReportItem:
    """One file of the report: its record, the threshold its verdict used, and what a
    calibration said of its score."""

    record: ScanRecord
    threshold: float = DEFAULT_THRESHOLD
    file: Path | None = None  # the file itself (a name that is not UTF-8 keeps its exact bytes)
    reference_fpr: float | None = None  # share of the calibration's real photos scoring at least as high
    reference_n: int | None = None
    note: str = ""  # the analyst's note and tags

    @property
    def path(self) -> str:
        return self.record.path

    @property
    def assessment(self) -> Assessment:
        return assess(self.record, self.threshold)


@dataclass
class RunDetails:
    """What the rows say about the scan that produced them (distinct values, in order)."""

    checkpoints: list[str] = field(default_factory=list)
    checkpoint_sha256s: list[str] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    precisions: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    thresholds: list[float] = field(default_factory=list)
    calibrations: list[str] = field(default_factory=list)  # calibration sha256s
    reference_ns: list[int] = field(default_factory=list)


@dataclass
class ReportSource:
    path: Path
    kind: str  # "scan CSV", "case file" or "window session"
    sha256: str
    modified: float  # st_mtime of the source
    items: list[ReportItem]
    run: RunDetails
    case_name: str = ""
    time_meaning: str = "the scan CSV's modification time"  # what `modified` is
    time_label: str = "CSV last changed"  # how the report names `modified`
    history: list[ScoreEntry] = field(default_factory=list)  # every scoring a case keeps
    audit: list[AuditEntry] = field(default_factory=list)  # the case's log
    examiner: str = ""
    case_number: str = ""


def add_unique(values: list[_T], value: _T | None) -> None:
    """Appends a non-empty value not already listed (the run details a report names)."""
    if value not in ("", None) and value not in values:
        values.append(value)


def parse_probability(text: str) -> float | None:
    """A finite probability in [0, 1] from the CSV, else None (never NaN into a verdict)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if is_valid_probability(value) else None


def _count(text: str) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def _note(note: str, tags: Iterable[str]) -> str:
    shown = [t for t in tags if t]
    return "\n".join(part for part in (note, "Tags: " + ", ".join(shown) if shown else "") if part)


def read_scan_csv(path: Path) -> ReportSource:
    """The rows of a scan CSV, read by the one reader `--resume` uses (BOM, CRLF, added
    columns; bounded; a row that cannot be understood is refused with its line number)."""
    from ..scan.csvio import read_results_csv

    existing = read_results_csv(path)  # CsvError is an InputError: one line for the user
    items: list[ReportItem] = []
    run = RunDetails()
    for values, key in zip(existing.rows, existing.keys):
        row = dict(zip(existing.header, values))

        def get(name: str, row: Mapping[str, str] = row) -> str:
            return row.get(name) or ""

        record = record_from_csv(row)
        if not record.ok:
            record.fake_probability = None  # never a verdict from an error row
        threshold = parse_probability(get("threshold"))
        item = ReportItem(record=record, threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
                          file=Path(os.fsdecode(key)), reference_fpr=parse_probability(get("reference_fpr")),
                          reference_n=_count(get("reference_n")), note=_note(record.analyst_note, record.tags))
        items.append(item)
        for values_list, value in ((run.checkpoints, get("checkpoint")), (run.checkpoint_sha256s, get("checkpoint_sha256")),
                                   (run.devices, get("device")), (run.precisions, get("precision")),
                                   (run.versions, get("dgs_desktop_version")),
                                   (run.calibrations, get("calibration_sha256"))):
            add_unique(values_list, value)
        add_unique(run.thresholds, item.threshold)
        add_unique(run.reference_ns, item.reference_n)
    info = path.stat()
    return ReportSource(path=path, kind="scan CSV", sha256=sha256_file(path), modified=info.st_mtime,
                        items=items, run=run)


def read_case(path: Path) -> ReportSource:
    """A case file (read-only): its threshold, model, and the analyst's notes and tags.
    Rows never scanned are listed without a verdict."""
    info, files = read_case_file(path)  # CaseError is an InputError: one line for the user
    history, audit = read_history(path)
    run = RunDetails(thresholds=[info.threshold], versions=[info.created_with] if info.created_with else [])
    items = []
    groups = ContentGroups()
    for record in files:
        first = groups.note(record.path, record.sha256)
        if not record.same_content_as:  # a case written before rows said so
            record.same_content_as = first
        if not record.scanned:
            record.status, record.error = Status.NOT_SCANNED, "not scanned in this case"
        if not record.ok:
            record.fake_probability = None
        items.append(ReportItem(record=record, threshold=info.threshold, file=Path(record.path),
                                note=_note(record.analyst_note, record.tags)))
        if record.scanned:
            add_unique(run.checkpoints, record.checkpoint)
            add_unique(run.checkpoint_sha256s, record.checkpoint_sha256)
            add_unique(run.devices, record.device)
            add_unique(run.precisions, record.precision)
    if not run.checkpoints:
        add_unique(run.checkpoints, info.checkpoint)
        add_unique(run.checkpoint_sha256s, info.checkpoint_sha256)
        add_unique(run.devices, info.device)
    return ReportSource(path=Path(path), kind="case file", sha256=sha256_file(Path(path)),
                        modified=Path(path).stat().st_mtime, items=items, run=run, case_name=info.name,
                        time_meaning=f"case created {info.created}", time_label="Case last changed",
                        history=history, audit=audit, examiner=info.examiner, case_number=info.case_number)


def read_source(path: str | Path) -> ReportSource:
    """A scan CSV or a case file, by content."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} is not a file (give a scan CSV or a case file)")
    with open(path, "rb") as handle:
        head = handle.read(16)
    if head.startswith(b"SQLite format 3\x00"):
        return read_case(path)
    return read_scan_csv(path)


@dataclass
class ModelInfo:
    source: str = ""
    sha256: str = ""
    manifest: dict[str, Any] | None = None
    manifest_note: str = ""  # why there is no manifest, or that its hash does not match


def find_model(run: RunDetails, checkpoint_dir: str | Path | None = None) -> ModelInfo:
    """The checkpoint manifest of the run, when it can be found locally and its sha256 is the
    one the rows record (the manifest hash pins every weight file)."""
    info = ModelInfo(source="; ".join(run.checkpoints), sha256="; ".join(run.checkpoint_sha256s))
    candidates = [Path(checkpoint_dir)] if checkpoint_dir else [Path(c) for c in run.checkpoints
                                                                if not is_hub_checkpoint(c)]
    if not candidates:
        info.manifest_note = ("the model came from the hub; pass --checkpoint DIR to include its manifest"
                              if run.checkpoints else "the rows name no checkpoint")
        return info
    for directory in candidates:
        manifest_path = directory / MANIFEST_NAME
        try:
            with open(manifest_path, "rb") as handle:
                raw = handle.read(MAX_MANIFEST_BYTES + 1)
        except OSError:
            info.manifest_note = f"checkpoint manifest {manifest_path} not found"
            continue
        digest = hashlib.sha256(raw).hexdigest()
        if run.checkpoint_sha256s and digest not in run.checkpoint_sha256s:
            info.manifest_note = (f"{manifest_path} has sha256 {digest[:16]}…, not the one the scan recorded: "
                                  "it is a different or modified checkpoint, so its details are not shown")
            continue
        try:
            manifest = json.loads(raw)
        except (ValueError, RecursionError):
            info.manifest_note = f"{manifest_path} is not valid JSON"
            continue
        if isinstance(manifest, dict):
            info.manifest, info.manifest_note = manifest, ""
            if not info.sha256:
                info.sha256 = digest
            return info
    return info


def source_from_results(results: Iterable[ScanRecord], run: RunInfo, name: str = "window results",
                        case_name: str = "", case_path: str | Path | None = None, examiner: str = "",
                        case_number: str = "") -> ReportSource:
    """A report source from in-memory scan results (the window's export): `results` are
    ScanRecords with their analyst notes and tags, `run` the RunInfo the CSV export would
    record (its calibration included); `case_path` the open case, whose history and log the
    report shows."""
    from .. import __version__

    calibration = run.calibration
    items = []
    for record in results:
        reference = calibration.reference_fpr(record.fake_probability) if calibration is not None and record.ok \
            else None
        items.append(ReportItem(record=record, threshold=run.threshold, file=Path(record.path),
                                reference_fpr=reference, reference_n=None if calibration is None else calibration.n,
                                note=_note(record.analyst_note, record.tags)))
    details = RunDetails(checkpoints=[run.checkpoint], checkpoint_sha256s=[run.checkpoint_sha256],
                         devices=[run.device], precisions=[run.precision], versions=[__version__],
                         thresholds=[run.threshold], calibrations=[run.calibration_sha256] if calibration else [],
                         reference_ns=[calibration.n] if calibration else [])
    history, audit = read_history(case_path) if case_path is not None else ([], [])
    return ReportSource(path=Path(name), kind="window session", sha256="", modified=time.time(), items=items,
                        run=details, case_name=case_name, time_meaning="from the window's results",
                        time_label="Exported", history=history, audit=audit, examiner=examiner,
                        case_number=case_number)
