"""The main window: drop zone, results table, summary + histogram, detail pane, scan control."""

from __future__ import annotations

import csv
import io
import os

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSplitter,
    QStyle,
    QTableView,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from .detail_pane import DetailPane
from .dialogs import show_error
from .histogram import ProbabilityHistogram
from .model_controller import FAILED, LOADING_LIBRARIES, LOADING_MODEL, NO_MODEL, READY, ModelController
from .results_model import (
    NAME_COL,
    NOT_SCANNED,
    PROB_COL,
    QUEUED,
    ROW_ROLE,
    SCANNING,
    STATUS_COL,
    THUMB_COL,
    VERDICT_COL,
    VERDICT_FILTERS,
    ResultsFilter,
    ResultsModel,
)
from .settings import AppSettings
from .thumbnails import THUMBNAIL_SIZE, ThumbnailProvider
from .workers import ScanWorker, Task, discover_files, shared_pool, start_task

IMAGE_FILTER = ("Images (*.jpg *.jpeg *.png *.webp *.bmp *.gif *.tif *.tiff *.heic *.avif *.jfif *.ppm);;"
                "All files (*)")


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"about {max(1, round(seconds))} s left"
    if seconds < 3600:
        return f"about {seconds / 60:.0f} min left"
    return f"about {seconds / 3600:.1f} h left"


class ResultsView(QTableView):
    """The table; when empty it says where to drop files."""

    def paintEvent(self, event) -> None:  # noqa: N802
        super().paintEvent(event)
        if self.model() is not None and self.model().rowCount() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter,
                             "Drop images or folders anywhere on this window\n"
                             "or use Add files / Add folder (Ctrl+O, Ctrl+Shift+O).")
            painter.end()


