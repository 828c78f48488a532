"""The window's "Provenance" tab and File → Export report, attached with one call.

`attach(window)` adds a metadata & provenance panel as a tab of the detail pane, keeps it on
the selected row (read in the background through the scan's safe reader, only while the tab
is shown), and serves the window's *Export report…* action (declared with the other actions
in window_actions): the HTML or PDF report of the scanned rows, written on a pool thread,
with the analyst's notes and tags and the case's name when there is a case.
"""

from __future__ import annotations

from PySide6.QtCore import QObject

from .dialogs import show_error
from .output_place import choose_output_path
from .provenance_panel import ProvenancePanel
from .report_pdf import export_report
from .workers import Task, start_task

HTML_FILTER, PDF_FILTER = "HTML report (*.html)", "PDF report (*.pdf)"
TAB_TITLE = "Provenance"


class ReportAndProvenance(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self._jobs: set = set()
        self.exporting = False
        self._shown_path: str | None = None
        self.panel = ProvenancePanel()
        self.tab_index = window.detail.add_tab(self.panel, TAB_TITLE)
        window.detail.tabs.currentChanged.connect(lambda _: self.refresh_panel())
        window.table.selectionModel().currentRowChanged.connect(lambda *_: self.refresh_panel())
        window.table.selectionModel().selectionChanged.connect(lambda *_: self.refresh_panel())
        self.action = window.export_report_action
        export_csv = window.export_action
        self.action.setEnabled(export_csv.isEnabled())
        export_csv.changed.connect(self._follow_export_csv)

    def _follow_export_csv(self) -> None:
        self.action.setEnabled(self.window.export_action.isEnabled() and not self.exporting)

    # --------------------------------------------------------------------------- the panel
    def show_panel(self) -> None:
        self.window.detail.tabs.setCurrentIndex(self.tab_index)

    def refresh_panel(self) -> None:
        if self.window.detail.tabs.currentIndex() != self.tab_index:
            return  # read only what the analyst looks at
        row = self.window.shown_row()  # the row the detail pane shows: selected, never just current
        path = None if row is None else row.path
        if path == self._shown_path:
            return
        self._shown_path = path
        sha256 = getattr(row.result, "sha256", "") if row is not None and row.result is not None else ""
        self.panel.load_file(path, sha256)

    # -------------------------------------------------------------------------- the report
    def report_source(self):
        from ..report.inputs import source_from_results

        window = self.window
        notes = {}
        for row in window.model.rows:
            parts = [row.analyst_note] if getattr(row, "analyst_note", "") else []
            if getattr(row, "tags", ()):
                parts.append("Tags: " + ", ".join(row.tags))
            if parts:
                notes[row.path] = "\n".join(parts)
        case = getattr(window.cases, "case", None) if hasattr(window, "cases") else None
        case_name = window.cases.name if case is not None else ""
        return source_from_results(window.model.scanned_results(), window.run_info(), notes=notes,
                                   case_name=case_name or "")

    def choose_export(self) -> None:
        window = self.window
        if window.controller.session is None or not window.model.scanned_results():
            show_error(window, "Nothing to report", "There are no scanned results to report yet.")
            return
        path, chosen = choose_output_path(window, "Export report", "dgs-report.html", f"{HTML_FILTER};;{PDF_FILTER}")
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
        self.window.statusBar().showMessage("Writing the report…")
        task = Task(export_report, self.report_source(), None if pdf else path, path if pdf else None, overwrite)
        task.signals.succeeded.connect(lambda written: self._done(f"Report written to {written[0]}."))
        task.signals.failed.connect(lambda message: self._done("", message))
        start_task(task, self._jobs, owner=self)

    def _done(self, message: str, error: str = "") -> None:
        self.exporting = False
        self._follow_export_csv()
        if error:
            self.window.statusBar().clearMessage()
            show_error(self.window, "Report not written", error)
        else:
            self.window.statusBar().showMessage(message, 8000)


def attach(window) -> ReportAndProvenance:
    window.report_and_provenance = ReportAndProvenance(window)
    return window.report_and_provenance
