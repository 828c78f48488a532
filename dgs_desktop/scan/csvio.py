"""The scan CSV: one row per input file, failures included; crash-safe, resumable, and safe to
open in a spreadsheet.

Writing rules (README "CSV columns"):
- valid UTF-8 always: a file name that is not valid UTF-8 (Python's surrogate escapes) is
  written with each undecodable byte as the text `\\xNN`, and its exact bytes go into
  `path_bytes_hex`, from which `--resume` matches it to its file;
- a field holding the delimiter, a quote, CR or LF is quoted (quotes doubled); rows end in LF;
- a cell that starts with `=`, `+`, `-`, `@`, tab or CR gets a leading `'`, so a spreadsheet
  never runs a formula taken from a file name or file metadata (OWASP "CSV injection").

Rows are appended and flushed one at a time, so a crash or Ctrl-C leaves only complete rows
(an incomplete last line, e.g. after a power cut, is cut off when the file is resumed).
An existing results file is replaced only once the new scan writes its first row, in one
rename; a file that is not a DGS Desktop scan CSV is never written over.
"""

from __future__ import annotations

import csv
import errno
import io
import logging
import math
import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from .. import __version__
from ..atomic import atomic_path
from ..errors import InputError

# RunInfo and format_probability are also this module's: the CLI, the window and the trainer import them here
from ..record import CSV_COLUMNS, ScanRecord, csv_values, format_threshold
from ..record import RunInfo as RunInfo
from ..record import format_probability as format_probability
from ..verdict import assess

log = logging.getLogger(__name__)

COLUMNS = CSV_COLUMNS
# What makes a CSV one of ours (older versions lack the later columns; they are added on resume).
REQUIRED_COLUMNS = ("path", "sha256", "status", "fake_probability", "verdict", "threshold", "error")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MAX_RESUME_BYTES = 1 << 30  # a million rows is ~500 MB; anything larger is not our CSV
# An incomplete last line is cut (a crash while writing it) only if it is one row's worth.
_MAX_CUT_CHARS, _MAX_CUT_LINE_BREAKS = 1 << 16, 4
STDOUT = "-"


class CsvError(InputError, RuntimeError):
    """The results CSV cannot be written or resumed; one line for the user."""


# ------------------------------------------------------------------------------ cell rules
def utf8_text(text: str) -> str:
    """`text` as valid UTF-8: surrogate-escaped bytes (undecodable file-name bytes) become `\\xNN`."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that is not an escaped byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def safe_cell(text: str) -> str:
    """Valid UTF-8, and no spreadsheet formula: a leading = + - @ tab or CR gets a `'`."""
    text = utf8_text(text)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def path_bytes_hex(path: str) -> str:
    """Hex of the file name's bytes when they are not valid UTF-8 (else empty)."""
    raw = os.fsencode(path)
    try:
        raw.decode("utf-8")
        return ""
    except UnicodeDecodeError:
        return raw.hex()


def path_key(path: str | os.PathLike[str]) -> bytes:
    """The exact bytes of a path: what --resume compares."""
    return os.fsencode(os.fspath(path))


def csv_field(text: str, delimiter: str = ",") -> str:
    if any(c in text for c in (delimiter, '"', "\r", "\n")):
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_line(fields: Iterable[str], delimiter: str = ",") -> str:
    return delimiter.join(csv_field(f, delimiter) for f in fields) + "\n"


# -------------------------------------------------------------------------------- rows
def result_row(result: ScanRecord, run: RunInfo | None) -> dict[str, str]:
    """The row's values before the cell rules (see `safe_cell`); `run=None`: unknown model.

    The verdict and its reasons are derived here with the run's threshold (the calibration's
    when one is loaded), by the one rule of `dgs_desktop.verdict.assess`."""
    row = csv_values(result)
    row["dgs_desktop_version"] = __version__
    row["path_bytes_hex"] = path_bytes_hex(result.path)
    if run is None:
        return row
    assessment = assess(result, run.threshold)
    calibration = run.calibration
    reference = None if calibration is None or not result.ok else calibration.reference_fpr(result.fake_probability)
    row.update({
        "verdict": assessment.verdict,
        "inconclusive_reasons": "; ".join(assessment.reasons),
        "threshold": format_threshold(run.threshold),
        "reference_fpr": "" if reference is None else format_probability(reference),
        "reference_n": "" if calibration is None else str(calibration.n),
        "checkpoint": run.checkpoint,
        "checkpoint_sha256": run.checkpoint_sha256,
        "calibration_sha256": run.calibration_sha256,
        "device": run.device,
        "precision": run.precision,
        "tta_orders": str(run.tta_orders) if run.tta_orders > 1 else "",
    })
    return row


