"""The detail pane's "Provenance" tab: the selected file's metadata and provenance.

It follows the row the detail pane shows, and reads the file in the background through the
scan's safe reader only while the tab is shown (read only what the analyst looks at).
"""

from __future__ import annotations

from PySide6.QtCore import QObject

from .provenance_panel import ProvenancePanel

TAB_TITLE = "Provenance"


class ProvenanceTab(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self._shown_path: str | None = None
        self.panel = ProvenancePanel()
        self.tab_index = window.detail.add_tab(self.panel, TAB_TITLE)
        window.detail.tabs.currentChanged.connect(lambda _: self.refresh())
        window.table.selectionModel().currentRowChanged.connect(lambda *_: self.refresh())
        window.table.selectionModel().selectionChanged.connect(lambda *_: self.refresh())

    def show(self) -> None:
        self.window.detail.tabs.setCurrentIndex(self.tab_index)

    def refresh(self) -> None:
        if self.window.detail.tabs.currentIndex() != self.tab_index:
            return
        row = self.window.shown_row()  # the row the detail pane shows: selected, never just current
        path = None if row is None else row.path
        if path == self._shown_path:
            return
        self._shown_path = path
        sha256 = getattr(row.result, "sha256", "") if row is not None and row.result is not None else ""
        self.panel.load_file(path, sha256)
