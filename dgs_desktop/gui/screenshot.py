"""Saves the window once its scan is done and the detail pane shows the first scored row.

Attached through `run_app(on_window=...)` by scripts/window_screenshot.py (the Xvfb test and
the README picture). Exit status of the application: 0 saved, 2 the model could not be
loaded, 3 the wait passed the timeout (a screenshot is saved anyway), 4 not written.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QTimer

from .model_controller import FAILED, NO_MODEL
from .results_model import OK

log = logging.getLogger(__name__)


class ScreenshotOnFinish:
    """Saves the window once the scan is done and the detail pane shows the first row, then exits."""

    def __init__(self, window, app, path: str, timeout_s: float):
        self.window, self.app, self.path = window, app, path
        self._saved = False
        window.scan_finished.connect(self._scan_finished)
        window.controller.state_changed.connect(self._model_state)
        QTimer.singleShot(int(timeout_s * 1000), lambda: self._save(exit_code=3))

    def _model_state(self, state: str, message: str) -> None:
        if state == FAILED or (state == NO_MODEL and "could not" in message):
            QTimer.singleShot(300, lambda: self._save(exit_code=2))

    def _scan_finished(self, cancelled: bool) -> None:
        window = self.window
        if window.scans.scanning or not window.model.rows:
            return
        target = next((row for row in window.model.rows if row.state == OK), window.model.rows[0])
        window.detail.loaded.connect(lambda path: QTimer.singleShot(400, self._save))
        if window.detail.current_path == target.path and window.detail.evidence_shown:
            QTimer.singleShot(400, self._save)
        else:
            window.select_path(target.path)

    def _save(self, exit_code: int = 0) -> None:
        if self._saved:
            return
        self._saved = True
        ok = self.window.grab().save(self.path)
        (log.info if ok else log.error)("screenshot %s %s", "saved to" if ok else "could NOT be saved to", self.path)
        self.app.exit(exit_code if ok else 4)
