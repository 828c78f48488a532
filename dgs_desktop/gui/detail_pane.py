"""The selected image: its score, the evidence viewer, the 7x7 mosaic, and the file's facts.

The boxes and mosaic are the very `select_patches` result the score came from: the scan
keeps the boxes with each row and the latest mosaics in a small cache; an older mosaic is
re-cut from the image at those boxes (the same pixels, checked against the scan's sha256).
The file is read once, through the scan's safe reader, on a pool thread; the preview,
mosaic and metadata all come from those bytes. Only painting happens on the GUI thread.

Tabs below the viewer: "Patches" (mosaic, hover facts, stability check), "File" (hashes,
size, metadata, the analyst's note and tags). Other panels (e.g. provenance) are added with
`add_tab`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from PySide6.QtCore import QSize, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QFont, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..detector.patches import GRID
from ..scan.detail import DetailData, load_detail
from .evidence_view import (
    HIGH_ENTROPY_COLOR,
    HIGHLIGHT_COLOR,
    LOW_ENTROPY_COLOR,
    EvidenceView,
    PatchInfo,
    group_counts,
)
from .results_model import ERROR, OK, REAL_COLOR, VERDICT_COLORS, WARNING_COLOR, ResultRow
from .thumbnails import array_to_qimage, pil_to_qimage
from .workers import Task, start_task

PATCH_HINT = ("Hover a patch in the image or the mosaic for its entropy; click a mosaic cell to find its patch "
              "in the image.")
NO_ROW_MESSAGE = "Select a row to see the image and the 49 patches the detector scored."
MOSAIC_CELL_PX = 32  # on-screen size of one mosaic cell


@dataclass
class ShownDetail:
    """A loaded detail (`scan.detail.DetailData`) with its preview and mosaic as QImages."""

    data: DetailData
    preview: QImage
    mosaic: QImage | None


def load_detail_unless_cancelled(*args, report, cancelled) -> ShownDetail:
    """Runs on a pool thread: `scan.detail.load_detail`, then the QImages (QImage is safe off
    the GUI thread; only painting happens on it). A row the user has left is not loaded."""
    if cancelled():
        raise InterruptedError("another row was selected")
    data = load_detail(*args)
    return ShownDetail(data, pil_to_qimage(data.preview), None if data.mosaic is None else array_to_qimage(data.mosaic))


def render_mosaic(mosaic: QImage, low_entropy, zoom: int = 1, highlight: int | None = None) -> QPixmap:
    """The 7x7 mosaic with a thin frame per cell in its entropy colour; `highlight` framed thick."""
    pixmap = QPixmap.fromImage(mosaic.scaled(mosaic.width() * zoom, mosaic.height() * zoom))
    grid = int(round(len(low_entropy) ** 0.5)) or 1
    cell = pixmap.width() / grid
    painter = QPainter(pixmap)
    for i, low in enumerate(low_entropy):
        r, c = divmod(i, grid)
        painter.setPen(QPen(LOW_ENTROPY_COLOR if low else HIGH_ENTROPY_COLOR, 1))
        painter.drawRect(int(c * cell), int(r * cell), int(cell) - 1, int(cell) - 1)
    if highlight is not None and 0 <= highlight < grid * grid:
        r, c = divmod(highlight, grid)
        painter.setPen(QPen(HIGHLIGHT_COLOR, 3))
        painter.drawRect(int(c * cell) + 1, int(r * cell) + 1, int(cell) - 3, int(cell) - 3)
    painter.end()
    return pixmap


class MosaicView(QLabel):
    """The mosaic the detector saw; a click on a cell asks for its patch in the image."""

    cell_clicked = Signal(int)
    cell_hovered = Signal(int)  # -1 when the pointer leaves the cells

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFixedSize(GRID * MOSAIC_CELL_PX + 4, GRID * MOSAIC_CELL_PX + 4)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMouseTracking(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.keyboard_cell = 0
        self.default_tip = ("The 7×7 mosaic of 32×32 patches the detector actually saw (224×224 px). "
                            "Click a cell (or move with the arrow keys and press Enter) to find its patch in the image.")
        self.setToolTip(self.default_tip)

    def cell_at(self, x: float, y: float) -> int:
        pixmap = self.pixmap()
        if pixmap is None or pixmap.isNull():
            return -1
        left = (self.width() - pixmap.width()) / 2
        top = (self.height() - pixmap.height()) / 2
        col, row = int((x - left) // MOSAIC_CELL_PX), int((y - top) // MOSAIC_CELL_PX)
        return row * GRID + col if 0 <= col < GRID and 0 <= row < GRID else -1

    def cell_centre(self, cell: int) -> tuple[int, int]:
        row, col = divmod(cell, GRID)
        left, top = (self.width() - GRID * MOSAIC_CELL_PX) // 2, (self.height() - GRID * MOSAIC_CELL_PX) // 2
        return left + col * MOSAIC_CELL_PX + MOSAIC_CELL_PX // 2, top + row * MOSAIC_CELL_PX + MOSAIC_CELL_PX // 2

    def mousePressEvent(self, event) -> None:  # noqa: N802
        cell = self.cell_at(event.position().x(), event.position().y())
        if cell >= 0 and event.button() == Qt.MouseButton.LeftButton:
            self.cell_clicked.emit(cell)
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        self.cell_hovered.emit(self.cell_at(event.position().x(), event.position().y()))
        super().mouseMoveEvent(event)

    def leaveEvent(self, event) -> None:  # noqa: N802
        self.cell_hovered.emit(-1)
        super().leaveEvent(event)

    def keyPressEvent(self, event) -> None:  # noqa: N802
        """Arrow keys move over the cells (each is described as it is reached); Enter or Space
        finds the cell's patch in the image: the mosaic works without a mouse."""
        row, col = divmod(self.keyboard_cell, GRID)
        moves = {Qt.Key.Key_Left: (0, -1), Qt.Key.Key_Right: (0, 1), Qt.Key.Key_Up: (-1, 0), Qt.Key.Key_Down: (1, 0)}
        if event.key() in moves:
            d_row, d_col = moves[event.key()]
            self.keyboard_cell = min(GRID - 1, max(0, row + d_row)) * GRID + min(GRID - 1, max(0, col + d_col))
            self.cell_hovered.emit(self.keyboard_cell)
        elif event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.cell_clicked.emit(self.keyboard_cell)
        else:
            super().keyPressEvent(event)


