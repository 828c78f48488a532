"""The main window: menus, drop zone, results table, summary + histogram, detail pane.

The window wires its parts together; the work lives in them: `ModelController` (libraries and
the active model), `ScanController` (the scan state machine, on its own thread pool),
`ResultsModel` (rows), `DetailPane` (evidence viewer) and `dgs_desktop.case.Case` (the case
file, saved as results arrive).
"""

from __future__ import annotations

import logging
import os

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QRect, QSize, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QSplitter,
    QTableView,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from ..scan.discover import IMAGE_SUFFIXES
from ..verdict import RULE_TEXT
from . import help_dialogs
from .case_controller import CaseController
from .detail_pane import DetailPane
from .dialogs import show_error
from .export_controller import ExportController
from .histogram import ProbabilityHistogram
from .model_banner import ModelBanner
from .model_controller import READY, ModelController, model_warning
from .provenance_tab import ProvenanceTab
from .results_model import (
    NAME_COL,
    NOT_SCANNED,
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
from .settings import AppSettings
from .threshold import Threshold, ThresholdControl
from .thumbnails import THUMBNAIL_SIZE, ThumbnailProvider
from .window_actions import build_actions, build_menus, connect_actions, toolbar_actions
from .workers import Task, discover_files, start_task

log = logging.getLogger(__name__)

IMAGE_FILTER = f"Images ({' '.join('*' + s for s in sorted(IMAGE_SUFFIXES))});;All files (*)"
SHUTDOWN_WAIT_MS = 3000
DEFAULT_SIZE = QSize(1280, 800)


def fit_to_screen(frame: QRect, available: QRect) -> QRect:
    """`frame` made no larger than `available` and moved inside it (a window saved on a larger
    screen, or the default size on a 1024x768 one, opens whole instead of clipped)."""
    width, height = min(frame.width(), available.width()), min(frame.height(), available.height())
    left = min(max(frame.left(), available.left()), available.right() + 1 - width)
    top = min(max(frame.top(), available.top()), available.bottom() + 1 - height)
    return QRect(left, top, width, height)


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"about {max(1, round(seconds))} s left"
    if seconds < 3600:
        return f"about {seconds / 60:.0f} min left"
    return f"about {seconds / 3600:.1f} h left"


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
    files_added = Signal(int)  # number of new rows, after every add (0 when all were listed)

    def __init__(self, settings: AppSettings | None = None, controller: ModelController | None = None):
        super().__init__()
        self.settings = settings or AppSettings()
        self.controller = controller or ModelController(self)
        self.setAcceptDrops(True)
        self._jobs: set = set()
        self._model_dialog = None
        self._closing = False
        self.last_status = ""
        self.verdict_threshold = Threshold(self)
        self._fitted_to_screen = False
        self.scanned_folders: set[str] = set()  # the folders the analyst added (the evidence)
        self.stabilities: dict = {}  # path -> Stability of this session's checks
        self._stability_pending: set[str] = set()
        self.about_box: QMessageBox | None = None
        self.shortcuts_box: QMessageBox | None = None
        self.rescore_box: QMessageBox | None = None

        self.thumbnails = ThumbnailProvider(THUMBNAIL_SIZE, parent=self)
        self.model = ResultsModel(self.thumbnails, self)
        self.verdict_threshold.changed.connect(self._threshold_changed)
        self.proxy = ResultsFilter(self)
        self.proxy.setSourceModel(self.model)
        self.scans = ScanController(self.model, self)
        self.cases = CaseController(self)
        self.cases.changed.connect(self._update_title)
        build_actions(self)
        for action in (self.cancel_action, self.resume_action, self.stability_action):
            action.setEnabled(False)  # until there is a scan to cancel, a file left, a scored row
        self._build_ui()
        build_menus(self)
        self.exports = ExportController(self)
        self.provenance = ProvenanceTab(self)
        connect_actions(self, self._action_triggers())
        self._summary_timer = QTimer(self, singleShot=True, interval=150, timeout=self._refresh_summary)
        self.model.dataChanged.connect(self._schedule_summary)
        self.model.dataChanged.connect(self._rows_changed)
        self.model.rowsInserted.connect(self._schedule_summary)
        self.model.modelReset.connect(self._schedule_summary)

        self.scans.started.connect(self._scan_started)
        self.scans.progress.connect(self._scan_progress)
        self.scans.failed.connect(lambda message: show_error(self, "Scan stopped", f"The scan stopped: {message}"))
        self.scans.cancelled.connect(self._scan_cancelled)
        self.scans.stopped.connect(self._scan_stopped)
        self.scans.idle.connect(self._scans_idle)

        self.controller.state_changed.connect(self._model_state_changed)
        self.controller.session_changed.connect(self._session_changed)
        self.controller.load_failed.connect(self._model_load_failed)
        self._restore_settings()
        self._model_state_changed(self.controller.state, "Loading the detector libraries…")
        self._update_title()
        self._refresh_summary()

    # ---------------------------------------------------------------------------------- UI
    def _action_triggers(self) -> dict:
        """What each action of window_actions does."""
        view = self.detail.image_view
        return {
            "add_files_action": self.choose_files, "add_folder_action": self.choose_folder,
            "cancel_action": self.cancel_scan, "resume_action": self.scan_remaining,
            "save_case_action": self.cases.choose_save, "open_case_action": self.cases.choose_open,
            "case_details_action": self.cases.edit_details,
            "export_action": self.exports.choose_csv, "export_report_action": self.exports.choose_report,
            "copy_action": self.exports.copy_selected_rows, "clear_action": self.request_clear, "quit_action": self.close,
            "model_action": self.open_model_manager, "load_folder_action": self.choose_checkpoint_folder,
            "calibration_action": self.open_calibration, "stability_action": self.check_stability,
            "zoom_in_action": view.zoom_in, "zoom_out_action": view.zoom_out, "fit_action": view.fit,
            "actual_size_action": view.actual_size, "focus_table_action": self.table.setFocus,
            "focus_filter_action": self.text_filter.setFocus, "focus_threshold_action": self.threshold_spin.setFocus,
            "shortcuts_action": self.show_shortcuts, "about_action": self.show_about,
        }

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.recent_models
        for spec in recent:
            self.recent_menu.addAction(spec, lambda checked=False, s=spec: self.load_model(s))
        if not recent:
            self.recent_menu.addAction("(none yet)").setEnabled(False)

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
        self.detail.stability_requested.connect(lambda path: self.check_stability())
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

        self.progress = QProgressBar()
        self.progress.setMaximumWidth(200)
        self.progress.setVisible(False)
        self.progress_label = QLabel()
        self.counts_label = QLabel()
        self.counts_label.setToolTip(f"Counts at the current threshold ({RULE_TEXT})")
        self.model_label = QLabel()
        self.statusBar().addWidget(self.progress)
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
        for job in list(self._jobs):
            job.cancel()
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
        self._show_stability()
        self._schedule_summary()

    @property
    def threshold(self) -> float:
        return self.verdict_threshold.value

    # ------------------------------------------------------------------------ model state
    def _model_state_changed(self, state: str, message: str) -> None:
        self.banner.show_state(state, message)
        self.model_label.setText(message if state == READY else state.capitalize())
        self.model_label.setToolTip(message)

    def _session_changed(self, session) -> None:
        self.settings.active_model = session.spec
        self.settings.remember_model(session.spec)
        self._fill_recent_menu()
        warning = model_warning(session.checkpoint)
        self.model_warning.setText(f"⚠ {warning}" if warning else "")
        self.model_warning.setVisible(bool(warning))
        if warning:
            self.model_label.setText(f"⚠ {self.model_label.text()}")
        if self.model.calibration is not None and self.model.calibration.checkpoint_sha256 != session.checkpoint.sha256:
            self.model.set_calibration(None)  # a calibration belongs to the model it was made with
            self.cases.calibration_sha256 = ""
            self.show_status("Calibration cleared: it was made with another model.")
        scored_by_others = [row for row in self.model.rows
                            if row.result is not None and row.checkpoint_sha256 != session.checkpoint.sha256]
        if self.cases.case is not None and scored_by_others:
            self.ask_rescore(session, len(scored_by_others))  # nothing in the case changes before the answer
            return
        self._use_session(session)

    def ask_rescore(self, session, count: int) -> None:
        """Another model was loaded over a case scored by a different one: the analyst decides
        whether it scores the files again (the stored scores stay in the case's history)."""
        info = self.cases.case.info()
        box = QMessageBox(QMessageBox.Icon.Question, "Re-score the case with another model?",
                          f"{count} file(s) in case {self.cases.name} were scored by another model "
                          f"({info.checkpoint or info.checkpoint_sha256[:12]}). Scoring them with {session.spec} "
                          f"makes its scores and threshold the case's current ones; the stored scores stay in the "
                          "case's history (shown in the report).",
                          QMessageBox.StandardButton.NoButton, self)
        keep = box.addButton("Keep the stored scores", QMessageBox.ButtonRole.RejectRole)
        rescore = box.addButton("Re-score with this model", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(keep)
        box.setEscapeButton(keep)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def answered(*_):
            self.rescore_box = None
            if box.clickedButton() is rescore:
                self.cases.log("re-score", f"chose to re-score {count} file(s) with {session.spec} (scored by "
                               f"{info.checkpoint or info.checkpoint_sha256})")
                self._use_session(session)
            elif info.checkpoint:  # back to the model that made the stored scores
                self.cases.log("kept scores", f"kept the stored scores of {info.checkpoint} instead of re-scoring "
                               f"with {session.spec}")
                self.show_status(f"Kept the stored scores; loading their model {info.checkpoint} again.")
                self.load_model(info.checkpoint)

        box.finished.connect(answered)
        self.rescore_box = box
        box.open()

    def _use_session(self, session) -> None:
        case_threshold = self.cases.model_changed(session)
        stored = self.settings.threshold_for(session.checkpoint.sha256)
        self.verdict_threshold.set_reference(session.checkpoint.threshold, "model")
        self.verdict_threshold.set(case_threshold if case_threshold is not None
                                   else session.checkpoint.threshold if stored is None else stored,
                                   why="the case's value for this model" if case_threshold is not None
                                   else "the model's value" if stored is None else "your saved value for this model")
        if self.verdict_threshold.differs:  # never silently: say where the threshold came from
            origin = "the case's" if case_threshold is not None else "your saved"
            self.show_status(f"Threshold {self.threshold:.3f} is {origin} value for this model; the model's own is "
                             f"{session.checkpoint.threshold:.3f} (Reset beside the threshold).")
        # Rows another model scored are scanned again so the table and exports never mix models.
        self.model.selections.clear()
        self.scans.set_scanner(session.scanner, session.checkpoint.sha256, session.scored_on, session.spec)
        self._refresh_detail(force=True)

    def _model_load_failed(self, message: str) -> None:
        show_error(self, "Model not loaded", message)
        session = self.controller.session
        if session is not None:  # rows from another model (e.g. a reopened case) are re-scored
            self.scans.set_scanner(session.scanner, session.checkpoint.sha256, session.scored_on, session.spec)

    def load_model(self, spec, device: str | None = None, precision: str | None = None) -> None:
        device = device or self.settings.device
        precision = precision or self.settings.precision
        self.settings.device, self.settings.precision = device, precision
        self.controller.load(spec, device, precision)

    def choose_checkpoint_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a checkpoint folder", self.settings.last_folder)
        if folder:
            self.load_model(folder)

    def open_calibration(self) -> None:
        from .calibration_dialog import CalibrationDialog

        if getattr(self, "_calibration_dialog", None) is None:
            self._calibration_dialog = CalibrationDialog(self)
            self._calibration_dialog.calibration_chosen.connect(self.set_calibration)
        self._calibration_dialog.refresh()
        self._calibration_dialog.show()
        self._calibration_dialog.raise_()

    def set_calibration(self, calibration) -> None:
        """Uses `calibration`'s threshold and reference scores (None: back to the model's threshold)."""
        self.model.set_calibration(calibration)
        self.cases.calibration_sha256 = "" if calibration is None else calibration.sha256
        session = self.controller.session
        if calibration is not None:
            self.cases.log("calibration", f"calibration sha256 {calibration.sha256} loaded: {calibration.summary()}",
                           calibration_sha256=calibration.sha256)
            self.verdict_threshold.set_reference(calibration.threshold, "calibration")
            self.verdict_threshold.set(calibration.threshold, exact=True, why="the calibration's")
            warning = calibration.warning()
            self.show_status(f"Calibration loaded: {calibration.summary()}" + (f" ⚠ {warning}" if warning else ""))
        elif session is not None:
            self.cases.log("calibration", "calibration cleared")
            self.verdict_threshold.set_reference(session.checkpoint.threshold, "model")
            self.verdict_threshold.set(session.checkpoint.threshold, why="the model's value (calibration cleared)")
            self.show_status("Calibration cleared: the model's threshold applies.")
        if getattr(self, "_calibration_dialog", None) is not None:
            self._calibration_dialog.refresh()

    def open_model_manager(self, focus: str = "") -> None:
        from .model_manager import ModelManagerDialog

        if self._model_dialog is None:
            self._model_dialog = ModelManagerDialog(self.controller, self.settings, self)
            self._model_dialog.load_requested.connect(self.load_model)
        self._model_dialog.show_section(focus if isinstance(focus, str) else "")
        self._model_dialog.show()
        self._model_dialog.raise_()
        self._model_dialog.activateWindow()

    # ------------------------------------------------------------------------ adding files
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)

    def choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add images", self.settings.last_folder, IMAGE_FILTER)
        if files:
            self.settings.last_folder = os.path.dirname(files[0])
            self.add_paths(files)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder (scanned with its subfolders)",
                                                  self.settings.last_folder)
        if folder:
            self.settings.last_folder = folder
            self.add_paths([folder])

    def add_paths(self, paths: list[str]) -> None:
        """Finds the files under `paths` off the GUI thread, lists the new ones and scans them."""
        self.progress_label.setText("Looking for files…")
        for path in paths:
            path = os.path.abspath(os.path.expanduser(str(path)))
            self.scanned_folders.add(path if os.path.isdir(path) else os.path.dirname(path))
        task = Task(discover_files, [str(p) for p in paths])
        task.signals.succeeded.connect(self._files_found)
        task.signals.failed.connect(self._discovery_failed)
        start_task(task, self._jobs, owner=self)

    def _discovery_failed(self, message: str) -> None:
        show_error(self, "Cannot add files", message)
        self.files_added.emit(0)

    def _files_found(self, files: list) -> None:
        new = self.model.add_files(files)
        skipped = len(files) - len(new)
        note = f" ({skipped} already listed)" if skipped else ""
        self.show_status(f"Added {len(new)} file(s){note}.")
        self.cases.files_added(new)
        if new and self.table.currentIndex().row() < 0:
            self.table.selectRow(0)
        self.files_added.emit(len(new))
        self.scans.start_next()

    # ----------------------------------------------------------------------------- scanning
    @property
    def scanning(self) -> bool:
        return self.scans.scanning

    def _scan_started(self, count: int) -> None:
        self.progress.setRange(0, count)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.progress_label.setText(f"Scanning {count} file(s)…")
        self.cancel_action.setEnabled(True)
        self.resume_action.setEnabled(False)

    def _scan_progress(self, status) -> None:
        self.progress.setValue(status.done)
        failed = f" · {status.failed} failed" if status.failed else ""
        self.progress_label.setText(f"{status.done} / {status.total} images · {status.rate:.1f} images/s · "
                                    f"{format_eta(status.eta_s)}{failed}")

    def _scan_cancelled(self, done: int, total: int, left: int) -> None:
        self.progress.setVisible(False)
        self.cancel_action.setEnabled(False)
        self.show_status(f"Cancelled: {done} of {total} scanned; {left} not scanned (Scan remaining: Ctrl+R).")

    def _scan_stopped(self, cancelled: bool) -> None:
        self.progress.setVisible(False)
        self.cancel_action.setEnabled(False)
        # Counts are in the status bar's right corner, where they follow the threshold.
        self.show_status(f"Scan finished: {len(self.model.rows)} file(s) listed.")

    def _scans_idle(self, cancelled: bool) -> None:
        self.resume_action.setEnabled(bool(self.model.paths_in_state(NOT_SCANNED)))
        self._refresh_summary()
        self.scan_finished.emit(cancelled)

    def cancel_scan(self) -> None:
        self.scans.cancel()

    def scan_remaining(self) -> None:
        self.resume_action.setEnabled(False)
        self.scans.scan_remaining()

    # ------------------------------------------------------------------- clear
    def request_clear(self) -> None:
        self.cases.ask_unsaved("clear", self.clear_results)

    def clear_results(self) -> None:
        """Empties the list; an open case is closed with everything in it kept."""
        self.scans.cancel()
        self.cases.close()
        self.model.clear()
        self.scanned_folders.clear()
        self.thumbnails.clear()
        self.detail.set_annotations_enabled(False)
        self.detail.show_row(None, self.threshold)
        self.stabilities.clear()

    def evidence_folders(self) -> set[str]:
        """Every scanned folder: those added and those holding a listed file. Save dialogs
        open outside them and warn before writing inside (output_place)."""
        return self.scanned_folders | {row.folder for row in self.model.rows}

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
        self._refresh_detail()

    def _rows_changed(self, top: QModelIndex, bottom: QModelIndex, roles=()) -> None:
        index = self._shown_index()
        if index.isValid() and top.row() <= self.proxy.mapToSource(index).row() <= bottom.row():
            self._refresh_detail()

    def _refresh_detail(self, force: bool = False) -> None:
        """Shows the current row; reloads the evidence only when the row or its state changed."""
        row = self.shown_row()
        self.stability_action.setEnabled(row is not None and row.state == OK and self.controller.session is not None)
        unchanged = row is not None and row.path == self.detail.current_path and row.state == self.detail.current_state
        if unchanged and (not force or (row.state == OK and self.detail.evidence_shown)):
            self.detail.refresh_verdict(row, self.threshold)  # e.g. the threshold moved
            return
        selection = None if row is None else self.model.selections.get(row.path)
        self.detail.show_row(row, self.threshold, selection)
        self._show_stability()
        self.check_stability(automatic=True)

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

    def _refresh_summary(self) -> None:
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

    # ----------------------------------------------------------------------- stability
    def check_stability(self, automatic: bool = False) -> None:
        """Scores the shown image's patches in 8 other orders (after the scan's batches) and
        stores the spread in its record, so an unstable verdict says so. The detail view runs
        it by itself for every scored image it shows (`automatic`); a check queued for an
        image no longer shown is dropped before it costs anything."""
        from ..stability import file_stability

        row, session = self.shown_row(), self.controller.session
        if row is None or row.state != OK or session is None or row.path in self._stability_pending:
            return
        if automatic and row.result.stability_orders is not None:
            return
        path, sha256, reference = row.path, row.result.sha256, row.probability
        self._stability_pending.add(path)
        self.detail.show_stability(path, "Scoring 8 other patch orders…")
        self.detail.stability_button.setEnabled(False)
        dropped = (lambda: self.detail.current_path != path) if automatic else None
        task = Task(file_stability, path, sha256, reference, session.scanner.runner.score, cancelled=dropped)
        task.signals.succeeded.connect(lambda stability: self._stability_done(path, sha256, stability))
        task.signals.failed.connect(lambda message: self._stability_failed(path, message))
        task.signals.finished.connect(lambda: self._stability_pending.discard(path))
        self.scans.run_task(task)

    def _stability_done(self, path: str, sha256: str, stability) -> None:
        self._stability_pending.discard(path)
        if self.model.set_stability(path, stability, sha256):
            self.stabilities[path] = stability
            self.cases.results_scanned([self.model.row_for_path(path).result], self.controller.session,
                                       scanned=False)
        self._show_stability()

    def _stability_failed(self, path: str, message: str) -> None:
        self._stability_pending.discard(path)
        self.detail.show_stability(path, "" if message == "cancelled" else f"Stability check failed: {message}")

    def _show_stability(self) -> None:
        from ..stability import spread_summary

        row = self.shown_row()
        if row is None or row.state != OK or row.path in self._stability_pending:
            return
        stability = self.stabilities.get(row.path)
        text = stability.summary(self.threshold) if stability is not None else spread_summary(row.result, self.threshold)
        self.detail.show_stability(row.path, text)

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
