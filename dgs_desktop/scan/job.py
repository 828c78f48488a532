"""One headless scan into a results CSV: output checks, resume, torchrun rank parts, the
writer and Ctrl-C, as one reusable object (the `scan` command only maps its arguments and
attaches a progress bar).

Use: `job = ScanJob(...)`; `job.check()` before the model loads (a run that fails its checks
leaves an existing results file exactly as it was); `files = job.open()` once it has loaded;
`summary = job.run(scanner.scan(files), threshold, on_result)`. Problems with the output are
`UsageError`s with one-line messages.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError
from ..record import ScanRecord
from ..verdict import assess
from .content import ContentGroups
from .csvio import (
    CsvError,
    CsvResultWriter,
    ExistingCsv,
    RunInfo,
    check_output,
    read_results_csv,
    run_mismatch,
    same_file,
)
from .discover import expand_paths
from .distributed import ScanRank, discard_leftover_parts, fold_leftover_parts
from .engine import ScanProgress

log = logging.getLogger(__name__)


@dataclass
class ScanSummary:
    """What one run did: counts per verdict, files scored, skipped (already in the CSV), failed."""

    progress: ScanProgress
    total: int
    skipped: int
    counts: dict[str, int] = field(default_factory=lambda: {"fake": 0, "real": 0, "inconclusive": 0})
    interrupted: bool = False

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.progress.started


def earlier_content(existing: ExistingCsv | None) -> ContentGroups:
    """The contents of a resumed CSV's rows, in file order: its rows come first, so a new file
    with the same bytes names the earlier row in `same_content_as`."""
    groups = ContentGroups()
    if existing is not None:
        for path, sha256 in zip(existing.column("path"), existing.column("sha256")):
            groups.note(path, sha256)
    return groups


@dataclass
class ScanJob:
    paths: Sequence[str]
    csv: str  # a file, or "-" for standard output
    run_info: RunInfo
    resume: bool = False
    force: bool = False
    follow_links: bool = False
    rank: ScanRank | None = None  # under torchrun: this process writes its share to a part file
    _existing: ExistingCsv | None = field(default=None, init=False, repr=False)
    _writer: CsvResultWriter | None = field(default=None, init=False, repr=False)
    _content: ContentGroups = field(default_factory=ContentGroups, init=False, repr=False)
    skipped: int = field(default=0, init=False)

    @property
    def out(self) -> Path:
        return Path(self.csv)

    def check(self) -> None:
        """Folds an interrupted torchrun scan's parts (with --resume) and checks the output;
        touches nothing else, so call it before the slow model load."""
        if self.force and not self.resume:
            raise UsageError("--force only applies to --resume")
        to_stdout = self.csv == "-"
        if self.rank and to_stdout:
            raise UsageError("a torchrun scan writes to a CSV file, not to standard output")
        try:
            if self.resume and not self.rank and not to_stdout:
                fold_leftover_parts(self.out, self.run_info)  # only our own part files
            self._existing = check_output(self.csv, resume=self.resume)
        except CsvError as exc:
            raise UsageError(str(exc)) from None
        if self._existing is not None and self._existing.rows:
            mismatch = run_mismatch(self._existing, self.run_info)
            if mismatch and not self.force:
                raise UsageError(f"{self.csv} holds rows from another run ({mismatch}); resuming would mix them: "
                                 f"add --force to continue anyway, or write to another --csv")
            if mismatch:
                log.warning("%s holds rows from another run (%s); continuing because of --force", self.csv, mismatch)

    def open(self) -> list[Path]:
        """Lists the files still to score (this rank's share, none already in the CSV) and opens
        the writer. The listing comes first, so a new results file in a scanned folder is not
        among them; an existing one is excluded by identity."""
        output = same_file(self.csv)
        found = list(expand_paths(self.paths, follow_links=self.follow_links, exclude=[output] if output else []))
        try:
            if self.rank:
                self.rank.start(self.out, self.run_info, self.resume)
                earlier = read_results_csv(self.out) if self.resume else None
                self._writer = CsvResultWriter(self.rank.part(self.out), self.run_info)
            else:
                if not self.resume and self.csv != "-":
                    discard_leftover_parts(self.out, self.run_info)
                earlier = self._existing
                self._writer = CsvResultWriter(self.csv, self.run_info, resume=self.resume, existing=self._existing)
        except CsvError as exc:
            raise UsageError(str(exc)) from None
        done = earlier.done_keys if earlier is not None else set()
        self._content = earlier_content(earlier)
        self.skipped = len(done)
        return [p for p in found if os.fsencode(p) not in done and (self.rank is None or self.rank.owns(p))]

    def run(self, records: Iterable[ScanRecord], total: int, threshold: float,
            on_result: Callable[[ScanRecord], None] | None = None) -> ScanSummary:
        """Writes each record as it comes. Ctrl-C keeps every finished row (an old results file
        stays as it was when no row was written yet) and returns with `interrupted` set; a full
        disk or a removed output is a UsageError, the finished rows kept."""
        if self._writer is None:
            raise RuntimeError("ScanJob.open() first")
        summary = ScanSummary(ScanProgress(total=total), total, self.skipped)
        completed = False
        try:
            for record in records:
                # from the sha256 the scan's own read computed: no file is read again
                record.same_content_as = self._content.note(record.path, record.sha256)
                self._writer.write(record)
                summary.progress.update(record)
                verdict = assess(record, threshold).verdict
                if verdict:
                    summary.counts[verdict] += 1
                if on_result is not None:
                    on_result(record)
            completed = True
        except CsvError as exc:
            raise UsageError(str(exc)) from None
        except KeyboardInterrupt:
            summary.interrupted = True
            completed = summary.progress.done > 0
        finally:
            self._writer.close(completed=completed)
        if self.rank and not summary.interrupted:
            try:
                self.rank.finish(self.out, self.run_info)
            except CsvError as exc:
                raise UsageError(str(exc)) from None
        return summary
