"""Keeps the window's work in a case file (dgs_desktop.case) and knows what is not saved yet.

While a case is open every added file, every scan result (with its patch boxes, so the
evidence can be shown again without a rescan), the threshold, the model and the analyst's
notes go into it as they happen, and the case's log gets each action: a scan when it ends
(how many files, which model), a threshold once it has settled, exports. Without a case,
results count as unsaved until exported, and nothing that would lose them (clear, open
another case, quit) happens without asking first.

The controller listens to the scan and the threshold itself; the window only connects it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QLineEdit, QMessageBox

from ..case import CASE_SUFFIX
from ..record import ScanRecord, reliability_warning
from .dialogs import show_error
from .output_place import choose_output_path, output_folder
from .results_model import QUEUED, ResultRow

if TYPE_CHECKING:
    from ..case import Case

CASE_FILTER = f"DGS Desktop cases (*{CASE_SUFFIX});;All files (*)"


def row_from_case_file(stored: ScanRecord) -> ResultRow:
    """A table row from a case's stored record, with its result when it had one."""
    row = ResultRow(path=stored.path, name=os.path.basename(stored.path), folder=os.path.dirname(stored.path),
                    analyst_note=stored.analyst_note, tags=tuple(stored.tags))
    if stored.scanned:
        boxes, low, entropies = stored.evidence()
        row.result = stored
        row.state = stored.status.value
        row.checkpoint_sha256, row.device, row.checkpoint = stored.checkpoint_sha256, stored.device, stored.checkpoint
        row.boxes = tuple(boxes) or None
        row.low_entropy = tuple(low) or None
        row.entropies = tuple(entropies) or None
        row.warning = reliability_warning(stored) if stored.ok else ""
    else:
        row.state = QUEUED
    return row


THRESHOLD_SETTLE_MS = 1500  # a threshold is logged once it has stayed put this long (a slider drag is one change)


