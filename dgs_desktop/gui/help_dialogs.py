"""Help menu: the keyboard shortcut list (made from the window's actions) and About."""

from __future__ import annotations

import sys

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QMessageBox

from .. import __version__
from ..verdict import RULE_TEXT
from .model_controller import model_warning

VIEWER_KEYS = (("+ / − / wheel", "Zoom the image (when it has the focus)"),
               ("0 / 1", "Fit / actual pixels (image focused)"),
               ("Tab / Shift+Tab", "Next / previous control"))


def shortcut_text(action) -> str:
    return ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in action.shortcuts())


def shortcut_list(actions) -> list[tuple[str, str]]:
    """(action, keys) for every action with a shortcut, as the menus show them."""
    return [(action.text().replace("&", "").rstrip("…"), shortcut_text(action)) for action in actions
            if action.shortcuts()]


def shortcuts_html(actions) -> str:
    rows = [*shortcut_list(actions)] + [(name, keys) for keys, name in VIEWER_KEYS]
    return "<table cellspacing=6>" + "".join(f"<tr><td><b>{keys}</b></td><td>{name}</td></tr>"
                                             for name, keys in rows) + "</table>"


def about_html(controller, device: str, threshold: float) -> str:
    import PySide6

    session = controller.session
    if session is not None:
        checkpoint = session.checkpoint
        model, device = f"{checkpoint.short_id} ({checkpoint.architecture})", session.device_label
    else:
        model = f"none ({controller.state})"
    torch = sys.modules.get("torch")
    warning = model_warning(session.checkpoint) if session is not None else ""
    return (f"<h3>DGS Desktop {__version__}</h3>"
            "<p>Tells whether images are AI-generated with the DGS-Net detector "
            "(CLIP ViT-L/14 + LoRA + linear head).</p>"
            f"<p><b>Model:</b> {model}<br><b>Device:</b> {device}<br>"
            f"<b>Verdict rule:</b> {RULE_TEXT}, threshold {threshold:.3f}</p>"
            + (f"<p style='color:#bf360c'><b>⚠ {warning}</b></p>" if warning else "")
            + f"<p>PySide6 {PySide6.__version__}" + (f", PyTorch {torch.__version__}" if torch else "")
            + f", Python {sys.version.split()[0]}. Apache-2.0.</p>")


def open_box(parent, title: str, html: str, on_close, icon=None) -> QMessageBox:
    """A non-blocking information box (the scan keeps streaming while it is open)."""
    box = QMessageBox(QMessageBox.Icon.Information if icon is None else QMessageBox.Icon.NoIcon, title, html,
                      QMessageBox.StandardButton.Ok, parent)
    box.setTextFormat(Qt.TextFormat.RichText)
    if icon is not None:
        box.setIconPixmap(icon.pixmap(64, 64))
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.finished.connect(lambda *_: on_close())
    box.open()
    return box
