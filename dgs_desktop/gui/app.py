"""`dgs-desktop` (the window): start-up, error reporting, and the screenshot mode.

`DGS_DESKTOP_SCREENSHOT=/path.png` (used by the Xvfb test and for the README picture): once
the scan of the command-line paths has finished and the first row's detail is shown, save
a screenshot of the window there and exit (0 on success). `DGS_DESKTOP_SCREENSHOT_TIMEOUT`
(seconds, default 300) bounds the wait.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from .dialogs import show_error
from .icon import app_icon
from .model_controller import FAILED, NO_MODEL
from .settings import APPLICATION, ORGANIZATION, AppSettings

log = logging.getLogger("dgs_desktop.gui")
SCREENSHOT_ENV = "DGS_DESKTOP_SCREENSHOT"
SCREENSHOT_TIMEOUT_ENV = "DGS_DESKTOP_SCREENSHOT_TIMEOUT"
SCREENSHOT_SIZE_ENV = "DGS_DESKTOP_SCREENSHOT_SIZE"  # WIDTHxHEIGHT of the window, default 1360x860


def make_application() -> QApplication:
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "dgs-desktop"])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("DGS Desktop")
    app.setDesktopFileName("dgs-desktop")
    app.setWindowIcon(app_icon())
    return app


def install_error_dialogs(window) -> None:
    """Unexpected errors become a plain-words dialog; the traceback goes to the log only."""

    def hook(kind, exc, tb):
        log.error("unexpected error:\n%s", "".join(traceback.format_exception(kind, exc, tb)))
        show_error(window, "Something went wrong",
                   f"DGS Desktop hit an unexpected problem ({kind.__name__}: {exc}). "
                   "Your results so far are kept; details were written to the log.")

    sys.excepthook = hook


class ScreenshotOnFinish:
    """Saves the window once the scan is done and the detail pane shows the first row, then exits."""

    def __init__(self, window, path: str, app: QApplication, timeout_s: float):
        self.window, self.path, self.app = window, path, app
        self._saved = False
        window.scan_finished.connect(self._scan_finished)
        window.controller.state_changed.connect(self._model_state)
        QTimer.singleShot(int(timeout_s * 1000), lambda: self._save(exit_code=3))

    def _model_state(self, state: str, message: str) -> None:
        if state in (FAILED,) or (state == NO_MODEL and "could not" in message):
            QTimer.singleShot(300, lambda: self._save(exit_code=2))

    def _scan_finished(self, cancelled: bool) -> None:
        window = self.window
        if window.scanning or not window.model.rows:
            return
        target = next((row for row in window.model.rows if row.state == "ok"), window.model.rows[0])
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


def run_app(paths: list[str] | None = None, checkpoint: str | None = None, device: str | None = None,
            case: str | None = None) -> int:
    from .main_window import MainWindow

    if not logging.getLogger().handlers:  # the CLI shell configures logging (-v/--quiet); keep its choice
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = make_application()
    settings = AppSettings()
    if device:
        settings.device = device
    window = MainWindow(settings)
    install_error_dialogs(window)
    screenshot = os.environ.get(SCREENSHOT_ENV)
    if screenshot:
        size = os.environ.get(SCREENSHOT_SIZE_ENV, "1360x860").lower().split("x")
        window.resize(int(size[0]), int(size[1]))
        keep = ScreenshotOnFinish(window, screenshot, app, float(os.environ.get(SCREENSHOT_TIMEOUT_ENV, "300")))  # noqa: F841
    window.show()
    spec = checkpoint or settings.active_model or None

    def start() -> None:  # after the first paint: the window is up before the slow imports begin
        window.controller.start()
        if case:
            # A case reloads the model that made its scores; --checkpoint, when given, wins.
            opened = window.open_case(case, create=True)
            if checkpoint or (spec and not (opened and window.case.info().checkpoint)):
                window.load_model(spec, settings.device)
        elif spec:
            window.load_model(spec, settings.device)
        if paths:
            window.add_paths(list(paths))

    QTimer.singleShot(0, start)
    return app.exec()