def _legend_chip() -> QLabel:
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.RichText)
    return label


def legend_texts(counts: dict[str, int]) -> list[tuple[str, str]]:
    """(chip html, tooltip) per entropy group present, counting distinct patches: an image with
    one distinct patch shows "1 in both groups", not "24 low / 25 high"."""
    def chip(color: str, text: str) -> str:
        return f'<span style="color:{color}; font-size:14pt">■</span> {text}'

    low, high = LOW_ENTROPY_COLOR.name(), HIGH_ENTROPY_COLOR.name()
    texts = []
    if counts["low"]:
        texts.append((chip(low, f"{counts['low']} low"),
                      f"Blue: {counts['low']} distinct patch(es) among the lowest spectral entropy (smooth areas)"))
    if counts["high"]:
        texts.append((chip(high, f"{counts['high']} high"),
                      f"Orange: {counts['high']} distinct patch(es) among the highest spectral entropy (detailed areas)"))
    if counts["both"]:
        texts.append((f'<span style="color:{high}; font-size:14pt">■</span><span style="color:{low}; font-size:14pt">'
                      f'■</span> {counts["both"]} in both',
                      f"Orange with blue dashes: {counts['both']} patch(es) used in both groups (the image has fewer "
                      f"than 49 distinct patches, so patches repeat)"))
    return texts


