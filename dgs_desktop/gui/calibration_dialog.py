"""Model -> Calibration…: load a calibration made on the analyst's own real photos, or build one
from a folder with a progress bar (dgs_desktop.calibration does the arithmetic; Qt only here).

A calibration made with another checkpoint is refused. While one is loaded its threshold is
the window's, and every row shows how many of the reference photos score at least as high.
"""

from __future__ import annotations

from datetime import datetime, timezone

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
)

from ..calibration import DEFAULT_TARGET_FPR, CalibrationError, build_calibration, load_calibration, write_calibration
from .dialogs import show_error
from .workers import Task

CALIBRATION_FILTER = "Calibration files (*.json)"


def build_from_folder(scanner, folder: str, checkpoint_sha256: str, target_fpr: float, report=None,
                      cancelled=None):
    """Scores every image under `folder` with the window's scanner and returns the Calibration
    (not written yet). Runs on a worker thread."""
    from ..calibration import score_references
    from ..scan.discover import expand_paths

    paths = list(expand_paths([folder]))
    scored, failed = score_references(scanner, paths, report=report, cancelled=cancelled)
    return build_calibration(scored, checkpoint_sha256, target_fpr, precision=scanner.precision,
                             created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                             extra={"unscored_real": len(failed), "reference_folder": folder})


class CalibrationDialog(QDialog):
    """Shows the loaded calibration; loads one, builds one, or clears it."""

    calibration_chosen = Signal(object)  # a Calibration, or None to clear

    def __init__(self, window):
        super().__init__(window)
        self.window_ = window
        self.task: Task | None = None
        self.setWindowTitle("Calibration")
        self.setMinimumWidth(560)
        layout = QVBoxLayout(self)
        intro = QLabel("A threshold calibrated on <b>your own real photos</b> (same camera, same kind of "
                       "images) with a known false-positive rate, instead of the model's 0.5. "
                       "Build it from a folder of images you know are real, or load one made with "
                       "<code>dgs-desktop calibrate</code>.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.current = QLabel()
        self.current.setWordWrap(True)
        self.current.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.current)
        target_row = QHBoxLayout()
        target_row.addWidget(QLabel("Target false-positive rate:"))
        self.target = QDoubleSpinBox()
        self.target.setRange(0.0, 0.5)
        self.target.setDecimals(3)
        self.target.setSingleStep(0.005)
        self.target.setValue(DEFAULT_TARGET_FPR)
        target_row.addWidget(self.target)
        target_row.addStretch(1)
        layout.addLayout(target_row)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        layout.addWidget(self.progress)
        buttons = QHBoxLayout()
        self.load_button = QPushButton("Load file…")
        self.build_button = QPushButton("Build from a folder of real photos…")
        self.cancel_button = QPushButton("Cancel")
        self.clear_button = QPushButton("Clear calibration")
        close = QPushButton("Close")
        for button in (self.load_button, self.build_button, self.cancel_button, self.clear_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout.addLayout(buttons)
        self.cancel_button.setVisible(False)
        self.load_button.clicked.connect(self.choose_file)
        self.build_button.clicked.connect(self.choose_folder)
        self.cancel_button.clicked.connect(self.cancel)
        self.clear_button.clicked.connect(lambda: self.calibration_chosen.emit(None))
        close.clicked.connect(self.close)
        self.refresh()

    def refresh(self) -> None:
        calibration = self.window_.model.calibration
        session = self.window_.controller.session
        if calibration is None:
            self.current.setText("No calibration loaded: the threshold is the model's or yours.")
        else:
            warning = calibration.warning()
            self.current.setText(f"<b>Loaded</b> {calibration.path or '(not saved)'}<br>{calibration.summary()}"
                                 + (f"<br><span style='color:#e65100'>⚠ {warning}</span>" if warning else ""))
        busy = self.task is not None
        self.build_button.setEnabled(session is not None and not busy)
        self.load_button.setEnabled(session is not None and not busy)
        self.clear_button.setEnabled(calibration is not None and not busy)
        self.cancel_button.setVisible(busy)
        self.progress.setVisible(busy)
        if session is None:
            self.current.setText(self.current.text() + "<br>Load a model first: a calibration belongs to one model.")

    def load(self, path: str) -> bool:
        """Loads `path` for the window's model; False (with a message) when refused."""
        session = self.window_.controller.session
        try:
            calibration = load_calibration(path)
            calibration.check_checkpoint(session.checkpoint.sha256)
        except CalibrationError as exc:
            show_error(self, "Calibration not loaded", str(exc))
            return False
        self.calibration_chosen.emit(calibration)
        self.refresh()
        return True

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load calibration", self.window_.settings.last_folder,
                                              CALIBRATION_FILTER)
        if path:
            self.load(path)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of real photos", self.window_.settings.last_folder)
        if folder:
            self.build(folder)

    def build(self, folder: str, out: str | None = None) -> Task:
        """Scores `folder` on a worker; when done, asks where to save (or writes `out`) and loads it."""
        session = self.window_.controller.session
        self.progress.setRange(0, 0)
        task = Task(build_from_folder, session.scanner, folder, session.checkpoint.sha256, self.target.value(),
                    pass_hooks=True)
        task.signals.progress.connect(lambda value: self._progress(*value))
        task.signals.succeeded.connect(lambda calibration: self._built(calibration, out))
        task.signals.failed.connect(self._failed)
        task.signals.finished.connect(self._finished)
        self.task = task
        self.window_.scans.run_task(task)
        self.refresh()
        return task

    def _progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        self.progress.setFormat("Scoring reference photos: %v of %m")

    def _built(self, calibration, out: str | None) -> None:
        if out is None:
            out, _ = QFileDialog.getSaveFileName(self, "Save calibration", self.window_.settings.last_folder +
                                                 "/calibration.json", CALIBRATION_FILTER)
        if not out:
            return
        try:
            calibration = write_calibration(out, calibration)
        except (CalibrationError, OSError) as exc:
            show_error(self, "Calibration not saved", str(exc))
            return
        self.calibration_chosen.emit(calibration)

    def _failed(self, message: str) -> None:
        if message != "cancelled":
            show_error(self, "Calibration failed", message)

    def _finished(self) -> None:
        self.task = None
        self.refresh()

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
