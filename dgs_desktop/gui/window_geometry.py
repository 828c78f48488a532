"""The window's size and place: restored from the settings, and always whole on its screen."""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize
from PySide6.QtGui import QGuiApplication

DEFAULT_SIZE = QSize(1280, 800)


def fit_to_screen(frame: QRect, available: QRect) -> QRect:
    """`frame` made no larger than `available` and moved inside it (a window saved on a larger
    screen, or the default size on a 1024x768 one, opens whole instead of clipped)."""
    width, height = min(frame.width(), available.width()), min(frame.height(), available.height())
    left = min(max(frame.left(), available.left()), available.right() + 1 - width)
    top = min(max(frame.top(), available.top()), available.bottom() + 1 - height)
    return QRect(left, top, width, height)


def available_geometry(window) -> QRect:
    screen = window.screen() or QGuiApplication.primaryScreen()
    return screen.availableGeometry()


def fit_screen(window) -> None:
    """Keeps the whole window, frame included, on its screen's available area."""
    if window.isMaximized() or window.isFullScreen():
        return
    frame, inner = window.frameGeometry(), window.geometry()
    margins = QSize(frame.width() - inner.width(), frame.height() - inner.height())  # title bar, borders
    fitted = fit_to_screen(frame, available_geometry(window))
    if fitted != frame:
        window.resize(fitted.size() - margins)
        window.move(fitted.topLeft())


def restore(window, settings) -> None:
    geometry = settings.geometry("main")
    if geometry is None or not window.restoreGeometry(geometry):
        window.resize(DEFAULT_SIZE)
    fit_screen(window)
    splitter = settings.geometry("splitter")
    if splitter is not None:
        window.splitter.restoreState(splitter)


def save(window, settings) -> None:
    settings.set_geometry("main", window.saveGeometry())
    settings.set_geometry("splitter", window.splitter.saveState())
    settings.sync()
