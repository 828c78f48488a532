"""The window's provenance tab and File → Export report, attached with one call.

`attach(window)` puts the detail pane and a "Metadata & provenance" panel in tabs, keeps the
panel on the selected row (read in the background, only while its tab is shown), and adds an
*Export report…* action (toolbar and File menu) that writes the HTML or PDF report of the
scanned rows on a pool thread, with the case's notes when the window has a case.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMenu, QSplitter, QStyle, QTabWidget, QToolBar

from .dialogs import show_error
from .provenance_panel import ProvenancePanel
from .report_pdf import export_report
from .workers import Task, start_task

HTML_FILTER, PDF_FILTER = "HTML report (*.html)", "PDF report (*.pdf)"


class ReportAndProvenance(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self._jobs: set = set()
        self.exporting = False
        self.panel = ProvenancePanel()
        self.tabs = QTabWidget()
        splitter: QSplitter = window.splitter
        index = splitter.indexOf(window.detail)
        self.tabs.addTab(window.detail, "Patches")
        self.tabs.addTab(self.panel, "Metadata && provenance")
        splitter.insertWidget(index, self.tabs)
        self.tabs.currentChanged.connect(lambda _: self.refresh_panel())
        window.table.selectionModel().currentRowChanged.connect(lambda *_: self.refresh_panel())
        self._shown_path: str | None = None

        self.action = QAction("Export report…", window)
        self.action.setIcon(window.style().standardIcon(QStyle.StandardPixmap.SP_FileDialogDetailedView))
        self.action.setShortcut(QKeySequence("Ctrl+Shift+E"))
        tip = "Save an HTML or PDF report of the scanned images for the case file"
        self.action.setToolTip(f"{tip} (Ctrl+Shift+E)")
        self.action.setStatusTip(tip)
        self.action.triggered.connect(self.choose_export)
        window.addAction(self.action)
        export_csv = getattr(window, "export_action", None)
        if export_csv is not None:
            self.action.setEnabled(export_csv.isEnabled())
            export_csv.changed.connect(lambda: self.action.setEnabled(export_csv.isEnabled() and not self.exporting))
        toolbar = window.findChild(QToolBar, "mainToolbar")
        if toolbar is not None:  # right after Export CSV
            actions = toolbar.actions()
            position = actions.index(export_csv) + 1 if export_csv in actions else len(actions)
            if position < len(actions):
                toolbar.insertAction(actions[position], self.action)
            else:
                toolbar.addAction(self.action)
        file_menu = next((m for m in window.menuBar().findChildren(QMenu)
                          if m.title().replace("&", "") == "File"), None)
        if file_menu is not None:
            file_menu.addAction(self.action)

    # --------------------------------------------------------------------------- the panel
    def _current_row(self):
        from .results_model import ROW_ROLE

        index = self.window.table.currentIndex()
        return index.data(ROW_ROLE) if index.isValid() else None

    def refresh_panel(self) -> None:
        if self.tabs.currentWidget() is not self.panel:
            return  # read only what the analyst looks at
        row = self._current_row()
        path = None if row is None else row.path
        if path == self._shown_path:
            return
        self._shown_path = path
        sha256 = row.result.sha256 if row is not None and row.result is not None else ""
        self.panel.load_file(path, sha256)

    # -------------------------------------------------------------------------- the report
    def report_source(self):
        from ..report.inputs import source_from_results

        window = self.window
        notes_of = getattr(window, "case_notes", None)
        notes = notes_of() if callable(notes_of) else {}
        case_name = getattr(window, "case_name", "") or ""
        return source_from_results(window.model.scanned_results(), window.run_info(), notes=notes,
                                   case_name=case_name if isinstance(case_name, str) else "")

    def choose_export(self) -> None:
        window = self.window
        if window.controller.session is None or not window.model.scanned_results():
            show_error(window, "Nothing to report", "There are no scanned results to report yet.")
            return
        start = os.path.join(window.settings.last_folder, "dgs-report.html")
        path, chosen = QFileDialog.getSaveFileName(window, "Export report", start, f"{HTML_FILTER};;{PDF_FILTER}")
        if path:
            self.export(path, pdf=chosen == PDF_FILTER or path.lower().endswith(".pdf"))

    def export(self, path: str, pdf: bool = False, overwrite: bool = True) -> None:
        """Writes the report in the background. The save dialog already asked before
        replacing a file, so `overwrite` is the dialog's answer."""
        if pdf and not path.lower().endswith(".pdf"):
            path += ".pdf"
        elif not pdf and not path.lower().endswith((".html", ".htm")):
            path += ".html"
        self.exporting = True
        self.action.setEnabled(False)
        window = self.window
        status = window.statusBar()
        status.showMessage("Writing the report…")
        task = Task(export_report, self.report_source(), None if pdf else path, path if pdf else None, overwrite)
        task.signals.succeeded.connect(lambda written: self._done(f"Report written to {written[0]}."))
        task.signals.failed.connect(lambda message: self._done("", message))
        start_task(task, self._jobs)

    def _done(self, message: str, error: str = "") -> None:
        self.exporting = False
        export_csv = getattr(self.window, "export_action", None)
        self.action.setEnabled(export_csv.isEnabled() if export_csv is not None else True)
        if error:
            self.window.statusBar().clearMessage()
            show_error(self.window, "Report not written", error)
        else:
            self.window.statusBar().showMessage(message, 8000)


def attach(window) -> ReportAndProvenance:
    window.report_and_provenance = ReportAndProvenance(window)
    return window.report_and_provenance