class ModelBanner(QFrame):
    """Says what the model is doing; with no model, the three ways to get one."""

    def __init__(self, window: MainWindow):
        super().__init__(window)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName("modelBanner")
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.RichText)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(160)
        self.load_button = QPushButton("Load checkpoint folder…")
        self.load_button.setToolTip("A folder with dgs_checkpoint.json, e.g. made by dgs-desktop-train")
        self.import_button = QPushButton("Import authors' weights (.pth)…")
        self.import_button.setToolTip("Convert the DGS-Net authors' released model_epoch_step2.pth (never unpickled)")
        self.hub_button = QPushButton("Download from the hub…")
        self.hub_button.setToolTip("Download a lab's checkpoint from the Hugging Face hub by repo id and revision")
        self.load_button.clicked.connect(window.choose_checkpoint_folder)
        self.import_button.clicked.connect(lambda: window.open_model_manager("import"))
        self.hub_button.clicked.connect(lambda: window.open_model_manager("hub"))
        buttons = QHBoxLayout()
        for button in (self.load_button, self.import_button, self.hub_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        top = QHBoxLayout()
        top.addWidget(self.busy)
        top.addWidget(self.message, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(buttons)
        self._buttons = (self.load_button, self.import_button, self.hub_button)

    def show_state(self, state: str, message: str) -> None:
        self.busy.setVisible(state in (LOADING_LIBRARIES, LOADING_MODEL))
        needs_model = state in (NO_MODEL, FAILED)
        for button in self._buttons:
            button.setVisible(needs_model)
        if state == NO_MODEL:
            detail = "" if message == "No model loaded." else f"<br><span style='color:#b71c1c'>{message}</span>"
            self.message.setText(
                "<b>No detector model yet.</b> Get one in one of three ways: load a checkpoint folder "
                "(for example one trained with <code>dgs-desktop-train</code>), import the DGS-Net authors' "
                "released weights, or download a lab's checkpoint from the Hugging Face hub. "
                "Files you add now are scanned as soon as a model is ready." + detail)
        else:
            self.message.setText(message)
        self.setVisible(state != READY)


class MainWindow(QMainWindow):
    scan_finished = Signal(bool)  # cancelled; emitted when no scan runs and nothing waits

    def __init__(self, settings: AppSettings | None = None, controller: ModelController | None = None):
        super().__init__()
        self.settings = settings or AppSettings()
        self.controller = controller or ModelController(self)
        self.setWindowTitle("DGS Desktop — is this image AI-generated?")
        self.setAcceptDrops(True)
        self._jobs: set = set()
        self._scan_worker: ScanWorker | None = None
        self._scan_id = 0
        self._scan_total = 0
        self._scan_done = 0
        self._model_dialog = None
        self.last_status = ""

        self.thumbnails = ThumbnailProvider(THUMBNAIL_SIZE, parent=self)
        self.model = ResultsModel(self.thumbnails, self)
        self.proxy = ResultsFilter(self)
        self.proxy.setSourceModel(self.model)
        self._build_actions()
        self._build_ui()
        self._summary_timer = QTimer(self, singleShot=True, interval=150, timeout=self._refresh_summary)
        self.model.dataChanged.connect(self._schedule_summary)
        self.model.rowsInserted.connect(self._schedule_summary)
        self.model.modelReset.connect(self._schedule_summary)

        self.controller.state_changed.connect(self._model_state_changed)
        self.controller.session_changed.connect(self._session_changed)
        self.controller.load_failed.connect(lambda message: show_error(self, "Model not loaded", message))
        self._restore_settings()
        self._model_state_changed(self.controller.state, "Loading the detector libraries…")
        self._refresh_summary()

    # ---------------------------------------------------------------------------------- UI
    def _action(self, text: str, slot, shortcut=None, tip: str = "", icon=None) -> QAction:
        action = QAction(text, self)
        if icon is not None:
            action.setIcon(self.style().standardIcon(icon))
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            tip = f"{tip} ({QKeySequence(shortcut).toString(QKeySequence.SequenceFormat.NativeText)})"
        action.setToolTip(tip)
        action.setStatusTip(tip)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        sp = QStyle.StandardPixmap
        self.add_files_action = self._action("Add files…", self.choose_files, QKeySequence.StandardKey.Open,
                                             "Add image files to scan", sp.SP_FileIcon)
        self.add_folder_action = self._action("Add folder…", self.choose_folder, "Ctrl+Shift+O",
                                              "Add every file in a folder and its subfolders", sp.SP_DirIcon)
        self.cancel_action = self._action("Cancel", self.cancel_scan, "Esc",
                                          "Stop the scan; results so far are kept", sp.SP_BrowserStop)
        self.resume_action = self._action("Scan remaining", self.scan_remaining, "Ctrl+R",
                                          "Scan the files a cancelled scan did not reach", sp.SP_MediaPlay)
        self.export_action = self._action("Export CSV…", self.choose_export, "Ctrl+E",
                                          "Save the results as CSV, the same columns as `dgs-desktop scan`",
                                          sp.SP_DialogSaveButton)
        self.copy_action = self._action("Copy rows", self.copy_selected_rows, QKeySequence.StandardKey.Copy,
                                        "Copy the selected rows as tab-separated text")
        self.clear_action = self._action("Clear", self.clear_results, None,
                                         "Remove all files from the list", sp.SP_DialogResetButton)
        self.model_action = self._action("Model…", self.open_model_manager, "Ctrl+M",
                                         "Load, import or download a model; choose the device", sp.SP_ComputerIcon)
        self.quit_action = self._action("Quit", self.close, QKeySequence.StandardKey.Quit, "Quit DGS Desktop")
        self.cancel_action.setEnabled(False)
        self.resume_action.setEnabled(False)

    def _build_ui(self) -> None:
        toolbar = QToolBar("Main", self)
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for action in (self.add_files_action, self.add_folder_action, None, self.cancel_action,
                       self.resume_action, None, self.export_action, self.clear_action, None, self.model_action):
            toolbar.addSeparator() if action is None else toolbar.addAction(action)
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        toolbar.addWidget(spacer)
        toolbar.addWidget(self._build_threshold_control())
        self.addToolBar(toolbar)

        self.banner = ModelBanner(self)

        self.verdict_filter = QComboBox()
        self.verdict_filter.addItems(VERDICT_FILTERS)
        self.verdict_filter.setToolTip("Show only rows with this verdict")
        self.verdict_filter.currentTextChanged.connect(self.proxy.set_verdict_filter)
        self.text_filter = QLineEdit()
        self.text_filter.setPlaceholderText("Filter by name or folder…")
        self.text_filter.setClearButtonEnabled(True)
        self.text_filter.setToolTip("Show only files whose path contains this text")
        self.text_filter.textChanged.connect(self.proxy.set_text_filter)
        filters = QHBoxLayout()
        filters.addWidget(QLabel("Show:"))
        filters.addWidget(self.verdict_filter)
        filters.addWidget(self.text_filter, 1)

        self.table = ResultsView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # input order until the user sorts
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setIconSize(QSize(THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(THUMBNAIL_SIZE + 6)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for column, width in ((THUMB_COL, THUMBNAIL_SIZE + 12), (NAME_COL, 190), (2, 180), (PROB_COL, 76),
                              (VERDICT_COL, 64), (STATUS_COL, 120)):
            header.resizeSection(column, width)
        self.table.selectionModel().currentRowChanged.connect(self._current_row_changed)

        self.summary = QLabel()
        self.summary.setToolTip("Counts per verdict at the current threshold")
        self.histogram = ProbabilityHistogram()

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(6, 6, 0, 6)
        left_layout.addLayout(filters)
        left_layout.addWidget(self.table, 1)
        left_layout.addWidget(self.summary)
        left_layout.addWidget(self.histogram)

        self.detail = DetailPane()
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setSizes([680, 520])

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.banner)
        layout.addWidget(self.splitter, 1)
        self.setCentralWidget(central)

        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.progress.setVisible(False)
        self.progress_label = QLabel()
        self.model_label = QLabel()
        self.statusBar().addWidget(self.progress)
        self.statusBar().addWidget(self.progress_label, 1)
        self.statusBar().addPermanentWidget(self.model_label)

    def _build_threshold_control(self) -> QWidget:
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(0, 1000)
        self.threshold_slider.setFixedWidth(140)
        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setRange(0.0, 1.0)
        self.threshold_spin.setDecimals(3)
        self.threshold_spin.setSingleStep(0.01)
        tip = "An image is called fake when P(fake) is at or above this threshold. Verdicts update at once."
        for widget in (self.threshold_slider, self.threshold_spin):
            widget.setToolTip(tip)
        self.threshold_slider.valueChanged.connect(lambda value: self.threshold_spin.setValue(value / 1000))
        self.threshold_spin.valueChanged.connect(self.set_threshold)
        box = QWidget()
        layout = QHBoxLayout(box)
        layout.setContentsMargins(8, 0, 8, 0)
        layout.addWidget(QLabel("Threshold:"))
        layout.addWidget(self.threshold_slider)
        layout.addWidget(self.threshold_spin)
        for widget, value in ((self.threshold_spin, 0.5), (self.threshold_slider, 500)):
            widget.blockSignals(True)
            widget.setValue(value)
            widget.blockSignals(False)
        return box

    # ------------------------------------------------------------------------- settings
    def _restore_settings(self) -> None:
        geometry = self.settings.geometry("main")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1280, 800)
        splitter = self.settings.geometry("splitter")
        if splitter is not None:
            self.splitter.restoreState(splitter)

    def closeEvent(self, event) -> None:  # noqa: N802
        self.settings.set_geometry("main", self.saveGeometry())
        self.settings.set_geometry("splitter", self.splitter.saveState())
        self.settings.sync()
        if self._scan_worker is not None:
            self._scan_worker.cancel()
        super().closeEvent(event)

    # ------------------------------------------------------------------------ threshold
    def set_threshold(self, threshold: float) -> None:
        threshold = round(float(threshold), 3)
        if abs(self.threshold_spin.value() - threshold) > 1e-9:
            self.threshold_spin.setValue(threshold)  # re-enters through valueChanged
            return
        self.threshold_slider.blockSignals(True)
        self.threshold_slider.setValue(round(threshold * 1000))
        self.threshold_slider.blockSignals(False)
        self.model.set_threshold(threshold)
        self.histogram.set_threshold(threshold)
        self.detail.refresh_verdict(self._current_row(), threshold)
        session = self.controller.session
        if session is not None:
            default = session.checkpoint.threshold
            self.settings.set_threshold_for(session.checkpoint.sha256,
                                            None if abs(threshold - default) < 1e-9 else threshold)
        self._schedule_summary()

    @property
    def threshold(self) -> float:
        return self.model.threshold

    # ------------------------------------------------------------------------ model state
    def _model_state_changed(self, state: str, message: str) -> None:
        self.banner.show_state(state, message)
        self.model_label.setText(message if state == READY else state.capitalize())
        self.model_label.setToolTip(message)

    def _session_changed(self, session) -> None:
        self.settings.active_model = session.spec
        self.settings.remember_model(session.spec)
        stored = self.settings.threshold_for(session.checkpoint.sha256)
        self.set_threshold(session.checkpoint.threshold if stored is None else stored)
        # Every row is re-scored with the new model so the table and exports never mix models.
        if self._scan_worker is not None:
            self._scan_worker.cancel()
            self._scan_id += 1
        self.model.selections.clear()
        self.model.set_state([row.path for row in self.model.rows], QUEUED)
        self._current_row_changed(self.table.currentIndex())
        self._start_next_scan()

    def load_model(self, spec, device: str | None = None) -> None:
        device = device or self.settings.device
        self.settings.device = device
        self.controller.load(spec, device)

    def choose_checkpoint_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a checkpoint folder", self.settings.last_folder)
        if folder:
            self.load_model(folder)

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
        task = Task(discover_files, [str(p) for p in paths])
        task.signals.succeeded.connect(self._files_found)
        task.signals.failed.connect(lambda message: show_error(self, "Cannot add files", message))
        start_task(task, self._jobs)

    def _files_found(self, files: list) -> None:
        new = self.model.add_files(files)
        skipped = len(files) - len(new)
        note = f" ({skipped} already listed)" if skipped else ""
        self._status(f"Added {len(new)} file(s){note}.")
        if new and self.table.currentIndex().row() < 0:
            self.table.selectRow(0)
        self._start_next_scan()

    # ----------------------------------------------------------------------------- scanning
    @property
    def scanning(self) -> bool:
        return self._scan_worker is not None

    def _start_next_scan(self) -> None:
        session = self.controller.session
        if self._scan_worker is not None or session is None:
            return
        paths = self.model.paths_in_state(QUEUED)
        if not paths:
            return
        self._scan_id += 1
        self._scan_total, self._scan_done = len(paths), 0
        self.model.set_state(paths, SCANNING)
        worker = ScanWorker(self._scan_id, session.scanner, paths)
        worker.signals.results.connect(self._scan_results)
        worker.signals.progress.connect(self._scan_progress)
        worker.signals.failed.connect(self._scan_failed)
        worker.signals.finished.connect(self._scan_worker_finished)
        self._scan_worker = worker
        self.progress.setRange(0, len(paths))
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.progress_label.setText(f"Scanning {len(paths)} file(s)…")
        self.cancel_action.setEnabled(True)
        self.resume_action.setEnabled(False)
        shared_pool().start(worker)

    def _scan_results(self, scan_id: int, results: list) -> None:
        if scan_id != self._scan_id:
            return  # a cancelled or superseded scan
        self.model.apply_results(results)
        current = self._current_row()
        if current is not None and any(r.path == current.path for r in results):
            self._current_row_changed(self.table.currentIndex())

    def _scan_progress(self, scan_id: int, status) -> None:
        if scan_id != self._scan_id:
            return
        self._scan_done = status.done
        self.progress.setValue(status.done)
        failed = f" · {status.failed} failed" if status.failed else ""
        self.progress_label.setText(f"{status.done} / {status.total} images · {status.rate:.1f} images/s · "
                                    f"{format_eta(status.eta_s)}{failed}")

    def _scan_failed(self, scan_id: int, message: str) -> None:
        if scan_id == self._scan_id:
            show_error(self, "Scan stopped", f"The scan stopped: {message}")

    def cancel_scan(self) -> None:
        """Stops at once from the user's view: unscanned rows are marked, late results ignored."""
        if self._scan_worker is None:
            return
        self._scan_worker.cancel()
        self._scan_id += 1
        left = self.model.paths_in_state(SCANNING) + self.model.paths_in_state(QUEUED)
        self.model.set_state(left, NOT_SCANNED)
        self.progress.setVisible(False)
        self.cancel_action.setEnabled(False)
        self._status(f"Cancelled: {self._scan_done} of {self._scan_total} scanned; {len(left)} not scanned "
                     f"(Scan remaining: Ctrl+R).")

    def _scan_worker_finished(self, scan_id: int, cancelled: bool) -> None:
        self._scan_worker = None
        if scan_id == self._scan_id:
            self.progress.setVisible(False)
            self.cancel_action.setEnabled(False)
            # A scan that died (e.g. a device error) leaves rows unscanned, not stuck in "scanning".
            self.model.set_state(self.model.paths_in_state(SCANNING), NOT_SCANNED)
            counts = self.model.counts()
            self._status(f"Scan finished: {counts['fake']} fake, {counts['real']} real, {counts['failed']} failed.")
        self.resume_action.setEnabled(bool(self.model.paths_in_state(NOT_SCANNED)))
        self._start_next_scan()
        if self._scan_worker is None:
            self._refresh_summary()
            self.scan_finished.emit(cancelled)

    def scan_remaining(self) -> None:
        self.model.set_state(self.model.paths_in_state(NOT_SCANNED), QUEUED)
        self.resume_action.setEnabled(False)
        self._start_next_scan()

    def clear_results(self) -> None:
        if self._scan_worker is not None:
            self.cancel_scan()
        self.model.clear()
        self.thumbnails.clear()
        self.detail.show_row(None, self.threshold)

    # ----------------------------------------------------------------------- export/copy
    def run_info(self):
        from ..scan.csvio import RunInfo

        session = self.controller.session
        return RunInfo(checkpoint=session.checkpoint.source, checkpoint_sha256=session.checkpoint.sha256,
                       device=session.device_label, threshold=self.threshold,
                       precision=session.scanner.precision)

    def choose_export(self) -> None:
        if self.controller.session is None or not self.model.scanned_results():
            show_error(self, "Nothing to export", "There are no scanned results to export yet.")
            return
        start = os.path.join(self.settings.last_folder, "dgs-results.csv")
        path, _ = QFileDialog.getSaveFileName(self, "Export results as CSV", start, "CSV files (*.csv)")
        if path:
            self.export_csv(path)

    def export_csv(self, path: str) -> bool:
        from ..scan.csvio import CsvError, write_results_csv

        results = self.model.scanned_results()
        try:
            write_results_csv(path, results, self.run_info())
        except (CsvError, OSError) as exc:
            show_error(self, "Export failed", f"The CSV could not be written: {exc}")
            return False
        waiting = len(self.model.rows) - len(results)
        note = f" ({waiting} not scanned yet were left out)" if waiting else ""
        self._status(f"Exported {len(results)} rows to {path}{note}.")
        return True

    def copy_selected_rows(self) -> None:
        from ..scan.csvio import COLUMNS as CSV_COLUMNS
        from ..scan.csvio import result_row

        rows = [self.proxy.index(index.row(), 0).data(ROW_ROLE) for index in self.table.selectionModel().selectedRows()]
        if not rows:
            return
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        run = self.run_info() if self.controller.session is not None else None
        for row in rows:
            if row.result is not None and run is not None:
                record = result_row(row.result, run)
                writer.writerow([record[column] for column in CSV_COLUMNS])
            else:
                writer.writerow([row.path, "", row.state] + [""] * (len(CSV_COLUMNS) - 3))
        QApplication.clipboard().setText(buffer.getvalue())
        self._status(f"Copied {len(rows)} row(s).")

    # ------------------------------------------------------------------- detail & summary
    def _current_row(self):
        index = self.table.currentIndex()
        return index.data(ROW_ROLE) if index.isValid() else None

    def _current_row_changed(self, index: QModelIndex, previous: QModelIndex | None = None) -> None:
        row = index.data(ROW_ROLE) if index.isValid() else None
        if previous is not None and row is not None and row.path == self.detail.current_path \
                and self.detail.overlay_pixmap is not None:
            return
        selection = None if row is None else self.model.selections.get(row.path)
        self.detail.show_row(row, self.threshold, selection)

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
        else:
            self.summary.setText(
                f"{counts['total']} file(s): <b style='color:#c62828'>{counts['fake']} fake</b>, "
                f"<b style='color:#2e7d32'>{counts['real']} real</b>, {counts['failed']} failed, "
                f"{counts['pending']} not scored · threshold {self.threshold:.3f}")
        self.histogram.set_values(self.model.probabilities())
        self.export_action.setEnabled(bool(self.model.scanned_results()))

    def _status(self, message: str) -> None:
        self.last_status = message
        self.progress_label.setText(message)
