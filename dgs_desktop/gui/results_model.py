"""The results table: one row per file, a QAbstractTableModel behind a sort/filter proxy.

Rows keep the scalar results plus the 49 patch boxes (a few hundred bytes). The 150 KB
mosaics that came with the scan are kept only for the most recently scanned rows
(`SelectionCache`); the detail pane re-creates older mosaics from the boxes.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import cast

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QColor

from ..detector.hubaccess import checkpoint_name
from ..record import ScanRecord, reliability_warning
from ..scan.content import ContentGroups
from ..verdict import DEFAULT_THRESHOLD, FAKE, INCONCLUSIVE, REAL, RULE_TEXT, Assessment, assess, is_fake

QUEUED, SCANNING, OK, ERROR, NOT_SCANNED = "queued", "scanning", "ok", "error", "not scanned"
COLUMNS = ("", "Name", "Folder", "P(fake)", "Verdict", "Status", "Provenance", "Real ≥", "Model")
(THUMB_COL, NAME_COL, FOLDER_COL, PROB_COL, VERDICT_COL, STATUS_COL, PROVENANCE_COL, REFERENCE_COL,
 MODEL_COL) = range(len(COLUMNS))
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
ROW_ROLE = Qt.ItemDataRole.UserRole + 2

FAKE_COLOR = QColor("#c62828")
REAL_COLOR = QColor("#2e7d32")
INCONCLUSIVE_COLOR = QColor("#6a1b9a")
ERROR_COLOR = QColor("#b71c1c")
MUTED_COLOR = QColor("#757575")
WARNING_COLOR = QColor("#e65100")
WARNING_SIGN = "\u26a0"
VERDICT_COLORS = {FAKE: FAKE_COLOR, REAL: REAL_COLOR, INCONCLUSIVE: INCONCLUSIVE_COLOR}

HEADER_TIPS = {
    NAME_COL: "File name",
    FOLDER_COL: "Folder that holds the file",
    PROB_COL: "Probability that the image is AI-generated, from the active model",
    VERDICT_COL: f"{RULE_TEXT}, real otherwise; inconclusive where DGS-Net is known to be unreliable (hover for why)",
    REFERENCE_COL: "With a calibration loaded: the share of your real reference photos that score at least this high",
    STATUS_COL: "ok, the reason a file failed, or whether it still waits for the scan",
    PROVENANCE_COL: "Metadata, C2PA and generator signals, beside the score (they never change it)",
    MODEL_COL: "The model (checkpoint) that scored the row; hover for its manifest sha256 and device",
}


@dataclass
class ResultRow:
    path: str
    name: str
    folder: str
    state: str = QUEUED
    result: ScanRecord | None = None  # without its mosaic, once scanned
    boxes: tuple | None = None
    low_entropy: tuple | None = None
    entropies: tuple | None = None  # spectral entropy of each mosaic cell's patch
    checkpoint_sha256: str = ""  # the model that produced `result`
    checkpoint: str = ""  # and where it was loaded from (a folder or hf:org/name@rev)
    device: str = ""  # and the device it ran on (scores differ in the last bits between devices)
    duplicate_of: str = ""  # path of the first row with the same sha256
    warning: str = ""  # why this score is less reliable (small image, padding)
    analyst_note: str = ""  # kept in the case file
    tags: tuple = ()

    @property
    def probability(self) -> float | None:
        return None if self.result is None else self.result.fake_probability

    @property
    def note_or_tags(self) -> bool:
        return bool(self.analyst_note or self.tags)

    def assessment(self, threshold: float) -> Assessment:
        """The row's verdict and inconclusive reasons, by the one rule (verdict.assess)."""
        if self.result is None or self.state != OK:
            return Assessment("")
        return assess(self.result, threshold)

    def verdict(self, threshold: float) -> str:
        return self.assessment(threshold).verdict

    def verdict_explained(self, threshold: float, calibration=None) -> str:
        """The verdict with the numbers, the one rule that produced it, and any reasons."""
        assessment = self.assessment(threshold)
        probability = self.probability
        if not assessment.verdict or probability is None:  # a verdict has a probability
            return self.status_text
        relation = ">" if is_fake(probability, threshold) else "\u2264"
        text = f"P(fake) {probability:.4f} {relation} threshold {threshold:.4g} ({RULE_TEXT})"
        if assessment.reasons:
            text += "\ninconclusive: " + "\n  ".join(assessment.reasons)
        else:
            text += f": {assessment.verdict}"
        reference = self.reference_text(calibration)
        if reference:
            text += f"\n{reference} of your {calibration.n} real reference photos score at least this high"
        return text

    def reference_text(self, calibration) -> str:
        """'3.3 %': the calibration's reference rate for this score, or "" without one."""
        if calibration is None or self.state != OK:
            return ""
        rate = calibration.reference_fpr(self.probability)
        return "" if rate is None else f"{rate:.1%}"

    @property
    def provenance(self) -> str:
        return getattr(self.result, "provenance", "") or ""

    @property
    def status_text(self) -> str:
        if self.state == ERROR and self.result is not None:
            return f"error: {self.result.error}"
        parts = [self.state]
        if self.duplicate_of:
            parts.append(f"same content as {os.path.basename(self.duplicate_of)}")
        if self.warning and self.state == OK:
            parts.append(f"{WARNING_SIGN} {self.warning}")
        return " \u00b7 ".join(parts)