class CaseController(QObject):
    changed = Signal()  # a case was opened or closed, or `unsaved` changed

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.model = window.model
        self.unsaved_box: QMessageBox | None = None  # the open "Results not saved" question
        self.details_dialog: QDialog | None = None  # the open "Case details" dialog
        self.case: Case | None = None  # while one is open
        self.unsaved = False  # results that are neither in a case nor exported
        self.calibration_sha256 = ""  # of the calibration whose threshold judges new scores
        self._logged_threshold: float | None = None  # the threshold the log last recorded
        self._pending_threshold: tuple[float, str] | None = None  # (value, why) waiting to settle
        self._threshold_timer = QTimer(self, singleShot=True, interval=THRESHOLD_SETTLE_MS)
        self._threshold_timer.timeout.connect(self.flush_threshold)
        self._scan_counts = {"ok": 0, "error": 0}
        self._scan_model = ("", "", "")  # spec, sha256, device of the scan being counted
        window.scans.results.connect(lambda results: self.results_scanned(results, window.controller.session))
        window.scans.cancelled.connect(lambda *_: self.scan_ended(cancelled=True))
        window.scans.stopped.connect(self.scan_ended)
        window.verdict_threshold.changed.connect(self.threshold_changed)

    @property
    def name(self) -> str:
        return "" if self.case is None else os.path.basename(str(self.case.path))

    def _set_unsaved(self, unsaved: bool) -> None:
        if unsaved != self.unsaved:
            self.unsaved = unsaved
            self.changed.emit()

    # ------------------------------------------------------- the analyst's save, open, details
    def ask_unsaved(self, what: str, proceed) -> None:
        """Runs `proceed` at once when nothing would be lost; else asks first (without blocking)."""
        if not self.unsaved:
            proceed()
            return
        box = QMessageBox(QMessageBox.Icon.Question, "Results not saved",
                          f"{len(self.model.scanned_results())} scanned result(s) are not in a case file and "
                          f"were not exported. {what.capitalize()} anyway?", QMessageBox.StandardButton.NoButton,
                          self.window)
        save = box.addButton("Save as case…", QMessageBox.ButtonRole.AcceptRole)
        discard = box.addButton(f"Discard and {what}", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(save)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def answered(*_):
            clicked = box.clickedButton()
            self.unsaved_box = None
            if clicked is discard or (clicked is save and self.choose_save()):
                proceed()

        box.finished.connect(answered)
        self.unsaved_box = box
        box.open()

    def choose_save(self) -> bool:
        path, _ = choose_output_path(self.window, "Save as case", "case" + CASE_SUFFIX, CASE_FILTER,
                                     options=QFileDialog.Option.DontConfirmOverwrite)
        if not path:
            return False
        return self.save_as(path if os.path.splitext(path)[1] else path + CASE_SUFFIX)

    def save_as(self, path: str) -> bool:
        """Writes the list and every result into a new case file and keeps saving into it."""
        from ..case import CaseError

        window = self.window
        try:
            self._write_new(path, window.threshold, window.controller.session)
        except CaseError as exc:
            show_error(window, "Case not saved", str(exc))
            return False
        window.detail.set_annotations_enabled(True)
        window.show_status(f"Case saved to {path}; it is saved automatically from now on.")
        return True

    def choose_open(self) -> None:
        window = self.window
        path, _ = QFileDialog.getOpenFileName(window, "Open case",
                                              output_folder(window.settings, window.intake.evidence_folders()), CASE_FILTER)
        if path:
            self.ask_unsaved("open another case", lambda: self.open(path))

    def open(self, path: str, create: bool = False) -> bool:
        """Shows a case's files and results (replacing the list); new files go into it; the
        model that made its scores is loaded (rows it scored stay as they are)."""
        from ..case import CaseError

        window = self.window
        try:
            case, info, rows = self._read_file(path, create)  # refused before the list is touched
        except CaseError as exc:
            show_error(window, "Case not opened", str(exc))
            return False
        window.clear_results()  # closes the case open until now, everything in it kept
        self._adopt(case, info)
        self.model.restore_rows(rows)
        window.detail.set_annotations_enabled(True)
        window.verdict_threshold.set(info.threshold)
        session = window.controller.session
        if info.checkpoint and (session is None or session.checkpoint.sha256 != info.checkpoint_sha256):
            window.models.load(info.checkpoint)
        elif session is not None:
            window.scans.set_scanner(session.scanner, session.checkpoint.sha256, session.scored_on, session.spec)
        if rows and window.table.currentIndex().row() < 0:
            window.table.selectRow(0)
        window.show_status(f"Opened case {path}: {len(rows)} file(s).")
        return True

    def edit_details(self) -> None:
        """Asks (without blocking) for the examiner and the case number, printed at the top of
        the case's reports."""
        if self.case is None:
            show_error(self.window, "No case open", "Save the results as a case (or open one) to give it an "
                       "examiner and a case number.")
            return
        info = self.case.info()
        dialog = QDialog(self.window)
        dialog.setWindowTitle(f"Case details — {self.name}")
        dialog.setMinimumWidth(420)
        examiner, number = QLineEdit(info.examiner), QLineEdit(info.case_number)
        examiner.setObjectName("examiner")
        number.setObjectName("caseNumber")
        form = QFormLayout(dialog)
        form.addRow("&Examiner:", examiner)
        form.addRow("Case &number:", number)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(dialog.accept)
        buttons.rejected.connect(dialog.reject)
        form.addRow(buttons)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def answered(result: int) -> None:
            self.details_dialog = None
            if result == QDialog.DialogCode.Accepted:
                self.set_details(examiner.text(), number.text())

        dialog.finished.connect(answered)
        self.details_dialog = dialog
        dialog.open()

    def set_details(self, examiner: str, case_number: str) -> None:
        if self.case is not None:
            self.flush_threshold()  # the log keeps the order things happened in
            self.case.set_details(examiner, case_number)

    # ------------------------------------------------------------------ open, save, close
    def _write_new(self, path: str, threshold: float, session) -> None:
        """Writes every row into a new case file and saves into it from now on (CaseError if not)."""
        from ..case import Case

        case = Case.create(path)
        self.close()
        self.case = case
        case.add_paths(row.path for row in self.model.rows)
        if session is not None:
            case.set_model(session.spec, session.checkpoint.sha256, session.scored_on)
        case.set_threshold(threshold)
        case.log("threshold", f"threshold {threshold:.6g}", threshold=threshold)
        self._logged_threshold = threshold
        for row in self.model.rows:
            if row.note_or_tags:
                case.set_note(row.path, row.analyst_note)
                case.set_tags(row.path, row.tags)
        stored = [row.result for row in self.model.rows if row.result is not None]
        self.results_scanned(stored, session, scanned=False)
        if stored:
            case.log("saved", f"{len(stored)} result(s) scored in this window saved into the case")
        self.changed.emit()

    def _read_file(self, path: str, create: bool = False):
        """Opens (or creates) a case and reads it, once: (case, CaseInfo, rows). Raises CaseError."""
        from ..case import Case

        case = Case.open_or_create(path) if create else Case.open(path)
        try:
            info, files = case.info(), case.files()
        except BaseException:
            case.close()
            raise
        return case, info, [row_from_case_file(f) for f in files]

    def _adopt(self, case, info) -> None:
        """Makes `case` the open case (the one before is closed by then)."""
        from .. import __version__

        case.log("opened", f"opened in dgs-desktop {__version__}")
        self.case = case
        self._logged_threshold = info.threshold
        self.changed.emit()

    def close(self) -> None:
        """Closes the case (everything in it stays) and forgets unsaved state."""
        if self.case is not None:
            self.flush_threshold()
            self.scan_ended(cancelled=True)
            self.case.close()
            self.case = None
        self.unsaved = False
        self.changed.emit()

    # ------------------------------------------------------------------------ autosave
    def files_added(self, paths: list[str]) -> None:
        if self.case is not None and paths:
            self.case.add_paths(paths)

    def log(self, action: str, detail: str, **data) -> None:
        """One action in the open case's log (nothing without a case)."""
        if self.case is not None:
            self.flush_threshold()  # the log keeps the order things happened in
            self.case.log(action, detail, **data)

    def results_scanned(self, results: list, session, scanned: bool = True) -> None:
        """Stores results (`scanned`: of the running scan, counted for its log entry; else e.g.
        a stability check added to a stored score)."""
        if self.case is None:
            self._set_unsaved(bool(results) or self.unsaved)
            return
        groups: dict[tuple[str, str], list] = {}  # (checkpoint sha256, device) -> results
        selections = {}
        for result in results:
            row = self.model.row_for_path(result.path)
            if row is None:
                continue
            groups.setdefault((row.checkpoint_sha256, row.device), []).append(result)
            selections[result.path] = (row.boxes or (), row.low_entropy or (), row.entropies or ())
        threshold = self.model.threshold
        for (checkpoint_sha256, device), group in groups.items():
            current = session is not None and session.checkpoint.sha256 == checkpoint_sha256
            spec = session.spec if current else self.case.info().checkpoint
            self.case.record_results(group, spec, checkpoint_sha256, device, selections, threshold=threshold,
                                     calibration_sha256=self.calibration_sha256)
            if scanned:
                self._scan_model = (spec, checkpoint_sha256, device)
                for result in group:
                    self._scan_counts["ok" if result.ok else "error"] += 1
        self._set_unsaved(False)

    def scan_ended(self, cancelled: bool) -> None:
        """Logs the scan that just ended: how many files, with which model, on what."""
        done = self._scan_counts["ok"] + self._scan_counts["error"]
        if self.case is None or not done:
            return
        spec, sha256, device = self._scan_model
        how = "stopped early" if cancelled else "finished"
        self.case.log("scanned", f"scan {how}: {done} file(s) scored with {spec} (manifest sha256 {sha256}) on "
                      f"{device}, threshold {self.model.threshold:.6g}: {self._scan_counts['ok']} ok, "
                      f"{self._scan_counts['error']} failed", checkpoint=spec, checkpoint_sha256=sha256,
                      device=device, files=done, failed=self._scan_counts["error"], threshold=self.model.threshold)
        self._scan_counts = {"ok": 0, "error": 0}

    def threshold_changed(self, threshold: float, why: str = "") -> None:
        """Stores the threshold at once; logs it when it has settled (`why`: e.g. the calibration's)."""
        if self.case is None:
            return
        self.case.set_threshold(threshold)
        self._pending_threshold = (threshold, why)
        self._threshold_timer.start()

    def flush_threshold(self) -> None:
        self._threshold_timer.stop()
        pending, self._pending_threshold = self._pending_threshold, None
        if self.case is None or pending is None or pending[0] == self._logged_threshold:
            return
        value, why = pending
        before = "" if self._logged_threshold is None else f" (was {self._logged_threshold:.6g})"
        self.case.log("threshold", f"threshold {value:.6g}{before}" + (f": {why}" if why else ""), threshold=value)
        self._logged_threshold = value

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

    def exported(self, what: str = "", path: str = "", rows: int = 0, scope: str = "") -> None:
        """Results went out (logged in the case with where to, how many rows, which ones)."""
        if what:
            self.log("exported", f"{what} written to {path}: {rows} row(s), {scope or 'all rows'}", path=path,
                     rows=rows, scope=scope)
        self._set_unsaved(False)
