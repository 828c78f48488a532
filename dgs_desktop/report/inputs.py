"""What a report is made from: the rows of a scan CSV (or of a case file), and the model.

A CSV that is not a DGS Desktop scan CSV is refused with one line. Every value is kept as
text from outside: the HTML builder escapes it.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..detector.manifest import MANIFEST_NAME, MAX_MANIFEST_BYTES, sha256_file
from ..errors import InputError
from ..verdict import DEFAULT_THRESHOLD, is_valid_probability

CSV_REQUIRED = ("path", "sha256", "status", "fake_probability", "verdict", "threshold", "error")


@dataclass
class ReportItem:
    path: str
    sha256: str = ""
    status: str = ""
    fake_probability: float | None = None
    threshold: float = DEFAULT_THRESHOLD
    error: str = ""
    width: str = ""
    height: str = ""
    format: str = ""
    notes: str = ""
    provenance: str = ""
    note: str = ""  # the analyst's note (case files)


@dataclass
class RunDetails:
    """What the rows say about the scan that produced them (distinct values, in order)."""

    checkpoints: list[str] = field(default_factory=list)
    checkpoint_sha256s: list[str] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    precisions: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    thresholds: list[float] = field(default_factory=list)


@dataclass
class ReportSource:
    path: Path
    kind: str  # "scan CSV" or "case file"
    sha256: str
    modified: float  # st_mtime of the source
    items: list[ReportItem]
    run: RunDetails
    case_name: str = ""
    time_meaning: str = "the scan CSV's modification time"  # what `modified` is


def add_unique(values: list, value) -> None:
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


def _threshold(text: str) -> float:
    value = parse_probability(text)
    return DEFAULT_THRESHOLD if value is None else value


def read_scan_csv(path: Path) -> ReportSource:
    try:
        handle = open(path, newline="", encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    items: list[ReportItem] = []
    run = RunDetails()
    with handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        if any(column not in header for column in CSV_REQUIRED):
            raise InputError(f"{path} is not a DGS Desktop scan CSV (its header lacks "
                             f"{', '.join(c for c in CSV_REQUIRED if c not in header)})")
        try:
            for row in reader:
                get = lambda key, row=row: (row.get(key) or "")  # noqa: E731
                item = ReportItem(path=get("path"), sha256=get("sha256"), status=get("status"),
                                  fake_probability=parse_probability(get("fake_probability")),
                                  threshold=_threshold(get("threshold")), error=get("error"), width=get("width"),
                                  height=get("height"), format=get("format"), notes=get("notes"),
                                  provenance=get("provenance"))
                items.append(item)
                add_unique(run.checkpoints, get("checkpoint"))
                add_unique(run.checkpoint_sha256s, get("checkpoint_sha256"))
                add_unique(run.devices, get("device"))
                add_unique(run.precisions, get("precision"))
                add_unique(run.versions, get("dgs_desktop_version"))
                add_unique(run.thresholds, item.threshold)
        except csv.Error as exc:
            raise InputError(f"{path} is not a readable CSV: {exc}") from None
    info = path.stat()
    return ReportSource(path=path, kind="scan CSV", sha256=sha256_file(path), modified=info.st_mtime,
                        items=items, run=run)


def read_source(path: str | Path) -> ReportSource:
    """A scan CSV or a case file, by content."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} is not a file (give a scan CSV or a case file)")
    with open(path, "rb") as handle:
        head = handle.read(16)
    if head.startswith(b"SQLite format 3\x00"):
        from .case_input import read_case

        return read_case(path)
    return read_scan_csv(path)


@dataclass
class ModelInfo:
    source: str = ""
    sha256: str = ""
    manifest: dict | None = None
    manifest_note: str = ""  # why there is no manifest, or that its hash does not match


def find_model(run: RunDetails, checkpoint_dir: str | Path | None = None) -> ModelInfo:
    """The checkpoint manifest of the run, when it can be found locally and its sha256 is the
    one the rows record (the manifest hash pins every weight file)."""
    info = ModelInfo(source="; ".join(run.checkpoints), sha256="; ".join(run.checkpoint_sha256s))
    candidates = [Path(checkpoint_dir)] if checkpoint_dir else [Path(c) for c in run.checkpoints
                                                                if not c.startswith("hf:")]
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


def source_from_results(results, run, name: str = "window results", notes: dict[str, str] | None = None,
                        case_name: str = "") -> ReportSource:
    """A report source from in-memory scan results (the window's export): `results` are
    ScanRecord objects, `run` the RunInfo the CSV export would record, `notes` the analyst's
    note per path."""
    import time

    from .. import __version__

    notes = notes or {}
    items = [ReportItem(path=r.path, sha256=r.sha256, status=r.status,
                        fake_probability=r.fake_probability if r.status == "ok" else None,
                        threshold=run.threshold, error=r.error,
                        width="" if r.width is None else str(r.width), height="" if r.height is None else str(r.height),
                        format=r.format, notes="; ".join(r.notes), provenance=r.provenance,
                        note=notes.get(r.path, "")) for r in results]
    details = RunDetails(checkpoints=[run.checkpoint], checkpoint_sha256s=[run.checkpoint_sha256],
                         devices=[run.device], precisions=[run.precision], versions=[__version__],
                         thresholds=[run.threshold])
    return ReportSource(path=Path(name), kind="window session", sha256="", modified=time.time(), items=items,
                        run=details, case_name=case_name, time_meaning="when the report was exported")
