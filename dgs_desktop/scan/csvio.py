"""The scan CSV: one row per input file, failures included; crash-safe and resumable.

Rows are appended and flushed one at a time, so a crash or Ctrl-C leaves only complete rows
(an incomplete last line, e.g. after a power cut, is cut off when the file is resumed).
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..atomic import atomic_path
from ..errors import InputError
from .engine import ScanResult

COLUMNS = ("path", "sha256", "status", "fake_probability", "verdict", "threshold", "error",
           "width", "height", "format", "notes", "provenance", "checkpoint", "checkpoint_sha256", "device",
           "precision", "dgs_desktop_version")


class CsvError(InputError, RuntimeError):
    """The results CSV cannot be written or resumed; one line for the user."""


@dataclass(frozen=True)
class RunInfo:
    """What every row records about the run that produced it."""

    checkpoint: str
    checkpoint_sha256: str
    device: str
    threshold: float
    precision: str = "fp32"


def format_probability(value: float | None) -> str:
    return "" if value is None else f"{value:.8f}"


def result_row(result: ScanResult, run: RunInfo) -> dict[str, str]:
    return {
        "path": result.path,
        "sha256": result.sha256,
        "status": result.status,
        "fake_probability": format_probability(result.fake_probability),
        "verdict": result.verdict(run.threshold),
        "threshold": f"{run.threshold:g}",
        "error": result.error,
        "width": "" if result.width is None else str(result.width),
        "height": "" if result.height is None else str(result.height),
        "format": result.format,
        "notes": "; ".join(result.notes),
        "provenance": result.provenance,
        "checkpoint": run.checkpoint,
        "checkpoint_sha256": run.checkpoint_sha256,
        "device": run.device,
        "precision": run.precision,
        "dgs_desktop_version": __version__,
    }


def _complete_prefix_length(data: bytes) -> int:
    """Length of the longest prefix of `data` made of complete CSV records."""
    end = data.rfind(b"\n") + 1
    while end > 0:
        try:
            rows = list(csv.reader(io.StringIO(data[:end].decode("utf-8", "surrogateescape"), newline="")))
        except (UnicodeDecodeError, csv.Error):
            rows = None
        if rows is not None and all(len(row) == len(COLUMNS) for row in rows[1:]) and (
                not rows or rows[0][: len(COLUMNS)] == list(COLUMNS)):
            return end
        end = data.rfind(b"\n", 0, end - 1) + 1  # drop a quoted field spanning the cut line
    return 0


def read_done_paths(path: Path) -> set[str]:
    """Paths already recorded in an existing CSV (for --resume)."""
    if not path.exists():
        return set()
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None:
            return set()
        if list(reader.fieldnames[: len(COLUMNS)]) != list(COLUMNS):
            raise CsvError(f"{path} exists but is not a DGS Desktop scan CSV; choose another file")
        return {row["path"] for row in reader}


class CsvResultWriter:
    """Appends rows to OUT (creating it with a header); `resume=True` keeps existing rows."""

    def __init__(self, path: str | os.PathLike, run: RunInfo, resume: bool = False):
        self.path = Path(path)
        self.run = run
        self.done_paths: set[str] = set()
        self._handle = None
        self._open(resume)

    def _open(self, resume: bool) -> None:
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if not parent.is_dir():
            raise CsvError(f"cannot write {self.path}: folder {parent} does not exist")
        if not os.access(parent, os.W_OK):
            raise CsvError(f"cannot write {self.path}: folder {parent} is not writable")
        if resume and self.path.exists():
            data = self.path.read_bytes()
            keep = _complete_prefix_length(data)
            if data and keep == 0:
                raise CsvError(f"{self.path} exists but is not a DGS Desktop scan CSV; choose another file")
            if keep != len(data):
                with open(self.path, "r+b") as handle:
                    handle.truncate(keep)
            self.done_paths = read_done_paths(self.path)
            mode = "a"
        else:
            mode = "w"
        try:
            # surrogateescape: a file name that is not valid UTF-8 is written as its own bytes
            # (and read back identically by --resume) instead of crashing the scan.
            self._handle = open(self.path, mode, newline="", encoding="utf-8", errors="surrogateescape")
        except OSError as exc:
            raise CsvError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self._writer = csv.DictWriter(self._handle, fieldnames=COLUMNS, lineterminator="\n")
        if mode == "w" or self.path.stat().st_size == 0:
            try:
                self._writer.writeheader()
                self._handle.flush()
            except OSError as exc:  # e.g. disk full: found before any work starts
                self._abandon()
                raise CsvError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def write(self, result: ScanResult) -> None:
        try:
            self._writer.writerow(result_row(result, self.run))
            self._handle.flush()  # one complete row per write: a kill never leaves half a row
        except OSError as exc:
            self._abandon()
            raise CsvError(f"cannot write {self.path}: {exc.strerror or exc}; the rows already in it are "
                           f"complete: free space or fix the folder, then continue with --resume") from None
        self.done_paths.add(result.path)

    def _abandon(self) -> None:
        """Closes after a failed write without retrying it (resume cuts any partial row)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            try:
                handle.close()  # the flush fails again, but the file is closed all the same
            except (OSError, ValueError):
                pass

    def close(self) -> None:
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def write_results_csv(path: str | os.PathLike, results, run: RunInfo) -> None:
    """Writes a complete CSV at once (GUI export): temp file + rename, never a partial file."""
    with atomic_path(path) as tmp, CsvResultWriter(tmp, run) as writer:
        for result in results:
            writer.write(result)