_WARNING_ICON = None


def warning_icon():
    """The style's warning sign, shown beside the verdict of a less reliable score."""
    global _WARNING_ICON
    if _WARNING_ICON is None:
        from PySide6.QtWidgets import QApplication, QStyle

        # A small pixmap, not the icon: the table's icon size is the thumbnails' 40 px.
        _WARNING_ICON = QApplication.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(14, 14)
    return _WARNING_ICON


class SelectionCache:
    """The last `capacity` PatchSelections (mosaic + boxes) by path: a small LRU."""

    def __init__(self, capacity: int = 64):
        self.capacity = capacity
        self._items: OrderedDict[str, object] = OrderedDict()

    def put(self, path: str, selection) -> None:
        self._items[path] = selection
        self._items.move_to_end(path)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def get(self, path: str):
        selection = self._items.get(path)
        if selection is not None:
            self._items.move_to_end(path)
        return selection

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class ResultsModel(QAbstractTableModel):
    def __init__(self, thumbnails=None, parent=None):
        super().__init__(parent)
        self.rows: list[ResultRow] = []
        self._row_of: dict[str, int] = {}
        self._found: dict[str, object] = {}  # path -> what discovery found (scan.discover.FoundPath)
        self.content = ContentGroups()  # path -> sha256, by row position: which row a copy repeats
        self.threshold = DEFAULT_THRESHOLD
        self.calibration = None  # dgs_desktop.calibration.Calibration while one is loaded
        self.selections = SelectionCache()
        self.thumbnails = thumbnails
        if thumbnails is not None:
            thumbnails.ready.connect(self._thumbnail_ready)

    # ------------------------------------------------------------------------- Qt model API
    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return HEADER_TIPS.get(section)
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        column = index.column()
        if role == ROW_ROLE:
            return row
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, column)
        if role == SORT_ROLE:
            return self._sort_key(row, column)
        if role == Qt.ItemDataRole.DecorationRole and column == THUMB_COL and self.thumbnails is not None:
            return self.thumbnails.get(row.path)
        if role == Qt.ItemDataRole.DecorationRole and column == VERDICT_COL and row.warning and row.state == OK:
            return warning_icon()
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._foreground(row, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == PROVENANCE_COL:
                return row.provenance
            if column in (THUMB_COL, NAME_COL, FOLDER_COL):
                return row.path + (f"\nsame content (sha256) as {row.duplicate_of}" if row.duplicate_of else "")
            if column in (PROB_COL, VERDICT_COL):
                caveat = f"\n{WARNING_SIGN} {row.warning}" if row.warning and row.state == OK else ""
                return row.verdict_explained(self.threshold, self.calibration) + caveat
            if column == REFERENCE_COL:
                return row.verdict_explained(self.threshold, self.calibration) if self.calibration else \
                    "Load a calibration (Model \u2192 Calibration\u2026) to compare with your own real photos"
            if column == MODEL_COL:
                return (f"Scored by {row.checkpoint or 'an unnamed model'}\nmanifest sha256 {row.checkpoint_sha256}\n"
                        f"on {row.device}") if row.result is not None else "Not scored yet"
            return row.status_text
        if role == Qt.ItemDataRole.TextAlignmentRole and column == PROB_COL:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _display(self, row: ResultRow, column: int):
        if column == NAME_COL:
            return row.name
        if column == FOLDER_COL:
            return row.folder
        if column == PROB_COL:
            return "" if row.probability is None else f"{row.probability:.4f}"
        if column == VERDICT_COL:
            return row.verdict(self.threshold)
        if column == REFERENCE_COL:
            return row.reference_text(self.calibration)
        if column == STATUS_COL:
            return row.status_text
        if column == PROVENANCE_COL:
            return row.provenance
        if column == MODEL_COL:
            return checkpoint_name(row.checkpoint) if row.result is not None else ""
        return None

    def _sort_key(self, row: ResultRow, column: int):
        if column == PROB_COL:
            return -1.0 if row.probability is None else row.probability
        if column in (THUMB_COL, NAME_COL):
            return row.name.lower()
        if column == FOLDER_COL:
            return row.folder.lower()
        if column == VERDICT_COL:
            return row.verdict(self.threshold) or "~"  # unscored rows last
        if column == REFERENCE_COL:
            rate = None if self.calibration is None or row.state != OK else self.calibration.reference_fpr(row.probability)
            return 2.0 if rate is None else rate
        if column == PROVENANCE_COL:
            return row.provenance
        if column == MODEL_COL:
            return self._display(row, column)
        return row.status_text

    def _foreground(self, row: ResultRow, column: int):
        if column == VERDICT_COL:
            return VERDICT_COLORS.get(row.verdict(self.threshold))
        if column == STATUS_COL:
            if row.state == OK:
                return WARNING_COLOR if row.warning else None
            return ERROR_COLOR if row.state == ERROR else MUTED_COLOR
        return None

    # ------------------------------------------------------------------------------ updates
    def add_files(self, files: list) -> list[str]:
        """Appends files not already listed (one row per path, as in the CSV); returns the new
        paths. Discovery's found paths are kept to be scanned as found (links, hard links)."""
        new_rows: list[ResultRow] = []
        for found in files:
            path = str(found)
            if path in self._row_of:
                continue
            self._found[path] = found
            self._row_of[path] = len(self.rows) + len(new_rows)
            new_rows.append(ResultRow(path=path, name=os.path.basename(path), folder=os.path.dirname(path)))
        if new_rows:
            first = len(self.rows)
            self.beginInsertRows(QModelIndex(), first, first + len(new_rows) - 1)
            self.rows.extend(new_rows)
            self.endInsertRows()
        return [row.path for row in new_rows]

    def scan_targets(self, paths: list[str]) -> list:
        """What to hand the scanner for these rows: discovery's found paths where known."""
        return [self._found.get(path, path) for path in paths]

    def apply_results(self, results: list, checkpoint_sha256: str = "", device: str = "", checkpoint: str = "") -> None:
        """Stores scan results; mosaics go to the bounded cache, boxes stay with the row."""
        touched = []
        for result in results:
            index = self._row_of.get(result.path)
            if index is None:
                continue
            row = self.rows[index]
            selection, result.selection = result.selection, None
            row.result = result
            row.state = OK if result.ok else ERROR
            row.checkpoint_sha256, row.device, row.checkpoint = checkpoint_sha256, device, checkpoint
            row.warning = reliability_warning(result) if result.ok else ""
            if selection is not None:
                row.boxes, row.low_entropy = selection.boxes, selection.low_entropy
                row.entropies = tuple(float(e) for e in selection.entropies)
                if selection.mosaic is not None:  # a copy of another file's result carries no mosaic
                    self.selections.put(result.path, selection)
            touched.append(index)
            touched += self._note_content(index)
        if touched:
            self.dataChanged.emit(self.index(min(touched), 0), self.index(max(touched), len(COLUMNS) - 1))

    def _note_content(self, index: int) -> list[int]:
        """Groups the row by its result's sha256 (none: it leaves its group): a later copy says
        which row it duplicates. Returns the rows whose `duplicate_of` may have changed."""
        row = self.rows[index]
        before = self.content.forget(row.path)
        sha = row.result.sha256 if row.result is not None else ""
        self.content.note(row.path, sha, order=index)
        return self._refresh_content({before, sha} - {""}) + [index]

    def _refresh_content(self, shas) -> list[int]:
        """Each holder of these contents names the first one (the first names none); returns their rows."""
        touched = []
        for sha in shas:
            for path in self.content.holders(sha):
                index = self._row_of[path]
                row = self.rows[index]
                row.duplicate_of = self.content.same_as(path)
                if row.result is not None:  # always: a row holds a content by its result's sha256
                    row.result.same_content_as = row.duplicate_of  # the CSV, the case and the report say it too
                touched.append(index)
        return touched

    def restore_rows(self, rows: list[ResultRow]) -> None:
        """Appends rows that already carry results (a reopened case)."""
        rows = [row for row in rows if row.path not in self._row_of]
        if not rows:
            return
        first = len(self.rows)
        self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
        for offset, row in enumerate(rows):
            self._row_of[row.path] = first + offset
            self.rows.append(row)
            if row.result is not None:
                self._note_content(first + offset)
        self.endInsertRows()

    def duplicates_of(self, path: str) -> list[str]:
        return [row.path for row in self.rows if row.duplicate_of == path]

    def set_state(self, paths, state: str) -> None:
        touched = []
        for path in paths:
            index = self._row_of.get(path)
            if index is not None:
                row = self.rows[index]
                row.state, row.result, row.boxes, row.low_entropy = state, None, None, None
                row.entropies, row.checkpoint_sha256, row.device, row.checkpoint = None, "", "", ""
                row.duplicate_of, row.warning = "", ""
                touched.append(index)
                touched += self._refresh_content({self.content.forget(path)} - {""})  # a copy may now come first
        if touched:
            self.dataChanged.emit(self.index(min(touched), 0), self.index(max(touched), len(COLUMNS) - 1))

    def set_stability(self, path: str, stability, sha256: str) -> bool:
        """Stores a stability check in the row's record (its verdict may become inconclusive:
        `unstable`); ignored when the row was rescored or changed meanwhile."""
        index = self._row_of.get(path)
        if index is None:
            return False
        row = self.rows[index]
        if row.state != OK or row.result is None or row.result.sha256 != sha256:
            return False
        row.result.record_spread(stability.all_scores)
        self.dataChanged.emit(self.index(index, 0), self.index(index, len(COLUMNS) - 1))
        return True

    def paths_in_state(self, state: str) -> list[str]:
        return [row.path for row in self.rows if row.state == state]

    def set_threshold(self, threshold: float) -> None:
        if threshold == self.threshold:
            return
        self.threshold = threshold
        if self.rows:
            self.dataChanged.emit(self.index(0, PROB_COL), self.index(len(self.rows) - 1, VERDICT_COL))

    def set_calibration(self, calibration) -> None:
        """The reference scores behind the Real ≥ column and the tooltips (None: none)."""
        self.calibration = calibration
        if self.rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.rows) - 1, len(COLUMNS) - 1))

    def clear(self) -> None:
        self.beginResetModel()
        self.rows.clear()
        self._row_of.clear()
        self._found.clear()
        self.content.clear()
        self.selections.clear()
        self.endResetModel()

    def row_for_path(self, path: str) -> ResultRow | None:
        index = self._row_of.get(path)
        return None if index is None else self.rows[index]

    def scanned_results(self) -> list:
        """ScanRecords of every scanned row, in the order the files were added (the CLI's order)."""
        return [row.result for row in self.rows if row.result is not None]

    def export_records(self, rows=None) -> list:
        """Copies of the ScanRecords of `rows` (default: every row) that are scanned, in the order the
        files were added, each with its row's analyst note and tags (exports carry them)."""
        import dataclasses

        wanted = None if rows is None else {id(row) for row in rows}
        chosen = self.rows if wanted is None else [row for row in self.rows if id(row) in wanted]
        return [dataclasses.replace(row.result, analyst_note=row.analyst_note, tags=list(row.tags))
                for row in chosen if row.result is not None]

    def counts(self) -> dict[str, int]:
        counts = {FAKE: 0, REAL: 0, INCONCLUSIVE: 0, "failed": 0, "pending": 0, "total": len(self.rows)}
        for row in self.rows:
            if row.state == ERROR:
                counts["failed"] += 1
            elif row.state == OK:
                counts[row.verdict(self.threshold) or "failed"] += 1
            else:
                counts["pending"] += 1
        return counts

    def probabilities(self) -> list[float]:
        return [row.probability for row in self.rows if row.probability is not None]

    def _thumbnail_ready(self, path: str) -> None:
        index = self._row_of.get(path)
        if index is not None:
            cell = self.index(index, THUMB_COL)
            self.dataChanged.emit(cell, cell, [Qt.ItemDataRole.DecorationRole])


