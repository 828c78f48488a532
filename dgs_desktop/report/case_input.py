"""Case files (the window's SQLite case, `dgs_desktop.case`) as report input.

The case is opened read-only by `dgs_desktop.case.read_case`; its threshold, model and the
analyst's notes and tags go into the report. Rows never scanned are listed without a verdict.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..errors import InputError
from .inputs import ReportItem, ReportSource, RunDetails, _add


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def read_case(path: Path) -> ReportSource:
    try:
        from ..case import read_case as read_case_file
    except ImportError:
        raise InputError(f"{path} is a case file; case files need dgs_desktop.case, which this installation "
                         "lacks: export the case to CSV and give that") from None
    info, files = read_case_file(path)  # CaseError is an InputError: one line for the user
    run = RunDetails(thresholds=[info.threshold], versions=[info.created_with] if info.created_with else [])
    items = []
    for file in files:
        scanned = file.status in ("ok", "error")
        note = file.analyst_note or ""
        if file.tags:
            note = (note + "\n" if note else "") + "Tags: " + ", ".join(file.tags)
        items.append(ReportItem(
            path=file.path, sha256=file.sha256, status=file.status if scanned else "not scanned",
            fake_probability=file.fake_probability if file.status == "ok" else None, threshold=info.threshold,
            error=file.error if scanned else "not scanned in this case", width="" if file.width is None else str(file.width),
            height="" if file.height is None else str(file.height), format=file.format, notes="; ".join(file.notes),
            provenance=file.provenance, note=note))
        if scanned:
            _add(run.checkpoints, file.checkpoint)
            _add(run.checkpoint_sha256s, file.checkpoint_sha256)
            _add(run.devices, file.device)
    if not run.checkpoints:
        _add(run.checkpoints, info.checkpoint)
        _add(run.checkpoint_sha256s, info.checkpoint_sha256)
        _add(run.devices, info.device)
    return ReportSource(path=Path(path), kind="case file", sha256=_sha256_file(Path(path)),
                        modified=Path(path).stat().st_mtime, items=items, run=run, case_name=info.name,
                        time_meaning=f"the case file's last change; case created {info.created}")
