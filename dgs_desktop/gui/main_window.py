"""The main window: it assembles the parts and wires them together; the work lives in them.

Data flow, drop -> row: `FileIntake` finds the files (off the GUI thread) and lists them in
`ResultsModel`; `ScanController` scores them on its own thread pool with the model that
`ModelController` loaded (`ModelFlow` decides what a new model means for the rows); each
result updates its row, goes into the open case (`CaseController`) and is shown by the table
(`ResultsView`), the summary, the histogram and `DetailPane`. One `Threshold` object judges
them all. Results leave through `ExportController` (CSV, report, copy).
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, QThreadPool, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox, QSplitter, QToolBar, QVBoxLayout, QWidget

from . import help_dialogs, window_geometry
from .case_controller import CaseController
from .detail_pane import DetailPane
from .dialogs import show_error
from .export_controller import ExportController
from .file_intake import FileIntake, local_paths
from .histogram import ProbabilityHistogram
from .model_banner import ModelBanner
from .model_controller import ModelController
from .model_flow import ModelFlow
from .provenance_tab import ProvenanceTab
from .results_model import OK, ROW_ROLE, ResultRow, ResultsFilter, ResultsModel
from .results_view import ResultsSummary, ResultsView, filter_bar
from .scan_controller import ScanController
from .scan_progress import ScanProgress
from .settings import AppSettings
from .stability_checks import StabilityChecks
from .threshold import Threshold, ThresholdControl
from .thumbnails import THUMBNAIL_SIZE, ThumbnailProvider
from .window_actions import build_actions, build_menus, connect_actions, toolbar_actions

log = logging.getLogger(__name__)

SHUTDOWN_WAIT_MS = 3000
MODEL_WARNING_STYLE = ("background: #fff3e0; color: #bf360c; border: 1px solid #ffb74d; padding: 4px 8px; "
                       "font-weight: bold")


class MainWindow(QMainWindow):
    scan_finished = Signal(bool)  # cancelled; emitted when no scan runs and nothing waits
    # one QAction per window_actions.ACTIONS entry, set by build_actions
    add_files_action: QAction
    add_folder_action: QAction
    cancel_action: QAction
    resume_action: QAction
    save_case_action: QAction
    open_case_action: QAction
    case_details_action: QAction
    export_action: QAction
    export_report_action: QAction
    copy_action: QAction
    clear_action: QAction
    quit_action: QAction
    model_action: QAction
    load_folder_action: QAction
    calibration_action: QAction
    stability_action: QAction
    zoom_in_action: QAction
    zoom_out_action: QAction
    fit_action: QAction
    actual_size_action: QAction
    focus_table_action: QAction
    focus_filter_action: QAction
    focus_threshold_action: QAction
    shortcuts_action: QAction
    about_action: QAction

    def __init__(self, settings: AppSettings | None = None, controller: ModelController | None = None):
        super().__init__()
        self.settings = settings or AppSettings()
        self.controller = controller or ModelController(self)
        self.setAcceptDrops(True)
        self._closing = False
        self._fitted_to_screen = False
        self.last_status = ""
        self.about_box: QMessageBox | None = None
        self.shortcuts_box: QMessageBox | None = None

        self.verdict_threshold = Threshold(self)
        self.thumbnails = ThumbnailProvider(THUMBNAIL_SIZE, parent=self)
        self.model = ResultsModel(self.thumbnails, self)
        self.proxy = ResultsFilter(self)
        self.proxy.setSourceModel(self.model)
        self.scans = ScanController(self.model, self)
        self.scans.failed.connect(lambda message: show_error(self, "Scan stopped", f"The scan stopped: {message}"))
        build_actions(self)
        self.stability_action.setEnabled(False)  # until a scored row is shown
        self._build_ui()
        self._subscribe_to_the_threshold()
        self.intake = FileIntake(self)
        self.scan_progress = ScanProgress(self)
        self.scan_progress.finished.connect(self.scan_finished)
        self.statusBar().insertWidget(0, self.scan_progress.bar)
        self.cases = CaseController(self)
        self.cases.changed.connect(self._update_title)
        self.models = ModelFlow(self)
        self.stability = StabilityChecks(self)
        self.exports = ExportController(self)
        self.provenance = ProvenanceTab(self)
        build_menus(self)
        connect_actions(self, self._action_triggers())
        self.model.dataChanged.connect(self._rows_changed)
        window_geometry.restore(self, self.settings)
        self._update_title()
        self.summary.refresh()

    def _action_triggers(self) -> dict:
        """What each action of window_actions does."""
        view = self.detail.image_view
        return {
            "add_files_action": self.intake.choose_files, "add_folder_action": self.intake.choose_folder,
            "cancel_action": self.scans.cancel, "resume_action": self.scan_progress.scan_remaining,
            "save_case_action": self.cases.choose_save, "open_case_action": self.cases.choose_open,
            "case_details_action": self.cases.edit_details,
            "export_action": self.exports.choose_csv, "export_report_action": self.exports.choose_report,
            "copy_action": self.exports.copy_selected_rows, "clear_action": self.request_clear, "quit_action": self.close,
            "model_action": self.models.open_manager, "load_folder_action": self.models.choose_folder,
            "calibration_action": self.models.open_calibration, "stability_action": self.stability.check,
            "zoom_in_action": view.zoom_in, "zoom_out_action": view.zoom_out, "fit_action": view.fit,
            "actual_size_action": view.actual_size, "focus_table_action": self.table.setFocus,
            "focus_filter_action": self.text_filter.setFocus, "focus_threshold_action": self.threshold_spin.setFocus,
            "shortcuts_action": self.show_shortcuts, "about_action": self.show_about,
        }

    def _subscribe_to_the_threshold(self) -> None:
        """The table, the histogram and the detail pane follow the threshold (the case, the
        summary, the stability text and the saved settings subscribe themselves)."""
        changed = self.verdict_threshold.changed
        changed.connect(lambda value, why: self.model.set_threshold(value))
        changed.connect(lambda value, why: self.histogram.set_threshold(value))
        changed.connect(lambda value, why: self.detail.refresh_verdict(self.shown_row(), value))

    def _build_ui(self) -> None:
        toolbar = QToolBar("Main", self)
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for action in toolbar_actions(self):
            toolbar.addSeparator() if action is None else toolbar.addAction(action)
            if action is not None:  # toolbar buttons take no focus by default: make them reachable by Tab
                toolbar.widgetForAction(action).setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self.addToolBar(toolbar)
        self.toolbar = toolbar

        self.banner = ModelBanner(self)
        self.model_warning = QLabel()
        self.model_warning.setObjectName("modelWarning")
        self.model_warning.setWordWrap(True)
        self.model_warning.setStyleSheet(MODEL_WARNING_STYLE)
        self.model_warning.setVisible(False)

        self.threshold_control = ThresholdControl(self.verdict_threshold)
        self.threshold_spin = self.threshold_control.spin  # Ctrl+H's target
        filters, self.verdict_filter, self.text_filter = filter_bar(self.proxy, self.threshold_control)
        self.table = ResultsView(self.proxy)
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self.refresh_detail())
        # Both the selection and the current row signal one click: the same row is loaded once.
        self.table.selectionModel().selectionChanged.connect(lambda *_: self.refresh_detail())
        self.histogram = ProbabilityHistogram()
        self.summary = ResultsSummary(self)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(6, 6, 0, 6)
        left_layout.addLayout(filters)
        left_layout.addWidget(self.table, 1)
        left_layout.addWidget(self.summary.line)
        left_layout.addWidget(self.histogram)

        self.detail = DetailPane()
        self.detail.annotation_changed.connect(lambda path, note, tags: self.cases.annotate(path, note, tags))
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([620, 520])

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.banner)
        layout.addWidget(self.model_warning)
        layout.addWidget(self.splitter, 1)
        self.setCentralWidget(central)

        self.progress_label = QLabel()
        self.model_label = QLabel()
        self.statusBar().addWidget(self.progress_label, 1)
        self.statusBar().addPermanentWidget(self.summary.counts)
        self.statusBar().addPermanentWidget(self.model_label)

    def _update_title(self) -> None:
        case = f" — case {self.cases.name}" if self.cases.case is not None else ""
        unsaved = " (unsaved results)" if self.cases.unsaved else ""
        self.setWindowTitle(f"DGS Desktop — is this image AI-generated?{case}{unsaved}")

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if not self._fitted_to_screen:  # on the screen it opens on (it may not be the primary one)
            self._fitted_to_screen = True
            window_geometry.fit_screen(self)

    def closeEvent(self, event) -> None:  # noqa: N802
        if not self._closing and self.cases.unsaved:
            event.ignore()
            self.cases.ask_unsaved("quit", self._confirmed_close)
            return
        window_geometry.save(self, self.settings)
        self.shutdown()
        super().closeEvent(event)

    def _confirmed_close(self) -> None:
        self._closing = True
        self.close()

    def shutdown(self, timeout_ms: int = SHUTDOWN_WAIT_MS) -> bool:
        """Cancels every background job and waits (bounded) for the threads; closes the case."""
        idle = self.scans.shutdown(timeout_ms)
        idle = self.thumbnails.shutdown(timeout_ms) and idle
        idle = self.detail.shutdown(timeout_ms) and idle
        self.intake.cancel()
        self.exports.cancel()
        idle = QThreadPool.globalInstance().waitForDone(timeout_ms) and idle
        if not idle:
            log.warning("some background work was still running after %d ms; quitting anyway", timeout_ms)
        self.cases.close()
        return idle

    @property
    def threshold(self) -> float:
        return self.verdict_threshold.value

    # ------------------------------------------------------------------------ adding files
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if local_paths(event.mimeData()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = local_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.intake.add_paths(paths)

    # ------------------------------------------------------------------- clear
    def request_clear(self) -> None:
        self.cases.ask_unsaved("clear", self.clear_results)

    def clear_results(self) -> None:
        """Empties the list; an open case is closed with everything in it kept."""
        self.scans.cancel()
        self.cases.close()
        self.model.clear()
        self.intake.clear()
        self.thumbnails.clear()
        self.detail.set_annotations_enabled(False)
        self.detail.show_row(None, self.threshold)
        self.stability.clear()

    # ------------------------------------------------------------------- detail & summary
    def shown_row(self) -> ResultRow | None:
        """The row the detail pane shows (ResultsView.shown_index), or None."""
        index = self.table.shown_index()
        return index.data(ROW_ROLE) if index.isValid() else None

    def _rows_changed(self, top, bottom, roles=()) -> None:
        index = self.table.shown_index()
        if index.isValid() and top.row() <= self.proxy.mapToSource(index).row() <= bottom.row():
            self.refresh_detail()

    def refresh_detail(self, force: bool = False) -> None:
        """Shows the current row; reloads the evidence only when the row or its state changed."""
        row = self.shown_row()
        self.stability_action.setEnabled(row is not None and row.state == OK and self.controller.session is not None)
        unchanged = row is not None and row.path == self.detail.current_path and row.state == self.detail.current_state
        if unchanged and row is not None and (not force or (row.state == OK and self.detail.evidence_shown)):
            self.detail.refresh_verdict(row, self.threshold)  # e.g. the threshold moved
            return
        selection = None if row is None else self.model.selections.get(row.path)
        self.detail.show_row(row, self.threshold, selection)
        self.stability.show()
        self.stability.check(automatic=True)

    def select_path(self, path: str) -> bool:
        return self.table.select_path(path)

    def update_export_actions(self) -> None:
        scanned = bool(self.model.scanned_results())
        self.export_action.setEnabled(scanned)
        self.export_report_action.setEnabled(scanned and not self.exports.exporting)

    def show_status(self, message: str) -> None:
        self.last_status = message
        self.progress_label.setText(message)

    # ------------------------------------------------------------------------ help
    def shortcut_list(self) -> list[tuple[str, str]]:
        return help_dialogs.shortcut_list(self.actions())

    def show_shortcuts(self) -> None:
        self.shortcuts_box = help_dialogs.open_box(self, "Keyboard shortcuts", help_dialogs.shortcuts_html(self.actions()),
                                                   lambda: setattr(self, "shortcuts_box", None))

    def about_text(self) -> str:
        return help_dialogs.about_html(self.controller, self.settings.device, self.threshold)

    def show_about(self) -> None:
        self.about_box = help_dialogs.open_box(self, "About DGS Desktop", self.about_text(),
                                               lambda: setattr(self, "about_box", None), self.windowIcon())
