"""Scans across processes: `torchrun --nproc_per_node=N -m dgs_desktop scan PATH... --csv OUT`.

Every rank lists the same files and scores those assigned to it by a hash of the path (a
stable assignment: the same file goes to the same rank for the same number of ranks), on its
own device, appending rows to its own part file beside OUT (`OUT.part<rank>of<N>`), crash-safe
like OUT itself. When every rank is done, rank 0 merges the parts into OUT in one atomic
replace and removes them. A run that was killed leaves the parts; `--resume` (with any number
of processes, or none) first folds them into OUT, then scans only the files still missing, so
each file ends up in exactly one row.

Only a gloo process group is used, for two barriers: rows never travel between processes.
"""

from __future__ import annotations

import datetime
import glob
import hashlib
import logging
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_path
from ..envknobs import required_int
from .content import ContentGroups
from .csvio import COLUMNS, CsvResultWriter, RunInfo, csv_line, read_results_csv, utf8_text

log = logging.getLogger(__name__)

# A slow rank (more or larger files) makes the others wait at the final barrier.
_BARRIER_TIMEOUT = datetime.timedelta(days=7)


def rank_of(path: str | os.PathLike[str], world_size: int) -> int:
    """The rank that scores `path`: stable across runs, machines and Python versions."""
    digest = hashlib.sha256(os.fsencode(os.fspath(path))).digest()
    return int.from_bytes(digest[:8], "little") % world_size


def part_path(out: Path, rank: int, world_size: int) -> Path:
    return out.with_name(f"{out.name}.part{rank}of{world_size}")


def existing_parts(out: Path) -> list[Path]:
    """Part files a distributed scan into OUT left behind (any number of ranks)."""
    pattern = re.compile(re.escape(out.name) + r"\.part\d+of\d+")
    return sorted(p for p in out.parent.glob(glob.escape(out.name) + ".part*of*")
                  if pattern.fullmatch(p.name) and p.is_file())


def merge_parts(out: Path, parts: list[Path], run: RunInfo) -> int:
    """Folds `parts` into OUT: OUT's rows first (with any columns the analyst added), then
    each part row whose file is not in OUT, written by csvio's rules. A part row's
    `same_content_as` names the first merged row with its sha256 (each rank only knew its own
    share); OUT's rows keep theirs (an older version's empty cell is filled).

    OUT is replaced in one rename, so a kill during the merge leaves OUT and the parts as
    they were; the parts are removed only afterwards (a second merge skips rows already in
    OUT). Returns the number of rows added.
    """
    sources = ([out] if out.exists() else []) + list(parts)
    for source in sources:
        # Validates that the file is one of ours and cuts a half-written last row (power cut).
        CsvResultWriter(source, run, resume=True).close()
    tables = [read_results_csv(source) for source in sources]
    header = list(tables[0].header) if tables else list(COLUMNS)
    for table in tables:
        header += [column for column in table.header if column not in header]
    seen: set[bytes] = set()
    added = 0
    content = ContentGroups()
    grouped = all(c in header for c in ("path", "sha256", "same_content_as"))  # an older version's lacks one
    path_at, sha_at, same_at = (header.index(c) if grouped else 0 for c in ("path", "sha256", "same_content_as"))
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(csv_line(header).encode("utf-8"))
            for index, table in enumerate(tables):
                where = [table.header.index(c) if c in table.header else None for c in header]
                for row, key in zip(table.rows, table.keys):
                    if key in seen:
                        continue
                    seen.add(key)
                    cells = ["" if at is None else utf8_text(row[at]) for at in where]
                    from_part = index >= len(sources) - len(parts)
                    if grouped:
                        first = content.note(cells[path_at], cells[sha_at])
                        cells[same_at] = first if from_part else cells[same_at] or first
                    handle.write(csv_line(cells).encode("utf-8"))
                    added += from_part
            handle.flush()
            os.fsync(handle.fileno())
    for part in parts:
        part.unlink(missing_ok=True)
    return added


def fold_leftover_parts(out: Path, run: RunInfo) -> int:
    """Before a resumed scan: rows of an interrupted distributed scan go into OUT."""
    parts = existing_parts(out)
    if not parts:
        return 0
    added = merge_parts(out, parts, run)
    log.info("folded %d row(s) from %d part file(s) of an interrupted distributed scan into %s",
             added, len(parts), out)
    return added


def discard_leftover_parts(out: Path, run: RunInfo) -> None:
    """Before a fresh (not resumed) scan into OUT: parts of an earlier interrupted scan would
    otherwise be folded into this scan's CSV by a later `--resume`. Only our own files go."""
    for part in existing_parts(out):
        CsvResultWriter(part, run, resume=True).close()  # raises CsvError for a file not ours
        part.unlink()


@dataclass(frozen=True)
class ScanRank:
    """This process's place in a torchrun scan."""

    rank: int
    world_size: int
    local_rank: int

    @classmethod
    def from_env(cls) -> ScanRank | None:
        """The torchrun rank from its environment; None for a plain (single-process) run."""
        world_size = required_int("WORLD_SIZE", minimum=1, default=1)
        if world_size <= 1:
            return None
        return cls(rank=required_int("RANK"), world_size=world_size, local_rank=required_int("LOCAL_RANK", default=0))

    def owns(self, path: str | os.PathLike[str]) -> bool:
        return rank_of(path, self.world_size) == self.rank

    def device_spec(self, requested: str) -> str:
        """`auto`/`cuda` mean this rank's own GPU (local rank), when there are GPUs."""
        import torch

        requested = (requested or "auto").strip().lower()
        if requested in ("auto", "cuda") and torch.cuda.is_available():
            return f"cuda:{self.local_rank % torch.cuda.device_count()}"
        return requested

    def label(self, device_description: str) -> str:
        """The CSV `device` of this rank's rows: an audit trail of who scored what."""
        return f"{device_description} rank {self.rank}/{self.world_size} {socket.gethostname()}"

    def part(self, out: Path) -> Path:
        return part_path(out, self.rank, self.world_size)

    def start(self, out: Path, run: RunInfo, resume: bool) -> None:
        """Joins the process group; rank 0 readies OUT while the others wait.

        Resume: leftover parts are folded into OUT. Fresh scan: leftover parts are removed
        (after checking they are ours) and OUT starts with just the header, as a
        single-process scan would.
        """
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("gloo", timeout=_BARRIER_TIMEOUT)
        try:
            if self.rank == 0:
                if resume:
                    fold_leftover_parts(out, run)
                else:
                    discard_leftover_parts(out, run)
                    CsvResultWriter(out, run).close()
        finally:
            dist.barrier()  # also on failure: the others must not start on a half-ready OUT

    def finish(self, out: Path, run: RunInfo) -> int:
        """Waits for every rank, then rank 0 merges all parts into OUT. Returns rows merged."""
        import torch.distributed as dist

        dist.barrier()
        added = merge_parts(out, existing_parts(out), run) if self.rank == 0 else 0
        dist.barrier()  # OUT is complete for every rank once this returns
        dist.destroy_process_group()
        return added
