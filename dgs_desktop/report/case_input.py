"""Case files (the window's SQLite case, `dgs_desktop.case`) as report input.

The case is opened read-only by `dgs_desktop.case.read_case`; its threshold, model and the
analyst's notes and tags go into the report. Rows never scanned are listed without a verdict.
"""

from __future__ import annotations

from pathlib import Path

from ..case import read_case as read_case_file
from ..detector.manifest import sha256_file
from .inputs import ReportItem, ReportSource, RunDetails, add_unique


def read_case(path: Path) -> ReportSource:
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
            add_unique(run.checkpoints, file.checkpoint)
            add_unique(run.checkpoint_sha256s, file.checkpoint_sha256)
            add_unique(run.devices, file.device)
    if not run.checkpoints:
        add_unique(run.checkpoints, info.checkpoint)
        add_unique(run.checkpoint_sha256s, info.checkpoint_sha256)
        add_unique(run.devices, info.device)
    return ReportSource(path=Path(path), kind="case file", sha256=sha256_file(Path(path)),
                        modified=Path(path).stat().st_mtime, items=items, run=run, case_name=info.name,
                        time_meaning=f"the case file's last change; case created {info.created}")
