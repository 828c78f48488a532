"""The results table, the filter bar above it and the counts below it.

The table knows which row the detail pane shows (`shown_index`): the current row when it is
selected, else the first selected row — never a row that is merely current. The summary
follows the rows and the threshold (debounced: a scan's results arrive in bursts).
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QSize, Qt, QTimer
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QTableView

from ..verdict import RULE_TEXT
from .results_model import NAME_COL, OK, PROB_COL, ROW_ROLE, STATUS_COL, THUMB_COL, VERDICT_COL, VERDICT_FILTERS
from .thumbnails import THUMBNAIL_SIZE

COLUMN_WIDTHS = ((THUMB_COL, THUMBNAIL_SIZE + 12), (NAME_COL, 170), (2, 140), (PROB_COL, 70), (VERDICT_COL, 64),
                 (STATUS_COL, 120))
SUMMARY_DEBOUNCE_MS = 150


class ResultsView(QTableView):
    """The table; when empty it says where to drop files. Tab moves on to the next widget."""

    def __init__(self, proxy, parent=None):
        super().__init__(parent)
        self.setModel(proxy)
        self.setSortingEnabled(True)
        self.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # input order until the user sorts
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setTabKeyNavigation(False)  # Tab leaves the table; arrows move between rows
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.setIconSize(QSize(THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.verticalHeader().setDefaultSectionSize(THUMBNAIL_SIZE + 6)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for column, width in COLUMN_WIDTHS:
            header.resizeSection(column, width)

    def paintEvent(self, event) -> None:  # noqa: N802
        super().paintEvent(event)
        if self.model() is not None and self.model().rowCount() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             "Drop images or folders anywhere on this window\n"
                             "or use Add files / Add folder (Ctrl+O, Ctrl+Shift+O).")
            painter.end()

    def shown_index(self) -> QModelIndex:
        """The row the detail pane shows: the current row when it is selected, else the first
        selected row, else none. A row that is not selected (deselected, or made current by a
        filter that hid the selected one) is never shown."""
        selection = self.selectionModel()
        index = self.currentIndex()
        if index.isValid() and selection.isRowSelected(index.row(), index.parent()):
            return index
        rows = sorted(selection.selectedRows(), key=lambda i: i.row())
        return rows[0] if rows else QModelIndex()

    def select_path(self, path: str) -> bool:
        proxy = self.model()
        for proxy_row in range(proxy.rowCount()):
            index = proxy.index(proxy_row, NAME_COL)
            if index.data(ROW_ROLE).path == path:
                self.selectionModel().setCurrentIndex(
                    index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
                return True
        return False


def filter_bar(proxy, threshold_control) -> tuple[QHBoxLayout, QComboBox, QLineEdit]:
    """Show: [verdict] [name filter] and the threshold control, beside the table (never in an
    overflow menu)."""
    verdicts = QComboBox()
    verdicts.addItems(VERDICT_FILTERS)
    verdicts.setToolTip("Show only rows with this verdict")
    verdicts.currentTextChanged.connect(proxy.set_verdict_filter)
    text = QLineEdit()
    text.setPlaceholderText("Filter by name or folder…")
    text.setClearButtonEnabled(True)
    text.setToolTip("Show only files whose path contains this text")
    text.setMinimumWidth(100)
    text.textChanged.connect(proxy.set_text_filter)
    bar = QHBoxLayout()
    bar.addWidget(QLabel("Show:"))
    bar.addWidget(verdicts)
    bar.addWidget(text, 1)
    bar.addWidget(threshold_control)
    return bar, verdicts, text


def summary_texts(counts: dict[str, int], duplicates: int, less_reliable: int, threshold: float) -> tuple[str, str]:
    """(the line under the table, the status bar's counts) for ResultsModel.counts()."""
    if not counts["total"]:
        return "No files yet.", ""
    extra = (f" · {duplicates} duplicate(s)" if duplicates else "") + \
        (f" · ⚠ {less_reliable} less reliable" if less_reliable else "")
    line = (f"{counts['total']} file(s): <b style='color:#c62828'>{counts['fake']} fake</b>, "
            f"<b style='color:#2e7d32'>{counts['real']} real</b>, "
            f"<b style='color:#6a1b9a'>{counts['inconclusive']} inconclusive</b>, {counts['failed']} failed, "
            f"{counts['pending']} not scored · threshold {threshold:.3f}{extra}")
    short = (f"{counts['fake']} fake · {counts['real']} real · {counts['inconclusive']} inconclusive · "
             f"{counts['failed']} failed" + (f" · {counts['pending']} waiting" if counts["pending"] else ""))
    return line, short


class ResultsSummary:
    """The counts line, the status bar's counts and the histogram, kept in step with the rows
    and the threshold."""

    def __init__(self, window):
        self.window = window
        self.line = QLabel()
        self.line.setWordWrap(True)
        self.line.setToolTip(f"Counts per verdict at the current threshold ({RULE_TEXT})")
        self.counts = QLabel()
        self.counts.setToolTip(f"Counts at the current threshold ({RULE_TEXT})")
        self.timer = QTimer(window)
        self.timer.setSingleShot(True)
        self.timer.setInterval(SUMMARY_DEBOUNCE_MS)
        self.timer.timeout.connect(self.refresh)
        model = window.model
        for signal in (model.dataChanged, model.rowsInserted, model.modelReset, window.verdict_threshold.changed):
            signal.connect(self.schedule)

    def schedule(self, *args) -> None:
        if not self.timer.isActive():
            self.timer.start()

    def refresh(self) -> None:
        window = self.window
        rows = window.model.rows
        duplicates = sum(1 for row in rows if row.duplicate_of)
        warned = sum(1 for row in rows if row.warning and row.state == OK)
        line, short = summary_texts(window.model.counts(), duplicates, warned, window.threshold)
        self.line.setText(line)
        self.counts.setText(short)
        window.histogram.set_values(window.model.probabilities())
        window.update_export_actions()
