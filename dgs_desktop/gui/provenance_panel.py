"""Metadata and provenance of the selected image: the one-line summary, C2PA Content
Credentials, generator/editor signals, the embedded EXIF thumbnail, and every metadata field
(EXIF, GPS, XMP, IPTC, PNG text, ICC, JPEG quantisation) in a tree.

Shown beside the detector's probability, never mixed into it. All text from the file is
shown as plain text (a QLabel would otherwise render a metadata value like `<img …>` as
rich text). Reading happens on a pool thread with the scan's safe reader.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QPixmap
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..provenance.summary import ProvenanceReport
from .thumbnails import pil_to_qimage
from .workers import Task, start_task

MAX_SHOWN_CHARS = 300
GROUP_ORDER = ("EXIF", "GPS", "XMP", "IPTC", "PNG", "ICC", "JPEG")


def analyze_file(path: str, expected_sha256: str = "") -> tuple[ProvenanceReport, str]:
    """Runs on a pool thread: the file read once, read-only; (report, warning)."""
    import hashlib
    from pathlib import Path

    from ..provenance.summary import analyze
    from ..scan.decode import read_file

    data = read_file(Path(path))
    warning = ""
    if expected_sha256 and hashlib.sha256(data).hexdigest() != expected_sha256:
        warning = "The file changed after it was scanned; this is the current file's metadata."
    return analyze(data), warning


def plain_label(text: str = "", selectable: bool = True) -> QLabel:
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.PlainText)  # file text is never markup
    label.setWordWrap(True)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setText(text)
    return label


def _shown(value: str) -> str:
    value = " ".join(value.split())
    return value if len(value) <= MAX_SHOWN_CHARS else value[:MAX_SHOWN_CHARS] + " …"


class ProvenancePanel(QWidget):
    shown = Signal()  # after a report is displayed

    def __init__(self, parent=None):
        super().__init__(parent)
        self._jobs: set = set()
        self._request = 0
        self.report: ProvenanceReport | None = None

        self.summary = plain_label("Select a row to see its metadata and provenance.")
        bold = QFont(self.summary.font())
        bold.setBold(True)
        self.summary.setFont(bold)
        self.warning = plain_label()
        self.warning.setStyleSheet("color: #b45309")
        self.warning.hide()

        self.c2pa_box = QGroupBox("C2PA Content Credentials")
        self.c2pa_form = QFormLayout(self.c2pa_box)
        self.signals_box = QGroupBox("Generator and editor signals")
        self.signals_layout = QVBoxLayout(self.signals_box)
        self.thumbnail = QLabel()
        self.thumbnail.setToolTip("The thumbnail embedded in the EXIF data: compare it with the image "
                                  "(an edit often leaves the old thumbnail behind)")
        self.thumbnail.hide()

        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Field", "Value"])
        self.tree.setColumnWidth(0, 220)
        self.tree.setUniformRowHeights(True)
        self.tree.setMinimumHeight(180)  # usable when the tab scrolls in a small window

        top = QHBoxLayout()
        boxes = QVBoxLayout()
        boxes.addWidget(self.c2pa_box)
        boxes.addWidget(self.signals_box)
        top.addLayout(boxes, 1)
        top.addWidget(self.thumbnail, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.summary)
        layout.addWidget(self.warning)
        layout.addLayout(top)
        layout.addWidget(QLabel("All metadata:"))
        layout.addWidget(self.tree, 1)
        self.show_report(None)

    # ----------------------------------------------------------------------------- loading
    def load_file(self, path: str | None, expected_sha256: str = "") -> None:
        """Reads `path` in the background and shows its provenance (None clears)."""
        self._request += 1
        if path is None:
            self.show_report(None)
            return
        self.summary.setText("Reading metadata…")
        request = self._request
        task = Task(analyze_file, path, expected_sha256)
        task.signals.succeeded.connect(lambda result: self._loaded(request, result))
        task.signals.failed.connect(lambda message: self._failed(request, message))
        start_task(task, self._jobs, owner=self)

    def _loaded(self, request: int, result) -> None:
        if request == self._request:
            report, warning = result
            self.show_report(report, warning)

    def _failed(self, request: int, message: str) -> None:
        if request == self._request:
            self.show_report(None)
            self.summary.setText(f"Cannot read the file's metadata: {message}")

    # ----------------------------------------------------------------------------- showing
    def show_report(self, report: ProvenanceReport | None, warning: str = "") -> None:
        self.report = report
        self.warning.setText(warning)
        self.warning.setVisible(bool(warning))
        self._fill_c2pa(report)
        self._fill_signals(report)
        self._fill_thumbnail(report)
        self._fill_tree(report)
        self.summary.setText("Select a row to see its metadata and provenance." if report is None
                             else report.summary)
        self.shown.emit()

    def _fill_c2pa(self, report: ProvenanceReport | None) -> None:
        while self.c2pa_form.rowCount():
            self.c2pa_form.removeRow(0)
        info = None if report is None else report.c2pa
        if info is None or not info.present:
            self.c2pa_form.addRow(plain_label("none in this file" if report is not None else ""))
            return
        rows = [("State", info.state_text), ("Signer", f"{info.signer} ({info.issuer})" if info.issuer else info.signer),
                ("Claim generator", info.claim_generator), ("Signed", info.signed_at),
                ("Declares AI", ", ".join(info.ai_source_types) or "no"), ("Actions", "; ".join(info.actions))]
        for name, value in rows:
            if value:
                self.c2pa_form.addRow(f"{name}:", plain_label(_shown(value)))

    def _fill_signals(self, report: ProvenanceReport | None) -> None:
        while self.signals_layout.count():
            item = self.signals_layout.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        signals = [] if report is None else report.signals
        if report is not None and not signals:
            self.signals_layout.addWidget(plain_label("none found (absence proves nothing: metadata is easily removed)"))
        for signal in signals:
            self.signals_layout.addWidget(plain_label(f"{signal.kind}: {signal.line()}"))

    def _fill_thumbnail(self, report: ProvenanceReport | None) -> None:
        from ..report.images import reencoded_thumbnail

        thumb = None if report is None or not report.metadata.thumbnail else reencoded_thumbnail(
            report.metadata.thumbnail)
        if thumb is None:
            self.thumbnail.clear()
            self.thumbnail.hide()
            return
        thumb.thumbnail((160, 160))
        self.thumbnail.setPixmap(QPixmap.fromImage(pil_to_qimage(thumb)))
        self.thumbnail.show()

    def _fill_tree(self, report: ProvenanceReport | None) -> None:
        self.tree.clear()
        if report is None:
            return
        groups: dict[str, QTreeWidgetItem] = {}
        fields = report.metadata.fields
        order = {name: i for i, name in enumerate(GROUP_ORDER)}
        for group, name, value in sorted(fields, key=lambda f: order.get(f[0], len(order))):
            parent = groups.get(group)
            if parent is None:
                parent = groups[group] = QTreeWidgetItem(self.tree, [group, ""])
                parent.setFirstColumnSpanned(True)
            item = QTreeWidgetItem(parent, [name, _shown(value)])
            item.setToolTip(1, value[:4000])
        for problem in report.metadata.problems:
            QTreeWidgetItem(self.tree, ["Problem", problem])
        for parent in groups.values():
            parent.setText(0, f"{parent.text(0)} ({parent.childCount()})")
        if not fields:
            QTreeWidgetItem(self.tree, ["(no metadata in this file)", ""])
        self.tree.expandAll()
