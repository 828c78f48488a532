"""The selected image with its 49 scored patches outlined, the 7x7 mosaic, and its facts.

The boxes and mosaic are the very `select_patches` result the score came from: the scan
keeps the boxes with each row and the latest mosaics in a small cache; an older mosaic is
re-cut from the image at those boxes (the same pixels, checked against the scan's sha256).
Decoding runs on a pool thread; only painting happens on the GUI thread.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QFormLayout, QFrame, QHBoxLayout, QLabel, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

from .results_model import ERROR, FAKE_COLOR, OK, REAL_COLOR, ResultRow
from .thumbnails import pil_to_qimage
from .workers import Task, start_task

LOW_ENTROPY_COLOR = QColor("#1e88e5")  # blue: the 24 smoothest patches
HIGH_ENTROPY_COLOR = QColor("#ff9800")  # orange: the 25 busiest patches (blue/orange: colour-blind safe)
PREVIEW_MAX_SIDE = 1600
PATCH = 32


@dataclass
class DetailData:
    path: str
    preview: QImage | None = None
    scale: float = 1.0  # preview pixels per original pixel
    mosaic: QImage | None = None
    boxes: tuple = ()
    low_entropy: tuple = ()
    facts: list[tuple[str, str]] = field(default_factory=list)
    warning: str = ""


def rebuild_mosaic(rgb: np.ndarray, boxes) -> np.ndarray:
    """The 224x224 mosaic from the image and the scan's boxes (cell i = boxes[i], row-major).

    Boxes narrower than 32 px (images smaller than a patch) are padded by repeating the
    last row/column, as `select_patches` does.
    """
    grid = int(round(len(boxes) ** 0.5))
    mosaic = np.zeros((grid * PATCH, grid * PATCH, 3), dtype=np.uint8)
    for i, (x, y, w, h) in enumerate(boxes):
        if w == 0 or h == 0:  # a black cell (small images: the authors' rule leaves them empty)
            continue
        patch = rgb[y:y + h, x:x + w]
        if patch.shape[0] < PATCH or patch.shape[1] < PATCH:
            patch = np.pad(patch, ((0, PATCH - patch.shape[0]), (0, PATCH - patch.shape[1]), (0, 0)), mode="edge")
        r, c = divmod(i, grid)
        mosaic[r * PATCH:(r + 1) * PATCH, c * PATCH:(c + 1) * PATCH] = patch
    return mosaic


def array_to_qimage(rgb: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(rgb)
    height, width = rgb.shape[:2]
    return QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def read_metadata(path: str) -> list[tuple[str, str]]:
    """A few facts a reviewer looks at: camera, software, dates, PNG text (e.g. generator prompts)."""
    from PIL import ExifTags, Image

    facts = []
    try:
        with Image.open(path) as image:
            exif = image.getexif()
            for tag in (0x010F, 0x0110, 0x0131, 0x0132):  # Make, Model, Software, DateTime
                if tag in exif:
                    facts.append((ExifTags.TAGS.get(tag, str(tag)), str(exif[tag]).strip("\x00 ")[:120]))
            for key, value in image.info.items():
                if isinstance(value, str) and key.lower() not in ("icc_profile",):
                    text = " ".join(value.split())
                    facts.append((key, text[:160] + ("…" if len(text) > 160 else "")))
            if image.info.get("icc_profile"):
                facts.append(("ICC profile", "present"))
    except Exception:  # noqa: BLE001 - metadata is a bonus; the decode error is shown elsewhere
        pass
    return facts[:12]


def load_detail(path: str, sha256: str, boxes, low_entropy, selection) -> DetailData:
    """Runs on a pool thread: decode like the scan did, cut the preview and mosaic."""
    from PIL import Image

    from ..scan.decode import decode_image

    decoded = decode_image(path)
    data = DetailData(path=path, boxes=tuple(boxes or ()), low_entropy=tuple(low_entropy or ()))
    if sha256 and decoded.sha256 != sha256:
        data.warning = "The file changed after it was scanned; the outlines show the scanned version's patches."
    image = decoded.image
    if selection is not None:
        data.mosaic = array_to_qimage(selection.mosaic)
    elif data.boxes:
        data.mosaic = array_to_qimage(rebuild_mosaic(np.asarray(image), data.boxes))
    longest = max(image.width, image.height)
    if longest > PREVIEW_MAX_SIDE:
        data.scale = PREVIEW_MAX_SIDE / longest
        image = image.resize((max(1, round(image.width * data.scale)), max(1, round(image.height * data.scale))),
                             Image.Resampling.BILINEAR)
    data.preview = pil_to_qimage(image)
    size_kb = os.path.getsize(path) / 1024
    data.facts = [("Size", f"{decoded.width} × {decoded.height} px, {size_kb:,.0f} KB"),
                  ("Format", f"{decoded.format}, {decoded.mode}")]
    if decoded.notes:
        data.facts.append(("Notes", "; ".join(decoded.notes)))
    data.facts += read_metadata(path)
    return data


def outline_pen_width(preview: QImage) -> int:
    # Thick enough to survive the pane shrinking a large preview to fit.
    return max(2, round(max(preview.width(), preview.height()) / 350))


def render_overlay(preview: QImage, boxes, low_entropy, scale: float = 1.0) -> QPixmap:
    """The preview with each scored patch outlined: blue = low entropy, orange = high."""
    pixmap = QPixmap.fromImage(preview)
    painter = QPainter(pixmap)
    width = outline_pen_width(preview)
    for (x, y, w, h), low in zip(boxes, low_entropy):
        pen = QPen(LOW_ENTROPY_COLOR if low else HIGH_ENTROPY_COLOR, width)
        pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
        painter.setPen(pen)
        # Inset by half the pen so the outline lies inside the patch and neighbours stay distinct.
        inset = width / 2
        left, top = x * scale + inset, y * scale + inset
        painter.drawRect(int(left), int(top), max(1, int(w * scale - width)), max(1, int(h * scale - width)))
    painter.end()
    return pixmap


def render_mosaic(mosaic: QImage, low_entropy, zoom: int = 1) -> QPixmap:
    """The 7x7 mosaic with a thin frame per cell in its entropy colour."""
    pixmap = QPixmap.fromImage(mosaic.scaled(mosaic.width() * zoom, mosaic.height() * zoom))
    grid = int(round(len(low_entropy) ** 0.5)) or 1
    cell = pixmap.width() / grid
    painter = QPainter(pixmap)
    for i, low in enumerate(low_entropy):
        r, c = divmod(i, grid)
        painter.setPen(QPen(LOW_ENTROPY_COLOR if low else HIGH_ENTROPY_COLOR, 1))
        painter.drawRect(int(c * cell), int(r * cell), int(cell) - 1, int(cell) - 1)
    painter.end()
    return pixmap


class FittedImage(QLabel):
    """Shows a pixmap scaled to fit, keeping its aspect ratio, never upscaled past 2x."""

    def __init__(self, placeholder: str, parent=None):
        super().__init__(placeholder, parent)
        self._pixmap: QPixmap | None = None
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(160, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setWordWrap(True)

    def set_source(self, pixmap: QPixmap | None, placeholder: str = "") -> None:
        self._pixmap = pixmap
        if pixmap is None:
            self.clear()
            self.setText(placeholder)
        self._refit()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._refit()

    def _refit(self) -> None:
        if self._pixmap is None or self._pixmap.isNull():
            return
        bound = self._pixmap.size() * 2
        target = self.size().boundedTo(bound) if self.width() > 1 else self._pixmap.size()
        self.setPixmap(self._pixmap.scaled(target, Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.SmoothTransformation))

    def sizeHint(self) -> QSize:
        return QSize(480, 360)


def _legend_chip(color: QColor, text: str) -> QLabel:
    label = QLabel(f'<span style="color:{color.name()}; font-size:14pt">■</span> {text}')
    label.setTextFormat(Qt.TextFormat.RichText)
    return label


class DetailPane(QWidget):
    loaded = Signal(str)  # path, once the preview and mosaic are shown

    def __init__(self, parent=None):
        super().__init__(parent)
        self._jobs: set = set()
        self._request = 0
        self.current_path: str | None = None
        self.overlay_pixmap: QPixmap | None = None
        self.mosaic_pixmap: QPixmap | None = None

        self.image_view = FittedImage("Select a row to see the image and the 49 patches the detector scored.")
        self.image_view.setToolTip("The image with the 49 patches the detector looked at outlined")
        legend = QHBoxLayout()
        legend.addWidget(_legend_chip(LOW_ENTROPY_COLOR, "24 low-entropy (smooth) patches"))
        legend.addWidget(_legend_chip(HIGH_ENTROPY_COLOR, "25 high-entropy (detailed) patches"))
        legend.addStretch(1)

        self.mosaic_view = QLabel()
        self.mosaic_view.setFixedSize(228, 228)
        self.mosaic_view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.mosaic_view.setFrameShape(QFrame.Shape.StyledPanel)
        self.mosaic_view.setToolTip("The 7×7 mosaic of 32×32 patches the detector actually saw (224×224 px)")

        self.probability_label = QLabel()
        font = QFont(self.probability_label.font())
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        self.probability_label.setFont(font)
        self.facts = QFormLayout()
        self.facts.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.facts.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        facts_box = QWidget()
        facts_layout = QVBoxLayout(facts_box)
        facts_layout.setContentsMargins(0, 0, 0, 0)
        facts_layout.addWidget(self.probability_label)
        facts_layout.addLayout(self.facts)
        facts_layout.addStretch(1)
        facts_scroll = QScrollArea()
        facts_scroll.setWidgetResizable(True)
        facts_scroll.setFrameShape(QFrame.Shape.NoFrame)
        facts_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        facts_scroll.setWidget(facts_box)

        bottom = QHBoxLayout()
        mosaic_column = QVBoxLayout()
        mosaic_column.addWidget(QLabel("What the detector saw:"))
        mosaic_column.addWidget(self.mosaic_view)
        mosaic_column.addStretch(1)
        bottom.addLayout(mosaic_column)
        bottom.addWidget(facts_scroll, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.image_view, 1)
        layout.addLayout(legend)
        layout.addLayout(bottom)

    # ----------------------------------------------------------------------------- showing
    def show_row(self, row: ResultRow | None, threshold: float, selection=None) -> None:
        self._request += 1
        self.current_path = None if row is None else row.path
        self.overlay_pixmap = self.mosaic_pixmap = None
        self.mosaic_view.clear()
        self._set_facts([])
        if row is None:
            self.probability_label.setText("")
            self.image_view.set_source(None, "Select a row to see the image and the 49 patches the detector scored.")
            return
        self._show_probability(row, threshold)
        base_facts = [("File", row.path)]
        result = row.result
        if result is not None and result.sha256:
            base_facts.append(("sha256", result.sha256))
        if row.state == ERROR:
            base_facts.append(("Error", result.error if result is not None else ""))
        self._set_facts(base_facts)
        if row.state != OK:
            self.image_view.set_source(None, "Not scored yet." if row.state != ERROR
                                       else f"This file could not be scored: {result.error}")
            return
        self.image_view.set_source(None, "Loading…")
        request = self._request
        task = Task(load_detail, row.path, result.sha256, row.boxes, row.low_entropy, selection)
        task.signals.succeeded.connect(lambda data: self._loaded(request, data, base_facts))
        task.signals.failed.connect(lambda message: self._failed(request, message))
        start_task(task, self._jobs)

    def refresh_verdict(self, row: ResultRow | None, threshold: float) -> None:
        if row is not None and row.path == self.current_path:
            self._show_probability(row, threshold)

    def _show_probability(self, row: ResultRow, threshold: float) -> None:
        probability = row.probability
        if probability is None:
            self.probability_label.setText(row.state)
            self.probability_label.setStyleSheet("")
            return
        verdict = row.verdict(threshold)
        color = FAKE_COLOR if verdict == "fake" else REAL_COLOR
        self.probability_label.setText(f"P(fake) = {probability:.4f}  →  {verdict}")
        self.probability_label.setStyleSheet(f"color: {color.name()}")

    def _loaded(self, request: int, data: DetailData, base_facts) -> None:
        if request != self._request:
            return  # the user moved on to another row
        self.overlay_pixmap = render_overlay(data.preview, data.boxes, data.low_entropy, data.scale)
        self.image_view.set_source(self.overlay_pixmap)
        if data.mosaic is not None:
            self.mosaic_pixmap = render_mosaic(data.mosaic, data.low_entropy)
            self.mosaic_view.setPixmap(self.mosaic_pixmap)
        facts = list(base_facts) + data.facts
        if data.warning:
            facts.append(("Warning", data.warning))
        self._set_facts(facts)
        self.loaded.emit(data.path)

    def _failed(self, request: int, message: str) -> None:
        if request == self._request:
            self.image_view.set_source(None, f"Cannot show this image: {message}")

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


def wrappable(text: str) -> str:
    """Lets long paths wrap after each separator (zero-width spaces) instead of being clipped."""
    return text.replace("/", "/\u200b").replace("\\", "\\\u200b") if len(text) > 40 else text