def scrolling(widget: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidget(widget)
    return area


class DetailPane(QWidget):
    loaded = Signal(str)  # path, once the image, outlines and mosaic are shown
    stability_requested = Signal(str)  # path
    annotation_changed = Signal(str, str, object)  # path, note, tags (list[str])

    def __init__(self, parent=None):
        super().__init__(parent)
        self._jobs: set = set()
        self._waiting: Task | None = None
        # One thread of its own: moving through rows quickly drops the decodes nobody waits for
        # (a 12000x12000 image takes seconds) instead of queueing them on the global pool.
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._request = 0
        self.current_path: str | None = None
        self.current_state: str = ""
        self.evidence_shown = False
        self.mosaic_pixmap: QPixmap | None = None
        self._mosaic_image: QImage | None = None
        self._low_entropy: tuple = ()
        self._infos: dict[int, PatchInfo] = {}

        self.name_label = QLabel()  # which file this is: the pane never shows an unnamed image
        self.name_label.setObjectName("detailFileName")
        self.name_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        name_font = QFont(self.name_label.font())
        name_font.setBold(True)
        self.name_label.setFont(name_font)
        self.probability_label = QLabel()
        font = QFont(self.probability_label.font())
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        self.probability_label.setFont(font)
        self.probability_label.setWordWrap(True)
        self.probability_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.reasons_label = QLabel()  # why the verdict is inconclusive, in the rule's own words
        self.reasons_label.setWordWrap(True)
        self.reasons_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.reasons_label.setVisible(False)
        self.warning_label = QLabel()
        self.warning_label.setWordWrap(True)
        self.warning_label.setStyleSheet(f"color: {WARNING_COLOR.name()}; font-weight: bold")
        self.warning_label.setVisible(False)

        self.image_view = EvidenceView()
        self.image_view.patch_hovered.connect(self._patch_hovered)
        self.image_view.zoom_changed.connect(self._zoom_changed)
        self.image_view.pixel_hovered.connect(self._pixel_hovered)
        zoom_bar = QHBoxLayout()
        zoom_bar.setContentsMargins(0, 0, 0, 0)
        self.zoom_buttons = []
        for text, tip, slot in (("Fit", "Fit the image in the view (0)", self.image_view.fit),
                                ("1:1", "Actual pixels: one image pixel per screen pixel (1)", self.image_view.actual_size),
                                ("−", "Zoom out (−, wheel)", self.image_view.zoom_out),
                                ("+", "Zoom in (+, wheel)", self.image_view.zoom_in)):
            button = QToolButton()
            button.setText(text)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            zoom_bar.addWidget(button)
            self.zoom_buttons.append(button)
        self.zoom_label = QLabel()
        self.zoom_label.setMinimumWidth(self.zoom_label.fontMetrics().horizontalAdvance("6400 %"))
        self.zoom_label.setToolTip("Screen pixels per image pixel")
        zoom_bar.addWidget(self.zoom_label)
        self.pixel_label = QLabel()  # x, y and RGB under the pointer
        self.pixel_label.setObjectName("pixelReadout")
        self.pixel_label.setToolTip("The image pixel under the pointer: its coordinates (from the top left, "
                                    "in original pixels) and its decoded RGB value")
        self.pixel_label.setFont(QFont("monospace"))
        self.pixel_label.setMinimumHeight(self.pixel_label.fontMetrics().height())  # no jump when it fills
        zoom_bar.addStretch(1)
        self.legend_chips = [_legend_chip() for _ in range(3)]
        for chip in self.legend_chips:
            zoom_bar.addWidget(chip)
        self._set_legend(None)
        viewer = QWidget()
        viewer_layout = QVBoxLayout(viewer)
        viewer_layout.setContentsMargins(0, 0, 0, 0)
        viewer_layout.addWidget(self.image_view, 1)
        viewer_layout.addLayout(zoom_bar)
        viewer_layout.addWidget(self.pixel_label)  # its own line: the zoom bar stays whole at 1024 px

        # --- Patches tab
        self.mosaic_view = MosaicView()
        self.mosaic_view.cell_clicked.connect(self.show_cell)
        self.mosaic_view.cell_hovered.connect(self._cell_hovered)
        self.patch_info = QLabel(PATCH_HINT)
        self.patch_info.setWordWrap(True)
        self.stability_button = QPushButton("Check stability")
        self.stability_button.setToolTip("Score this image's 49 patches in 8 other mosaic orders and show how "
                                         "much P(fake) moves")
        self.stability_button.clicked.connect(lambda: self.current_path and self.stability_requested.emit(self.current_path))
        self.stability_label = QLabel()
        self.stability_label.setWordWrap(True)
        self.stability_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        patches = QWidget()
        patches_layout = QHBoxLayout(patches)
        mosaic_column = QVBoxLayout()
        mosaic_column.addWidget(QLabel("What the detector saw:"))
        mosaic_column.addWidget(self.mosaic_view)
        mosaic_column.addStretch(1)
        patches_layout.addLayout(mosaic_column)
        info_column = QVBoxLayout()
        info_column.addWidget(self.patch_info)
        info_column.addWidget(self.stability_button, 0, Qt.AlignmentFlag.AlignLeft)
        info_column.addWidget(self.stability_label)
        info_column.addStretch(1)
        patches_layout.addLayout(info_column, 1)

        # --- File tab
        self.facts = QFormLayout()
        self.facts.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.facts.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.note_edit = QPlainTextEdit()
        self.note_edit.setPlaceholderText("Your note on this file (kept in the case)")
        self.note_edit.setMaximumHeight(70)
        self.note_edit.setTabChangesFocus(True)
        self.tags_edit = QLineEdit()
        self.tags_edit.setPlaceholderText("Tags, comma-separated (kept in the case)")
        self._annotation_timer = QTimer(self, singleShot=True, interval=400)
        self._annotation_timer.timeout.connect(self._emit_annotation)
        self.note_edit.textChanged.connect(self._annotation_edited)
        self.tags_edit.textEdited.connect(self._annotation_edited)
        self._loading_annotation = False
        file_tab = QWidget()
        file_layout = QVBoxLayout(file_tab)
        file_layout.addLayout(self.facts)
        annotations = QFormLayout()
        annotations.addRow("Note:", self.note_edit)
        annotations.addRow("Tags:", self.tags_edit)
        file_layout.addLayout(annotations)
        file_layout.addStretch(1)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(scrolling(patches), "Patches")
        self.tabs.addTab(scrolling(file_tab), "File")

        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(viewer)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.name_label)
        layout.addWidget(self.probability_label)
        layout.addWidget(self.reasons_label)
        layout.addWidget(self.warning_label)
        layout.addWidget(self.splitter, 1)
        self.image_view.show_message(NO_ROW_MESSAGE)
        self.set_annotations_enabled(False)

    def add_tab(self, widget: QWidget, title: str) -> int:
        """Adds a panel below the viewer (scrolls when the window is small)."""
        return self.tabs.addTab(scrolling(widget), title)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(300, 360)

    # ----------------------------------------------------------------------------- showing
    def show_row(self, row: ResultRow | None, threshold: float, selection=None) -> None:
        self._request += 1
        self.current_path = None if row is None else row.path
        self.current_state = "" if row is None else row.state
        self.evidence_shown = False
        self.mosaic_pixmap = self._mosaic_image = None
        self._infos = {}
        self.mosaic_view.clear()
        self.mosaic_view.keyboard_cell = 0
        self.mosaic_view.setToolTip(self.mosaic_view.default_tip)
        self.patch_info.setText(PATCH_HINT)  # nothing from the previous image stays
        self.pixel_label.setText("")
        self._set_legend(None)
        self._show_name(row)
        self.stability_label.setText("")
        self.stability_button.setEnabled(row is not None and row.state == OK)
        self._set_facts([])
        self._show_annotation(row)
        if row is None or row.state != OK:
            self._drop_waiting()
        if row is None:
            self.probability_label.setText("")
            self.warning_label.setVisible(False)
            self.reasons_label.setVisible(False)
            self.image_view.show_message(NO_ROW_MESSAGE)
            return
        self._show_probability(row, threshold)
        result = row.result
        self._set_facts(self._base_facts(row))
        if row.state != OK or result is None:  # (an ok or failed row always has its result)
            self.image_view.show_message(f"Not scored yet ({row.state})." if row.state != ERROR or result is None
                                         else f"This file could not be scored: {result.error}")
            return
        self.image_view.show_message("Loading…")
        request = self._request
        task = Task(load_detail_unless_cancelled, row.path, result.sha256, row.boxes, row.low_entropy,
                    row.entropies, selection, pass_hooks=True)
        task.signals.succeeded.connect(lambda data: self._loaded(request, data, row))
        task.signals.failed.connect(lambda message: self._failed(request, message))
        self._drop_waiting()
        self._waiting = start_task(task, self._jobs, self.pool, owner=self)

    def _drop_waiting(self) -> None:
        """A decode that has not started yet returns at once when its turn comes (the user moved on)."""
        if self._waiting is not None:
            self._waiting.cancel()
        self._waiting = None

    def shutdown(self, timeout_ms: int) -> bool:
        self._drop_waiting()
        return self.pool.waitForDone(timeout_ms)

    def _base_facts(self, row: ResultRow) -> list[tuple[str, str]]:
        facts = [("File", row.path)]
        result = row.result
        if result is not None and result.sha256:
            facts.append(("sha256", result.sha256))
        if row.duplicate_of:
            facts.append(("Same content as", row.duplicate_of))
        if row.state == ERROR and result is not None:
            facts.append(("Error", result.error))
        if result is not None:
            facts.append(("Scored by", f"{row.checkpoint or 'unnamed model'} (manifest sha256 "
                                       f"{row.checkpoint_sha256[:16]}…) on {row.device}"))
        return facts

    def refresh_verdict(self, row: ResultRow | None, threshold: float) -> None:
        if row is not None and row.path == self.current_path:
            self._show_probability(row, threshold)

    def _show_probability(self, row: ResultRow, threshold: float) -> None:
        self.warning_label.setText(f"⚠ {row.warning}" if row.warning else "")
        self.warning_label.setVisible(bool(row.warning))
        probability = row.probability
        self.reasons_label.setVisible(False)
        if probability is None:
            self.probability_label.setText(row.status_text)
            self.probability_label.setStyleSheet("")
            return
        assessment = row.assessment(threshold)
        verdict, reasons = assessment.verdict, assessment.reasons
        color = VERDICT_COLORS.get(verdict, REAL_COLOR)
        self.reasons_label.setText("\n".join(f"• {reason}" for reason in reasons))
        self.reasons_label.setStyleSheet(f"color: {color.name()}")
        self.reasons_label.setVisible(bool(reasons))
        self.probability_label.setText(f"P(fake) = {probability:.4f} → {verdict}")
        self.probability_label.setToolTip(row.verdict_explained(threshold))
        self.probability_label.setStyleSheet(f"color: {color.name()}")

    def _loaded(self, request: int, shown: ShownDetail, row: ResultRow) -> None:
        if request != self._request:
            return  # the user moved on to another row
        data = shown.data
        self.image_view.set_image(shown.preview, data.scale, data.full_image, data.size, data.boxes,
                                  data.low_entropy, data.entropies)
        self._infos = {info.cell: info for info in self.image_view.infos}
        self._set_legend(self.image_view.infos)
        if shown.mosaic is not None:
            self._mosaic_image, self._low_entropy = shown.mosaic, data.low_entropy
            self._paint_mosaic(None)
        facts = self._base_facts(row) + data.facts
        if data.warning:
            facts.append(("Warning", data.warning))
        self._set_facts(facts)
        self.evidence_shown = True
        self.loaded.emit(data.path)

    def _failed(self, request: int, message: str) -> None:
        if request == self._request:
            self.image_view.show_message(f"Cannot show this image: {message}")

    def _paint_mosaic(self, highlight: int | None) -> None:
        if self._mosaic_image is None:
            return
        self.mosaic_pixmap = render_mosaic(self._mosaic_image, self._low_entropy, highlight=highlight)
        self.mosaic_view.setPixmap(self.mosaic_pixmap)

    # ----------------------------------------------------------------------- patches
    def show_cell(self, cell: int) -> PatchInfo | None:
        """Centres and highlights the patch of mosaic `cell` in the image."""
        if not self.evidence_shown:
            return None
        self.mosaic_view.keyboard_cell = cell
        info = self.image_view.highlight_cell(cell)
        self._paint_mosaic(cell if info is not None else None)
        self.patch_info.setText(info.describe() if info is not None else "This mosaic cell is empty (black).")
        return info

    def _cell_hovered(self, cell: int) -> None:
        info = self._infos.get(cell)
        if cell >= 0 and self.mosaic_view.hasFocus():
            self._paint_mosaic(cell)  # the keyboard cursor
        if cell >= 0:
            self.mosaic_view.setToolTip(info.describe() if info else "Empty cell (black)")
            self.patch_info.setText(info.describe() if info else "Empty cell (black)")

    def _patch_hovered(self, info) -> None:
        if info is not None:
            self.patch_info.setText(info.describe())

    def _pixel_hovered(self, pixel) -> None:
        if pixel is None:
            self.pixel_label.setText("")
            return
        x, y, (r, g, b) = pixel
        self.pixel_label.setText(f"x {x}, y {y}  RGB ({r}, {g}, {b})")

    def _show_name(self, row: ResultRow | None) -> None:
        self.name_label.setText("" if row is None else row.name)
        self.name_label.setToolTip("" if row is None else row.path)
        self.name_label.setVisible(row is not None)

    def _set_legend(self, infos: list[PatchInfo] | None) -> None:
        """The legend counts the distinct patches of the image shown; hidden without one."""
        texts = legend_texts(group_counts(infos)) if infos else []
        for chip, text in zip(self.legend_chips, texts + [None] * (len(self.legend_chips) - len(texts))):
            chip.setVisible(text is not None)
            if text is not None:
                chip.setText(text[0])
                chip.setToolTip(text[1])

    def legend_text(self) -> str:
        """The legend as plain text, e.g. "24 low / 25 high"."""
        return " / ".join(re.sub(r"<[^>]*>|■", "", chip.text()).strip() for chip in self.legend_chips
                          if not chip.isHidden())

    def _zoom_changed(self, zoom: float) -> None:
        view = self.image_view
        self.zoom_label.setText(f"{zoom * 100:.0f} %")
        self.zoom_label.setToolTip("Screen pixels per image pixel" + (
            "; the overview is downscaled, the zoomed view shows the full-resolution pixels"
            if view.preview_scale < 1 else ""))

    def show_stability(self, path: str, text: str) -> None:
        if path == self.current_path:
            self.stability_label.setText(text)
            self.stability_button.setEnabled(True)

    # ------------------------------------------------------------------ annotations
    def set_annotations_enabled(self, enabled: bool) -> None:
        for widget in (self.note_edit, self.tags_edit):
            widget.setEnabled(enabled)
            widget.setToolTip("" if enabled else "Open or create a case (File menu) to keep notes and tags")

    def _show_annotation(self, row: ResultRow | None) -> None:
        self._loading_annotation = True
        self.note_edit.setPlainText("" if row is None else row.analyst_note)
        self.tags_edit.setText("" if row is None else ", ".join(row.tags))
        self._loading_annotation = False

    def _annotation_edited(self, *args) -> None:
        if not self._loading_annotation and self.current_path:
            self._annotation_timer.start()

    def _emit_annotation(self) -> None:
        if self.current_path:
            tags = [t.strip() for t in self.tags_edit.text().split(",") if t.strip()]
            self.annotation_changed.emit(self.current_path, self.note_edit.toPlainText(), tags)

    def _set_facts(self, facts: list[tuple[str, str]]) -> None:
        while self.facts.rowCount():
            self.facts.removeRow(0)
        for name, value in facts:
            label = QLabel(wrappable(value) if name != "sha256" else f"{value[:32]}\n{value[32:]}")
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setToolTip(value)
            if name == "sha256":
                label.setFont(QFont("monospace"))
                label.setToolTip(f"SHA-256 of the file's bytes, as in the CSV:\n{value}")
            self.facts.addRow(f"{name}:", label)

    def facts_text(self) -> str:
        texts = []
        for i in range(self.facts.count()):
            item = self.facts.itemAt(i)
            widget = item.widget() if item is not None else None
            if isinstance(widget, QLabel):  # the names and the values
                texts.append(widget.text())
        return " ".join(texts)


def wrappable(text: str) -> str:
    """Lets long paths wrap after each separator (zero-width spaces) instead of being clipped."""
    return text.replace("/", "/\u200b").replace("\\", "\\\u200b") if len(text) > 40 else text