VERDICT_FILTERS = ("All", "Fake", "Real", "Inconclusive", "Failed", "Not scored yet")


class ResultsFilter(QSortFilterProxyModel):
    """Sorts by each column's natural key and filters by verdict and by text in name/folder."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)
        self._verdict = "All"
        self._text = ""

    def _refilter(self, change) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt >= 6.9: invalidateRowsFilter is deprecated
            self.beginFilterChange()
            change()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            change()
            self.invalidateRowsFilter()

    def set_verdict_filter(self, verdict: str) -> None:
        self._refilter(lambda: setattr(self, "_verdict", verdict))

    def set_text_filter(self, text: str) -> None:
        self._refilter(lambda: setattr(self, "_text", text.strip().lower()))

    def filterAcceptsRow(self, source_row, source_parent) -> bool:
        model = cast(ResultsModel, self.sourceModel())  # the filter only ever sits on a ResultsModel
        row: ResultRow = model.rows[source_row]
        if self._text and self._text not in row.path.lower():
            return False
        if self._verdict == "All":
            return True
        if self._verdict == "Failed":
            return row.state == ERROR
        if self._verdict == "Not scored yet":
            return row.state in (QUEUED, SCANNING, NOT_SCANNED)
        return row.verdict(model.threshold) == self._verdict.lower()

    def lessThan(self, left, right) -> bool:
        a, b = left.data(SORT_ROLE), right.data(SORT_ROLE)
        try:
            return a < b
        except TypeError:
            return str(a) < str(b)
