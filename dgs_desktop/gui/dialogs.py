"""Error and information dialogs in plain words (never a traceback), non-blocking."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

_open_boxes: list[QMessageBox] = []  # tests read the last one; boxes delete themselves on close


def show_error(parent: QWidget | None, title: str, message: str) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, parent)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    _open_boxes.append(box)
    box.finished.connect(lambda *_: _open_boxes.remove(box) if box in _open_boxes else None)
    box.open()  # window-modal but does not block the event loop (scans keep streaming)
    return box


def open_message_boxes() -> list[QMessageBox]:
    return list(_open_boxes)