def row_line(row: dict[str, str], columns: Sequence[str] = COLUMNS, delimiter: str = ",") -> str:
    """One CSV line for a row we produce: every cell through `safe_cell`."""
    return csv_line((safe_cell(row.get(column, "")) for column in columns), delimiter)


def csv_text(results: Iterable[ScanRecord], run: RunInfo | None, delimiter: str = ",") -> str:
    """Header and one line per result, by the same rules as `dgs-desktop scan` (the window's
    Export writes this; Ctrl+C copies it with a tab delimiter)."""
    parts = [csv_line(COLUMNS, delimiter)]
    parts.extend(row_line(result_row(result, run), COLUMNS, delimiter) for result in results)
    return "".join(parts)


def write_results_csv(path: str | os.PathLike[str], results: Iterable[ScanRecord], run: RunInfo) -> None:
    """Writes a complete CSV at once (GUI export): temp file + rename, never a partial file."""
    data = csv_text(results, run).encode("utf-8")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


# ------------------------------------------------------------------------ reading (resume)
@dataclass
class ExistingCsv:
    """A results CSV read for --resume; every row is kept as it was."""

    header: list[str]
    rows: list[list[str]]  # padded to len(header)
    complete_bytes: int  # length of the prefix made of complete lines
    total_bytes: int
    exact: bool  # our current header and layout: rows can simply be appended
    cut_line: int | None = None  # line number of an incomplete last line (cut, its file rescanned)
    keys: list[bytes] = field(default_factory=list)  # per row: the exact bytes of its path
    done_keys: set[bytes] = field(default_factory=set)

    def column(self, name: str) -> list[str]:
        if name not in self.header:
            return []
        index = self.header.index(name)
        return [row[index] for row in self.rows]


