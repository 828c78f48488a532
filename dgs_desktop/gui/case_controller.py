"""Keeps the window's work in a case file (dgs_desktop.case) and knows what is not saved yet.

While a case is open every added file, every scan result (with its patch boxes, so the
evidence can be shown again without a rescan), the threshold, the model and the analyst's
notes go into it as they happen. Without a case, results count as unsaved until exported.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QObject, Signal

from ..record import ScanRecord
from .results_model import QUEUED, ResultRow, ResultsModel, reliability_warning


def row_from_case_file(stored: ScanRecord) -> ResultRow:
    """A table row from a case's stored record, with its result when it had one."""
    row = ResultRow(path=stored.path, name=os.path.basename(stored.path), folder=os.path.dirname(stored.path),
                    analyst_note=stored.analyst_note, tags=tuple(stored.tags))
    if stored.scanned:
        boxes, low, entropies = stored.evidence()
        row.result = stored
        row.state = stored.status.value
        row.checkpoint_sha256, row.device = stored.checkpoint_sha256, stored.device
        row.boxes = tuple(boxes) or None
        row.low_entropy = tuple(low) or None
        row.entropies = tuple(entropies) or None
        row.warning = reliability_warning(stored) if stored.ok else ""
    else:
        row.state = QUEUED
    return row


class CaseController(QObject):
    changed = Signal()  # a case was opened or closed, or `unsaved` changed

    def __init__(self, model: ResultsModel, parent=None):
        super().__init__(parent)
        self.model = model
        self.case = None  # dgs_desktop.case.Case while one is open
        self.unsaved = False  # results that are neither in a case nor exported

    @property
    def name(self) -> str:
        return "" if self.case is None else os.path.basename(str(self.case.path))

    def _set_unsaved(self, unsaved: bool) -> None:
        if unsaved != self.unsaved:
            self.unsaved = unsaved
            self.changed.emit()

    # ------------------------------------------------------------------ open, save, close
    def save_as(self, path: str, threshold: float, session) -> None:
        """Writes every row into a new case file and saves into it from now on (CaseError if not)."""
        from ..case import Case

        case = Case.create(path)
        self.close()
        self.case = case
        case.add_paths(row.path for row in self.model.rows)
        if session is not None:
            case.set_model(session.spec, session.checkpoint.sha256, session.scored_on)
        case.set_threshold(threshold)
        for row in self.model.rows:
            if row.note_or_tags:
                case.set_note(row.path, row.analyst_note)
                case.set_tags(row.path, row.tags)
        self.results_scanned([row.result for row in self.model.rows if row.result is not None], session)
        self.changed.emit()

    def open(self, path: str, create: bool = False):
        """Opens (or creates) a case; returns its CaseInfo and rows. Raises CaseError."""
        from ..case import Case

        case = Case.open_or_create(path) if create else Case.open(path)
        info, files = case.info(), case.files()
        self.close()
        self.case = case
        self.changed.emit()
        return info, [row_from_case_file(f) for f in files]

    def close(self) -> None:
        """Closes the case (everything in it stays) and forgets unsaved state."""
        if self.case is not None:
            self.case.close()
            self.case = None
        self.unsaved = False
        self.changed.emit()

    # ------------------------------------------------------------------------ autosave
    def files_added(self, paths: list[str]) -> None:
        if self.case is not None and paths:
            self.case.add_paths(paths)

    def results_scanned(self, results: list, session) -> None:
        if self.case is None:
            self._set_unsaved(bool(results) or self.unsaved)
            return
        groups: dict[str, list] = {}
        selections = {}
        for result in results:
            row = self.model.row_for_path(result.path)
            if row is None:
                continue
            groups.setdefault((row.checkpoint_sha256, row.device), []).append(result)
            selections[result.path] = (row.boxes or (), row.low_entropy or (), row.entropies or ())
        for (checkpoint_sha256, device), group in groups.items():
            current = session is not None and session.checkpoint.sha256 == checkpoint_sha256
            spec = session.spec if current else self.case.info().checkpoint
            self.case.record_results(group, spec, checkpoint_sha256, device, selections)
        self._set_unsaved(False)

    def threshold_changed(self, threshold: float) -> None:
        if self.case is not None:
            self.case.set_threshold(threshold)

    def model_changed(self, session) -> float | None:
        """Records the model; returns the case's threshold when the case was made with it."""
        if self.case is None:
            return None
        info = self.case.info()
        threshold = info.threshold if info.checkpoint_sha256 == session.checkpoint.sha256 else None
        self.case.set_model(session.spec, session.checkpoint.sha256, session.scored_on)
        return threshold

    def annotate(self, path: str, note: str, tags) -> None:
        row = self.model.row_for_path(path)
        if row is None:
            return
        row.analyst_note, row.tags = note, tuple(tags)
        if self.case is not None:
            self.case.set_note(path, note)
            self.case.set_tags(path, tags)

    def exported(self) -> None:
        self._set_unsaved(False)
