"""The scan's progress in the status bar, and the Cancel / Scan remaining actions' state."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QProgressBar

from .results_model import NOT_SCANNED


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"about {max(1, round(seconds))} s left"
    if seconds < 3600:
        return f"about {seconds / 60:.0f} min left"
    return f"about {seconds / 3600:.1f} h left"


class ScanProgress(QObject):
    finished = Signal(bool)  # cancelled; no scan runs and nothing waits

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(200)
        self.bar.setVisible(False)
        scans = window.scans
        scans.started.connect(self._started)
        scans.progress.connect(self._progress)
        scans.cancelled.connect(self._cancelled)
        scans.stopped.connect(self._stopped)
        scans.idle.connect(self._idle)
        for action in (window.cancel_action, window.resume_action):
            action.setEnabled(False)  # until there is a scan to cancel, a file left

    def _started(self, count: int) -> None:
        self.bar.setRange(0, count)
        self.bar.setValue(0)
        self.bar.setVisible(True)
        self.window.progress_label.setText(f"Scanning {count} file(s)…")
        self.window.cancel_action.setEnabled(True)
        self.window.resume_action.setEnabled(False)

    def _progress(self, status) -> None:
        self.bar.setValue(status.done)
        failed = f" · {status.failed} failed" if status.failed else ""
        self.window.progress_label.setText(f"{status.done} / {status.total} images · {status.rate:.1f} images/s · "
                                           f"{format_eta(status.eta_s)}{failed}")

    def _ended(self, message: str) -> None:
        self.bar.setVisible(False)
        self.window.cancel_action.setEnabled(False)
        self.window.show_status(message)

    def _cancelled(self, done: int, total: int, left: int) -> None:
        self._ended(f"Cancelled: {done} of {total} scanned; {left} not scanned (Scan remaining: Ctrl+R).")

    def _stopped(self, cancelled: bool) -> None:
        # Counts are in the status bar's right corner, where they follow the threshold.
        self._ended(f"Scan finished: {len(self.window.model.rows)} file(s) listed.")

    def _idle(self, cancelled: bool) -> None:
        self.window.resume_action.setEnabled(bool(self.window.model.paths_in_state(NOT_SCANNED)))
        self.window.summary.refresh()
        self.finished.emit(cancelled)

    def scan_remaining(self) -> None:
        self.window.resume_action.setEnabled(False)
        self.window.scans.scan_remaining()