def _read_bounded(path: Path, limit: int, head: bool = False) -> bytes:
    """The file's bytes; only a regular file is opened (never a FIFO or device) and at most
    `limit` bytes are read (`head=True`: the first `limit` bytes of a larger file are enough)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise CsvError(f"cannot resume: {path} does not exist") from None
    except OSError as exc:
        raise CsvError(f"cannot resume from {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise CsvError(f"cannot resume from {path}: not a regular file")
    if info.st_size > limit and not head:
        raise CsvError(f"cannot resume from {path}: {info.st_size:,} bytes is larger than a results CSV can be "
                       f"({limit:,})")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise CsvError(f"cannot resume from {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):  # swapped after the check
            raise CsvError(f"cannot resume from {path}: not a regular file")
        data = handle.read(limit + 1)
    if head:
        return data[:limit]
    if len(data) > limit:
        raise CsvError(f"cannot resume from {path}: larger than a results CSV can be ({limit:,} bytes)")
    return data


def _records(text: str) -> Iterator[tuple[list[str] | None, int, int]]:
    """(fields, line number, end offset in characters) of each CSV record, in one pass."""
    consumed = 0
    lines = io.StringIO(text, newline="")

    def counting() -> Iterator[str]:
        nonlocal consumed
        for line in lines:
            consumed += len(line)
            yield line

    reader = csv.reader(counting())
    while True:
        line_number = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error:  # e.g. an unterminated quote: only possible in a cut last line
            yield None, line_number, consumed
            return
        yield fields, line_number, consumed


def _is_probability(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value) and 0.0 <= value <= 1.0


def _understood(record: dict[str, str]) -> bool:
    """A row whose essential fields make sense (so its columns are where the header says)."""
    if not record.get("path") or record.get("status") not in ("ok", "error"):
        return False
    probability = record.get("fake_probability", "")
    if record["status"] == "ok":
        return _is_probability(probability)
    return probability == ""


def parse_results_csv(data: bytes, name: str = "the CSV") -> ExistingCsv:
    """Reads a results CSV written by this program, also after a spreadsheet saved it (BOM,
    CRLF, added columns). Linear time. An incomplete last line (no line end: a crash while
    writing) is dropped so its file is scanned again; any other row that cannot be understood
    is refused with its line number, never silently dropped."""
    bom = data.startswith(b"\xef\xbb\xbf")
    text = data[3 if bom else 0:].decode("utf-8", "surrogateescape")
    if not text:
        return ExistingCsv(list(COLUMNS), [], 0, 0, exact=True)
    records = _records(text)
    first = next(records, None)
    header = first[0] if first is not None else None
    if first is None or not header or not set(REQUIRED_COLUMNS) <= set(header) or len(set(header)) != len(header):
        raise CsvError(f"{name} exists but is not a DGS Desktop scan CSV; choose another file")
    width = len(header)
    last_ours = max(header.index(c) for c in COLUMNS if c in header)
    ends_cleanly = text.endswith(("\n", "\r"))
    rows: list[list[str]] = []
    complete_chars = first[2]
    cut_line = None
    for fields, line_number, end in records:
        is_last = end >= len(text)
        if fields is None or (is_last and not ends_cleanly):
            remainder = text[complete_chars:]
            if len(remainder) > _MAX_CUT_CHARS or sum(map(remainder.count, "\n\r")) > _MAX_CUT_LINE_BREAKS:
                # more than one row's worth: an unclosed quote from an edit, not a cut-off write
                raise CsvError(f"{name}, line {line_number}: a quote opened there is never closed; fix it, "
                               f"then resume (nothing was changed)")
            cut_line = line_number
            break
        complete_chars = end
        if not fields:
            continue  # a blank line
        if len(fields) > width and not any(fields[width:]):
            fields = fields[:width]  # trailing empty cells a spreadsheet added
        if len(fields) < width and len(fields) > last_ours:
            fields = fields + [""] * (width - len(fields))  # only added columns missing
        if len(fields) != width or not _understood(dict(zip(header, fields))):
            raise CsvError(f"{name}, line {line_number}: a row that cannot be understood ({len(fields)} fields, "
                           f"the header has {width}); fix or delete it, then resume (nothing was changed)")
        rows.append(fields)
    complete_bytes = len(text[:complete_chars].encode("utf-8", "surrogateescape")) + (3 if bom else 0)
    first_line_end = "\r\n" if text[:first[2]].endswith("\r\n") else "\n"
    exact = not bom and header == list(COLUMNS) and first_line_end == "\n" and "\r\n" not in text
    existing = ExistingCsv(header, rows, complete_bytes, len(data), exact, cut_line)
    hexes = existing.column("path_bytes_hex") or [""] * len(rows)
    for path, hexed in zip(existing.column("path"), hexes):
        key = None
        if hexed:
            try:
                key = bytes.fromhex(hexed)
            except ValueError:
                key = None
        existing.keys.append(key if key is not None else path_key(path))
    existing.done_keys = set(existing.keys)
    return existing


def read_results_csv(path: str | os.PathLike[str], limit: int = MAX_RESUME_BYTES) -> ExistingCsv:
    return parse_results_csv(_read_bounded(Path(path), limit), str(path))


def read_done_paths(path: str | os.PathLike[str]) -> set[str]:
    """Paths already recorded in an existing CSV (for --resume), as file-system strings."""
    if not os.path.exists(path):
        return set()
    return {os.fsdecode(key) for key in read_results_csv(path).done_keys}


def _differs(values: Iterable[str], expected: str, same: Callable[[str, str], bool]) -> list[str]:
    return sorted({v for v in values if v and not same(v, expected)})


def run_mismatch(existing: ExistingCsv, run: RunInfo) -> str:
    """Why rows of `existing` came from another model or threshold ("" when they did not)."""
    problems = []
    checkpoints = _differs(existing.column("checkpoint_sha256"), run.checkpoint_sha256, str.__eq__)
    if checkpoints:
        problems.append(f"checkpoint sha256 {', '.join(c[:12] for c in checkpoints)}… (this run: "
                        f"{run.checkpoint_sha256[:12]}…)")

    def same_threshold(text: str, value: str) -> bool:
        try:
            return float(text) == float(value)
        except ValueError:
            return False

    thresholds = _differs(existing.column("threshold"), format_threshold(run.threshold), same_threshold)
    if thresholds:
        problems.append(f"threshold {', '.join(thresholds)} (this run: {format_threshold(run.threshold)})")
    precisions = _differs(existing.column("precision"), run.precision, str.__eq__)
    if precisions:  # bf16 and fp32 scores of one file differ by ~1e-3: one CSV holds one precision
        problems.append(f"precision {', '.join(precisions)} (this run: {run.precision})")
    calibrations = _differs(existing.column("calibration_sha256"), run.calibration_sha256, str.__eq__)
    if calibrations or (run.calibration_sha256 and existing.rows and not any(existing.column("calibration_sha256"))):
        problems.append(f"calibration {', '.join(c[:12] for c in calibrations) or 'none'} (this run: "
                        f"{run.calibration_sha256[:12] or 'none'})")
    return "; ".join(problems)


# ------------------------------------------------------------------------------- writing
def _is_stdout(path: str | os.PathLike[str]) -> bool:
    return os.fspath(path) == STDOUT


def check_output(path: str | os.PathLike[str], resume: bool = False) -> ExistingCsv | None:
    """Checks that the results can go to `path` without changing anything there yet.

    Returns the rows to keep on --resume. Refuses a folder that does not exist or is not
    writable, and an existing file that is not a DGS Desktop scan CSV (an image, a
    document: never written over). A FIFO or device (/dev/null, /dev/stdout) is written as it is.
    """
    if _is_stdout(path):
        if resume:
            raise CsvError("--resume needs a CSV file, not standard output")
        return None
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise CsvError(f"cannot write {path}: folder {parent} does not exist")
    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise CsvError(f"cannot write {path}: {exc.strerror or exc}") from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise CsvError(f"cannot write {path}: it is a folder")
    if info is not None and not stat.S_ISREG(info.st_mode):
        if resume:
            raise CsvError(f"cannot resume from {path}: not a regular file")
        return None  # a device or pipe: written as a stream
    if not os.access(parent, os.W_OK):
        raise CsvError(f"cannot write {path}: folder {parent} is not writable")
    if info is None or (info.st_size == 0 and not resume):
        return ExistingCsv(list(COLUMNS), [], 0, 0, exact=True) if resume else None  # nothing to lose
    try:
        if resume:
            return read_results_csv(path)
        # Not resuming: only our own results file may be replaced; the header is enough to tell.
        head = _read_bounded(path, 1 << 16, head=True)
    except CsvError as exc:
        if resume:
            raise
        raise CsvError(f"{path} exists and is not a DGS Desktop scan CSV; it is not overwritten "
                       f"(choose another --csv)") from exc
    first_line = head.split(b"\n", 1)[0].removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace")
    header = next(csv.reader([first_line]), [])
    if not header or not set(REQUIRED_COLUMNS) <= set(header):
        raise CsvError(f"{path} exists and is not a DGS Desktop scan CSV; it is not overwritten "
                       f"(choose another --csv)")
    return None


def same_file(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(device, inode) of an existing regular file, to keep the output out of the scan."""
    if _is_stdout(path):
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISREG(info.st_mode) else None


