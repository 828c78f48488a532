"""Everything that takes results out of the window: CSV export, the report, copy rows.

Each export asks which rows when a filter or a selection narrows them (all rows, the rows the
filter shows, or the selected rows), writes them with the scan's own writers (the CSV with
`dgs-desktop scan`'s columns, the report with `dgs-desktop report`'s builder, off the GUI
thread), carries each row's note and tags, and is logged in the open case with its scope.
"""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QApplication, QMessageBox

from .dialogs import show_error
from .output_place import choose_output_path
from .report_pdf import export_report
from .results_model import ROW_ROLE
from .workers import Task, start_task

HTML_FILTER, PDF_FILTER = "HTML report (*.html)", "PDF report (*.pdf)"
ALL_ROWS = "all rows"


def report_paths(path: str, pdf: bool) -> tuple[str | None, str | None]:
    """(html_path, pdf_path) for a report written to `path`, its suffix added when missing."""
    if pdf:
        return None, path if path.lower().endswith(".pdf") else path + ".pdf"
    return (path if path.lower().endswith((".html", ".htm")) else path + ".html"), None


class ExportController(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.exporting = False  # a report is being written
        self._jobs: set = set()

    # ----------------------------------------------------------------------- which rows
    def run_info(self):
        """The run facts every export records: model, device, threshold, precision, calibration."""
        from ..scan.csvio import RunInfo

        window = self.window
        session = window.controller.session
        return RunInfo(checkpoint=session.checkpoint.source, checkpoint_sha256=session.checkpoint.sha256,
                       device=session.device_label, threshold=window.threshold,
                       precision=session.scanner.precision, calibration=window.model.calibration)

    def row_choices(self) -> list[tuple[str, list | None]]:
        """(scope, rows) the analyst may export: all rows, and the shown (filtered) or the selected
        ones (two or more) when they are fewer."""
        window = self.window
        shown = [window.proxy.index(i, 0).data(ROW_ROLE) for i in range(window.proxy.rowCount())]
        choices: list[tuple[str, list | None]] = [(ALL_ROWS, None)]
        if 0 < len(shown) < len(window.model.rows):
            choices.append((f"the {len(shown)} rows the filter shows", shown))
        selected = self.selected_rows()
        if 1 < len(selected) < len(window.model.rows):  # one selected row is only the row in the detail pane
            choices.append((f"the {len(selected)} selected rows", selected))
        return choices

    def selected_rows(self) -> list:
        window = self.window
        return [window.proxy.index(index.row(), 0).data(ROW_ROLE)
                for index in window.table.selectionModel().selectedRows()]

    def choose_rows(self, title: str) -> tuple[list | None, str] | None:
        """(rows, scope) to export, asked only when a filter or a selection narrows the rows;
        None when the analyst cancels."""
        choices = self.row_choices()
        if len(choices) == 1:
            return None, choices[0][0]
        box = QMessageBox(QMessageBox.Icon.Question, title, "Which rows should be exported?",
                          QMessageBox.StandardButton.Cancel, self.window)
        buttons = [(box.addButton(scope.capitalize(), QMessageBox.ButtonRole.AcceptRole), scope, rows)
                   for scope, rows in choices]
        box.exec()
        return next(((rows, scope) for button, scope, rows in buttons if box.clickedButton() is button), None)

    def _ask(self, title: str, empty: str, name: str, filters: str) -> tuple[list | None, str, str, str] | None:
        """(rows, scope, path, chosen filter) of an export the analyst asks for; None when there
        is nothing scanned (said under `empty`) or they cancel the row choice or the save dialog."""
        window = self.window
        if window.controller.session is None or not window.model.scanned_results():
            show_error(window, empty, "There are no scanned results yet.")
            return None
        choice = self.choose_rows(title)
        if choice is None:
            return None
        path, chosen = choose_output_path(window, title, name, filters)
        return (*choice, path, chosen) if path else None

    def _left_out(self, rows: list | None, written: int) -> str:
        waiting = len(self.window.model.rows if rows is None else rows) - written
        return f" ({waiting} not scanned yet were left out)" if waiting else ""

    # ------------------------------------------------------------------------------ CSV
    def choose_csv(self) -> None:
        asked = self._ask("Export results as CSV", "Nothing to export", "dgs-results.csv", "CSV files (*.csv)")
        if asked is not None:
            rows, scope, path, _ = asked
            self.export_csv(path, rows, scope)

    def export_csv(self, path: str, rows: list | None = None, scope: str = ALL_ROWS) -> bool:
        from ..scan.csvio import CsvError, write_results_csv

        window = self.window
        results = window.model.export_records(rows)
        try:
            write_results_csv(path, results, self.run_info())
        except (CsvError, OSError) as exc:
            show_error(window, "Export failed", f"The CSV could not be written: {exc}")
            return False
        window.show_status(f"Exported {len(results)} rows to {path}{self._left_out(rows, len(results))}.")
        window.cases.exported("CSV", path, len(results), scope)
        return True

    def copy_selected_rows(self) -> None:
        from ..record import ScanRecord
        from ..scan.csvio import csv_text

        window = self.window
        rows = self.selected_rows()
        if not rows:
            return
        run = self.run_info() if window.controller.session is not None else None
        results = [row.result if row.result is not None and run is not None else ScanRecord(row.path, row.state)
                   for row in rows]
        # The export's writer and rules (quoting, formulas, UTF-8), tab-separated for pasting.
        QApplication.clipboard().setText(csv_text(results, run, delimiter="\t"))
        window.show_status(f"Copied {len(rows)} row(s).")

    # --------------------------------------------------------------------------- report
    def report_source(self, rows: list | None = None):
        """The report of `rows` (default all), with the open case's name, examiner, case number,
        scoring history and log."""
        from ..report.inputs import source_from_results

        window = self.window
        case = window.cases.case
        info = case.info() if case is not None else None
        return source_from_results(window.model.export_records(rows), self.run_info(),
                                   case_name=window.cases.name, case_path=None if case is None else case.path,
                                   examiner=info.examiner if info else "", case_number=info.case_number if info else "")

    def choose_report(self) -> None:
        asked = self._ask("Export report", "Nothing to report", "dgs-report.html", f"{HTML_FILTER};;{PDF_FILTER}")
        if asked is not None:
            rows, scope, path, chosen = asked
            self.export_report(path, pdf=chosen == PDF_FILTER or path.lower().endswith(".pdf"), rows=rows, scope=scope)

    def export_report(self, path: str, pdf: bool = False, overwrite: bool = True, rows: list | None = None,
                      scope: str = ALL_ROWS) -> None:
        """Writes the report in the background. The save dialog already asked before replacing
        a file, so `overwrite` is the dialog's answer. The case's history is read here, on the
        GUI thread that owns the case's database connection."""
        html_path, pdf_path = report_paths(path, pdf)
        source = self.report_source(rows)
        self.exporting = True
        self.window.update_export_actions()
        self.window.statusBar().showMessage("Writing the report…")
        what = "PDF report" if pdf else "HTML report"

        def write(report, cancelled) -> list:
            return export_report(source, html_path, pdf_path, overwrite, cancelled=cancelled)

        task = Task(write, pass_hooks=True)  # cancelled when the window closes
        task.signals.succeeded.connect(lambda written: self._report_done(what, written[0], len(source.items), scope))
        task.signals.failed.connect(self._report_failed)
        start_task(task, self._jobs, owner=self)

    def cancel(self) -> None:
        """Stops a report being written (its PDF child process ends; nothing half-written stays)."""
        for job in list(self._jobs):
            job.cancel()

    def _report_done(self, what: str, path, count: int, scope: str) -> None:
        self.exporting = False
        self.window.update_export_actions()
        self.window.cases.exported(what, str(path), count, scope)
        self.window.statusBar().showMessage(f"Report written to {path}.", 8000)

    def _report_failed(self, message: str) -> None:
        self.exporting = False
        self.window.update_export_actions()
        self.window.statusBar().clearMessage()
        if message != "cancelled":
            show_error(self.window, "Report not written", message)
