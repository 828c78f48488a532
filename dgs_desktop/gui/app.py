"""`dgs-desktop` (the window): start-up, the log file, and error reporting.

`run_app(on_window=...)` lets a caller attach to the window before it is shown (the Xvfb
test's screenshot driver, scripts/window_screenshot.py, which also makes the README picture).
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable
from typing import cast

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from ..logfile import start_log_file, where_details_are
from .dialogs import show_error
from .icon import app_icon
from .settings import APPLICATION, ORGANIZATION, AppSettings
from .workers import collect_cycles_on_gui_thread

log = logging.getLogger("dgs_desktop.gui")


def make_application() -> QApplication:
    # instance() is typed as the QCoreApplication it is declared on; in this process it is a QApplication
    app = cast(QApplication, QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "dgs-desktop"]))
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("DGS Desktop")
    app.setDesktopFileName("dgs-desktop")
    app.setWindowIcon(app_icon())
    collect_cycles_on_gui_thread(app)  # never on a scan thread: see GuiThreadCollector
    return app


def install_error_dialogs(window) -> None:
    """Unexpected errors become a plain-words dialog naming the log file; the traceback goes
    to the log only."""

    def hook(kind, exc, tb):
        log.error("unexpected error:\n%s", "".join(traceback.format_exception(kind, exc, tb)))
        show_error(window, "Something went wrong",
                   f"DGS Desktop hit an unexpected problem ({kind.__name__}: {exc}). "
                   f"Your results so far are kept. {where_details_are()}")

    sys.excepthook = hook


def run_app(paths: list[str] | None = None, checkpoint: str | None = None, device: str | None = None,
            case: str | None = None, on_window: Callable[[object, QApplication], object] | None = None) -> int:
    """Opens the window; `on_window(window, app)` is called before it is shown, and what it
    returns is kept alive until the window closes."""
    from .main_window import MainWindow

    if not logging.getLogger().handlers:  # the CLI shell configures logging (-v/--quiet); keep its choice
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    start_log_file()
    app = make_application()
    settings = AppSettings()
    if device:
        settings.device = device
    window = MainWindow(settings)
    install_error_dialogs(window)
    attached = on_window(window, app) if on_window else None  # noqa: F841 - lives as long as the window
    window.show()
    spec = checkpoint or settings.active_model or None

    def start() -> None:  # after the first paint: the window is up before the slow imports begin
        window.controller.start()
        if case:
            # A case reloads the model that made its scores; --checkpoint, when given, wins.
            opened = window.cases.open(case, create=True)
            current = window.cases.case
            if checkpoint or (spec and not (opened and current is not None and current.info().checkpoint)):
                window.models.load(spec, settings.device)
        elif spec:
            window.models.load(spec, settings.device)
        if paths:
            window.intake.add_paths(list(paths))

    QTimer.singleShot(0, start)
    return app.exec()