class CsvResultWriter:
    """Writes the scan's rows to OUT, one flushed line at a time.

    - new file: written in place;
    - existing results file without resume: the new rows go to a temporary sibling that
      replaces OUT in one rename when the first row is written (or at close); a failure or
      Ctrl-C before that leaves OUT as it was and removes the temporary file;
    - `resume=True`: the rows in OUT are kept (`existing`, from `check_output`); in our exact
      layout new rows are appended (an incomplete last line is cut), otherwise (BOM, CRLF,
      added columns, an older version's header) the file is rewritten once, rows unchanged
      (but for name bytes that were not UTF-8: escaped, with `path_bytes_hex`), with the
      header extended by any missing columns;
    - `-`: standard output; a FIFO or device: written as a stream (no fsync).
    """

    def __init__(self, path: str | os.PathLike[str], run: RunInfo, resume: bool = False,
                 existing: ExistingCsv | None = None):
        self.path: str | Path = STDOUT if _is_stdout(path) else Path(path)
        self.run = run
        self.resume = resume
        self._handle: BinaryIO | None = None
        self._pending_tmp: Path | None = None
        self._regular = False
        if resume and existing is None:
            existing = check_output(path, resume=True)
        self.existing = existing
        self.columns: list[str] = list(COLUMNS)
        self.done_keys: set[bytes] = set(existing.done_keys) if existing is not None else set()
        self._open()

    # kept for callers that match by path text
    @property
    def done_paths(self) -> set[str]:
        return {os.fsdecode(key) for key in self.done_keys}

    def is_done(self, path: str | os.PathLike[str]) -> bool:
        return path_key(path) in self.done_keys

    def _fail(self, exc: OSError, what: str = "cannot write") -> CsvError:
        return CsvError(f"{what} {self.path}: {exc.strerror or exc}")

    def _open(self) -> None:
        if _is_stdout(self.path):
            self._handle = sys.stdout.buffer
            self._write_raw(csv_line(self.columns))
            return
        path = Path(self.path)
        try:
            info = os.stat(path)
        except FileNotFoundError:
            info = None
        except OSError as exc:
            raise self._fail(exc) from None
        self._regular = info is None or stat.S_ISREG(info.st_mode)
        existing = self.existing
        try:
            if not self._regular:
                self._handle = open(path, "wb")  # noqa: SIM115 - kept open for the whole scan
                self._write_raw(csv_line(self.columns))
            elif self.resume and existing is not None and info is not None and existing.total_bytes:
                self._open_resumed(existing, info)
            elif info is not None:  # replace our old results file only once the new scan has begun
                self._pending_tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
                self._handle = open(self._pending_tmp, "wb")  # noqa: SIM115
                self._write_raw(csv_line(self.columns))
            else:
                self._handle = open(path, "xb")  # noqa: SIM115 - never over a file created meanwhile
                self._write_raw(csv_line(self.columns))
        except CsvError:
            self._abandon()
            raise
        except OSError as exc:
            self._abandon()
            raise self._fail(exc) from None

    def _open_resumed(self, existing: ExistingCsv, info: os.stat_result) -> None:
        if existing.cut_line is not None:
            log.warning("%s: line %d was incomplete (the scan was cut off while writing it); that file is "
                        "scanned again", self.path, existing.cut_line)
        if info.st_size != existing.total_bytes:
            raise CsvError(f"{self.path} changed while it was being read; try again")
        if existing.exact:
            appended = self._handle = open(self.path, "r+b")  # noqa: SIM115
            appended.truncate(existing.complete_bytes)
            appended.seek(existing.complete_bytes)
            return
        # Rewrite once in our layout, keeping every row and every added column as it was.
        self.columns = existing.header + [c for c in COLUMNS if c not in existing.header]
        missing = len(self.columns) - len(existing.header)
        path_at, hex_at = self.columns.index("path"), self.columns.index("path_bytes_hex")
        path = Path(self.path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.resume")
        try:
            with open(tmp, "wb") as handle:
                handle.write(csv_line(utf8_text(c) for c in self.columns).encode("utf-8"))
                for row in existing.rows:
                    row = row + [""] * missing
                    if not row[hex_at]:  # an older version wrote undecodable name bytes as they were
                        row[hex_at] = path_bytes_hex(row[path_at])
                    handle.write(csv_line(utf8_text(cell) for cell in row).encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        log.info("%s was rewritten in DGS Desktop's layout (every row and column kept)", self.path)
        self._handle = open(self.path, "ab")  # noqa: SIM115

    def _write_raw(self, line: str) -> None:
        if self._handle is None:
            raise CsvError(f"cannot write {self.path}: it is closed")
        self._handle.write(line.encode("utf-8"))
        self._handle.flush()

    def write(self, result: ScanRecord) -> None:
        if self._handle is None:
            raise CsvError(f"cannot write {self.path}: it is closed")
        try:
            self._write_raw(row_line(result_row(result, self.run), self.columns))
            self._commit()
        except OSError as exc:
            self._abandon()
            raise CsvError(f"cannot write {self.path}: {exc.strerror or exc}; the rows already in it are "
                           f"complete: free space or fix the folder, then continue with --resume") from None
        self.done_keys.add(path_key(result.path))

    def _commit(self) -> None:
        """The new scan has begun: its file takes the old results file's place."""
        if self._pending_tmp is not None:
            os.replace(self._pending_tmp, self.path)
            self._pending_tmp = None

    def _abandon(self) -> None:
        """Closes after a failure without retrying (resume cuts any partial row); an
        uncommitted replacement is removed, leaving the old results as they were."""
        handle, self._handle = self._handle, None
        if handle is not None and handle is not getattr(sys.stdout, "buffer", None):
            try:
                handle.close()  # the flush fails again, but the file is closed all the same
            except (OSError, ValueError):
                pass
        if self._pending_tmp is not None:
            self._pending_tmp.unlink(missing_ok=True)
            self._pending_tmp = None

    def close(self, completed: bool = True) -> None:
        """`completed=False` (an error or Ctrl-C before any row): an old results file stays."""
        if self._handle is None:
            return
        if not completed and self._pending_tmp is not None:
            self._abandon()
            return
        handle = self._handle
        try:
            handle.flush()
            if self._regular:
                try:
                    os.fsync(handle.fileno())
                except OSError as exc:
                    if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
                        raise
            self._commit()
        except OSError as exc:
            self._abandon()
            raise self._fail(exc) from None
        if handle is not getattr(sys.stdout, "buffer", None):
            handle.close()
        self._handle = None

    def __enter__(self) -> CsvResultWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close(completed=exc_type is None)
