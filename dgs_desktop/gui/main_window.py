"""The main window: menus, drop zone, results table, summary + histogram, detail pane.

The window wires its parts together; the work lives in them: `ModelController` (libraries and
the active model), `ScanController` (the scan state machine, on its own thread pool),
`ResultsModel` (rows), `DetailPane` (evidence viewer) and `dgs_desktop.case.Case` (the case
file, saved as results arrive).
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QRect, QSize, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QTableView,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from ..verdict import RULE_TEXT
from . import help_dialogs
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
from .results_model import (
    NAME_COL,
    OK,
    PROB_COL,
    ROW_ROLE,
    STATUS_COL,
    THUMB_COL,
    VERDICT_COL,
    VERDICT_FILTERS,
    ResultRow,
    ResultsFilter,
    ResultsModel,
)
from .scan_controller import ScanController
from .scan_progress import ScanProgress
from .settings import AppSettings
from .stability_checks import StabilityChecks
from .threshold import Threshold, ThresholdControl
from .thumbnails import THUMBNAIL_SIZE, ThumbnailProvider
from .window_actions import build_actions, build_menus, connect_actions, toolbar_actions

log = logging.getLogger(__name__)

SHUTDOWN_WAIT_MS = 3000
DEFAULT_SIZE = QSize(1280, 800)


def fit_to_screen(frame: QRect, available: QRect) -> QRect:
    """`frame` made no larger than `available` and moved inside it (a window saved on a larger
    screen, or the default size on a 1024x768 one, opens whole instead of clipped)."""
    width, height = min(frame.width(), available.width()), min(frame.height(), available.height())
    left = min(max(frame.left(), available.left()), available.right() + 1 - width)
    top = min(max(frame.top(), available.top()), available.bottom() + 1 - height)
    return QRect(left, top, width, height)


class ResultsView(QTableView):
    """The table; when empty it says where to drop files. Tab moves on to the next widget."""

    def paintEvent(self, event) -> None:  # noqa: N802
        super().paintEvent(event)
        if self.model() is not None and self.model().rowCount() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             "Drop images or folders anywhere on this window\n"
                             "or use Add files / Add folder (Ctrl+O, Ctrl+Shift+O).")
            painter.end()


class MainWindow(QMainWindow):
    scan_finished = Signal(bool)  # cancelled; emitted when no scan runs and nothing waits

    def __init__(self, settings: AppSettings | None = None, controller: ModelController | None = None):
        super().__init__()
        self.settings = settings or AppSettings()
        self.controller = controller or ModelController(self)
        self.setAcceptDrops(True)
        self._closing = False
        self.last_status = ""
        self.verdict_threshold = Threshold(self)
        self._fitted_to_screen = False
        self.about_box: QMessageBox | None = None
        self.shortcuts_box: QMessageBox | None = None

        self.thumbnails = ThumbnailProvider(THUMBNAIL_SIZE, parent=self)
        self.model = ResultsModel(self.thumbnails, self)
        self.verdict_threshold.changed.connect(self._threshold_changed)
        self.proxy = ResultsFilter(self)
        self.proxy.setSourceModel(self.model)
        self.scans = ScanController(self.model, self)
        self.cases = CaseController(self)
        self.cases.changed.connect(self._update_title)
        build_actions(self)
        self.stability_action.setEnabled(False)  # until a scored row is shown
        self.intake = FileIntake(self)
        self.scan_progress = ScanProgress(self)
        self.scan_progress.finished.connect(self.scan_finished)
        self._build_ui()
        self.models = ModelFlow(self)
        self.stability = StabilityChecks(self)
        build_menus(self)
        self.exports = ExportController(self)
        self.provenance = ProvenanceTab(self)
        connect_actions(self, self._action_triggers())
        self._summary_timer = QTimer(self, singleShot=True, interval=150, timeout=self.refresh_summary)
        self.model.dataChanged.connect(self._schedule_summary)
        self.model.dataChanged.connect(self._rows_changed)
        self.model.rowsInserted.connect(self._schedule_summary)
        self.model.modelReset.connect(self._schedule_summary)

        self.scans.failed.connect(lambda message: show_error(self, "Scan stopped", f"The scan stopped: {message}"))

        self._restore_settings()
        self._update_title()
        self.refresh_summary()

    # ---------------------------------------------------------------------------------- UI
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
        self.model_warning.setStyleSheet("background: #fff3e0; color: #bf360c; border: 1px solid #ffb74d; "
                                         "padding: 4px 8px; font-weight: bold")
        self.model_warning.setVisible(False)

        self.verdict_filter = QComboBox()
        self.verdict_filter.addItems(VERDICT_FILTERS)
        self.verdict_filter.setToolTip("Show only rows with this verdict")
        self.verdict_filter.currentTextChanged.connect(self.proxy.set_verdict_filter)
        self.text_filter = QLineEdit()
        self.text_filter.setPlaceholderText("Filter by name or folder…")
        self.text_filter.setClearButtonEnabled(True)
        self.text_filter.setToolTip("Show only files whose path contains this text")
        self.text_filter.setMinimumWidth(100)
        self.text_filter.textChanged.connect(self.proxy.set_text_filter)
        filters = QHBoxLayout()
        filters.addWidget(QLabel("Show:"))
        filters.addWidget(self.verdict_filter)
        filters.addWidget(self.text_filter, 1)
        self.threshold_control = ThresholdControl(self.verdict_threshold)
        self.threshold_spin = self.threshold_control.spin  # Ctrl+H's target
        filters.addWidget(self.threshold_control)  # beside the table: never in an overflow menu

        self.table = ResultsView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # input order until the user sorts
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setTabKeyNavigation(False)  # Tab leaves the table; arrows move between rows
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setIconSize(QSize(THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(THUMBNAIL_SIZE + 6)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for column, width in ((THUMB_COL, THUMBNAIL_SIZE + 12), (NAME_COL, 170), (2, 140), (PROB_COL, 70),
                              (VERDICT_COL, 64), (STATUS_COL, 120)):
            header.resizeSection(column, width)
        self.table.selectionModel().currentRowChanged.connect(self._current_row_changed)
        self.table.selectionModel().selectionChanged.connect(self._current_row_changed)

        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setToolTip(f"Counts per verdict at the current threshold ({RULE_TEXT})")
        self.histogram = ProbabilityHistogram()

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(6, 6, 0, 6)
        left_layout.addLayout(filters)
        left_layout.addWidget(self.table, 1)
        left_layout.addWidget(self.summary)
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
        self.counts_label = QLabel()
        self.counts_label.setToolTip(f"Counts at the current threshold ({RULE_TEXT})")
        self.model_label = QLabel()
        self.statusBar().addWidget(self.scan_progress.bar)
        self.statusBar().addWidget(self.progress_label, 1)
        self.statusBar().addPermanentWidget(self.counts_label)
        self.statusBar().addPermanentWidget(self.model_label)

    def _update_title(self) -> None:
        case = f" — case {self.cases.name}" if self.cases.case is not None else ""
        unsaved = " (unsaved results)" if self.cases.unsaved else ""
        self.setWindowTitle(f"DGS Desktop — is this image AI-generated?{case}{unsaved}")

    # ------------------------------------------------------------------------- settings
    def _restore_settings(self) -> None:
        geometry = self.settings.geometry("main")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(DEFAULT_SIZE)
        self.fit_screen()
        splitter = self.settings.geometry("splitter")
        if splitter is not None:
            self.splitter.restoreState(splitter)

    def available_geometry(self) -> QRect:
        screen = self.screen() or QGuiApplication.primaryScreen()
        return screen.availableGeometry()

    def fit_screen(self) -> None:
        """Keeps the whole window, frame included, on the screen's available area."""
        if self.isMaximized() or self.isFullScreen():
            return
        frame, inner = self.frameGeometry(), self.geometry()
        margins = QSize(frame.width() - inner.width(), frame.height() - inner.height())  # title bar, borders
        fitted = fit_to_screen(frame, self.available_geometry())
        if fitted != frame:
            self.resize(fitted.size() - margins)
            self.move(fitted.topLeft())

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if not self._fitted_to_screen:  # on the screen it opens on (it may not be the primary one)
            self._fitted_to_screen = True
            self.fit_screen()

    def closeEvent(self, event) -> None:  # noqa: N802
        if not self._closing and self.cases.unsaved:
            event.ignore()
            self.cases.ask_unsaved("quit", self._confirmed_close)
            return
        self.settings.set_geometry("main", self.saveGeometry())
        self.settings.set_geometry("splitter", self.splitter.saveState())
        self.settings.sync()
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
        idle = QThreadPool.globalInstance().waitForDone(timeout_ms) and idle
        if not idle:
            log.warning("some background work was still running after %d ms; quitting anyway", timeout_ms)
        self.cases.close()
        return idle

    # ------------------------------------------------------------------------ threshold
    def _threshold_changed(self, threshold: float, why: str) -> None:
        self.model.set_threshold(threshold)
        self.histogram.set_threshold(threshold)
        self.detail.refresh_verdict(self.shown_row(), threshold)
        session = self.controller.session
        if session is not None:  # remembered per model, unless it is the model's own
            default = session.checkpoint.threshold
            self.settings.set_threshold_for(session.checkpoint.sha256,
                                            None if abs(threshold - default) < 1e-9 else threshold)
        self._schedule_summary()

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
    def _shown_index(self) -> QModelIndex:
        """The row the detail pane shows: the current row when it is selected, else the first
        selected row, else none. A row that is not selected (deselected, or made current by a
        filter that hid the selected one) is never shown."""
        selection = self.table.selectionModel()
        index = self.table.currentIndex()
        if index.isValid() and selection.isRowSelected(index.row(), index.parent()):
            return index
        rows = sorted(selection.selectedRows(), key=lambda i: i.row())
        return rows[0] if rows else QModelIndex()

    def shown_row(self) -> ResultRow | None:
        index = self._shown_index()
        return index.data(ROW_ROLE) if index.isValid() else None

    def _current_row_changed(self, *args) -> None:
        # Both the selection and the current row signal one click: the same row is loaded once.
        self.refresh_detail()

    def _rows_changed(self, top: QModelIndex, bottom: QModelIndex, roles=()) -> None:
        index = self._shown_index()
        if index.isValid() and top.row() <= self.proxy.mapToSource(index).row() <= bottom.row():
            self.refresh_detail()

    def refresh_detail(self, force: bool = False) -> None:
        """Shows the current row; reloads the evidence only when the row or its state changed."""
        row = self.shown_row()
        self.stability_action.setEnabled(row is not None and row.state == OK and self.controller.session is not None)
        unchanged = row is not None and row.path == self.detail.current_path and row.state == self.detail.current_state
        if unchanged and (not force or (row.state == OK and self.detail.evidence_shown)):
            self.detail.refresh_verdict(row, self.threshold)  # e.g. the threshold moved
            return
        selection = None if row is None else self.model.selections.get(row.path)
        self.detail.show_row(row, self.threshold, selection)
        self.stability.show()
        self.stability.check(automatic=True)

    def select_path(self, path: str) -> bool:
        for proxy_row in range(self.proxy.rowCount()):
            index = self.proxy.index(proxy_row, NAME_COL)
            if index.data(ROW_ROLE).path == path:
                self.table.selectionModel().setCurrentIndex(
                    index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
                return True
        return False

    def _schedule_summary(self, *args) -> None:
        if not self._summary_timer.isActive():
            self._summary_timer.start()

    def refresh_summary(self) -> None:
        counts = self.model.counts()
        if not counts["total"]:
            self.summary.setText("No files yet.")
            self.counts_label.setText("")
        else:
            duplicates = sum(1 for row in self.model.rows if row.duplicate_of)
            warned = sum(1 for row in self.model.rows if row.warning and row.state == OK)
            extra = (f" · {duplicates} duplicate(s)" if duplicates else "") + (f" · ⚠ {warned} less reliable"
                                                                                  if warned else "")
            self.summary.setText(
                f"{counts['total']} file(s): <b style='color:#c62828'>{counts['fake']} fake</b>, "
                f"<b style='color:#2e7d32'>{counts['real']} real</b>, "
                f"<b style='color:#6a1b9a'>{counts['inconclusive']} inconclusive</b>, {counts['failed']} failed, "
                f"{counts['pending']} not scored · threshold {self.threshold:.3f}{extra}")
            self.counts_label.setText(f"{counts['fake']} fake · {counts['real']} real · "
                                      f"{counts['inconclusive']} inconclusive · {counts['failed']} failed"
                                      + (f" · {counts['pending']} waiting" if counts["pending"] else ""))
        self.histogram.set_values(self.model.probabilities())
        self.update_export_actions()

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
