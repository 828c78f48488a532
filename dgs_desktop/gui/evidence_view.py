"""The evidence viewer: the image with its 49 scored patches, zoomable down to single pixels.

Scene coordinates are the original image's pixels, so patch boxes from the scan are drawn
as they are. The overview is a downscaled preview (a 12000x12000 photo would not fit in a
pixmap comfortably); once the zoom asks for more detail than the preview has, the visible
region is cut from the full-resolution image and laid over it ("full pixels on zoom").
Outlines use cosmetic pens, so they stay a few screen pixels wide at any zoom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPen, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QLabel,
)

LOW_ENTROPY_COLOR = QColor("#1e88e5")  # blue: the 24 smoothest patches
HIGH_ENTROPY_COLOR = QColor("#ff9800")  # orange: the 25 busiest patches (blue/orange: colour-blind safe)
HIGHLIGHT_COLOR = QColor("#e040fb")  # magenta: the patch picked in the mosaic
ZOOM_STEP = 1.25
MIN_ZOOM, MAX_ZOOM = 0.01, 64.0
DETAIL_MAX_SIDE = 4096  # the full-resolution cut is never larger than this, in pixels


@dataclass(frozen=True)
class PatchInfo:
    """One mosaic cell's patch. `shared_low` holds the group of every cell showing the same
    pixels (a small image has fewer than 49 distinct patches, so one patch can fill cells of
    both groups); it is empty when the patch fills this cell alone."""

    cell: int  # mosaic cell, row-major 7x7
    box: tuple[int, int, int, int]
    low: bool
    entropy: float | None
    shared_low: tuple[bool, ...] = ()

    @property
    def group(self) -> str:
        return "low-entropy (smooth) group" if self.low else "high-entropy (detailed) group"

    @property
    def kind(self) -> str:
        """The patch's group over every cell it fills: "low", "high" or "both"."""
        groups = set(self.shared_low or (self.low,))
        return "both" if len(groups) == 2 else "low" if self.low else "high"

    def describe(self) -> str:
        """The one description of this patch: the viewer's tooltip and the hover text both use it."""
        x, y, w, h = self.box
        entropy = "" if self.entropy is None else f"spectral entropy {self.entropy:.3f} bits, "
        row, col = divmod(self.cell, 7)
        text = (f"Patch in mosaic cell {self.cell + 1} (row {row + 1}, column {col + 1}) at x={x}, y={y} "
                f"({w}×{h} px): {entropy}{self.group}")
        if len(self.shared_low) > 1:
            low = sum(self.shared_low)
            text += (f". The same pixels fill {len(self.shared_low)} mosaic cells ({low} in the low-entropy group, "
                     f"{len(self.shared_low) - low} in the high-entropy group): the image has fewer than 49 "
                     f"distinct patches")
        return text


def patch_infos(boxes, low_entropy, entropies=None) -> list[PatchInfo]:
    """One PatchInfo per non-empty mosaic cell (an empty cell has the box (0, 0, 0, 0))."""
    cells = [(cell, (int(box[0]), int(box[1]), int(box[2]), int(box[3])), bool(low))
             for cell, (box, low) in enumerate(zip(boxes or (), low_entropy or ())) if box[2] > 0 and box[3] > 0]
    groups_of_box: dict[tuple, list[bool]] = {}
    for _, box, low in cells:
        groups_of_box.setdefault(box, []).append(low)
    infos = []
    for cell, box, low in cells:
        entropy = None if entropies is None or not len(entropies) or cell >= len(entropies) else float(entropies[cell])
        shared = tuple(groups_of_box[box]) if len(groups_of_box[box]) > 1 else ()
        infos.append(PatchInfo(cell, box, low, entropy, shared))
    return infos


def distinct_patches(infos: list[PatchInfo]) -> list[PatchInfo]:
    """The first cell of each distinct box: one outline, one tooltip per patch in the image."""
    seen: dict[tuple, PatchInfo] = {}
    for info in infos:
        seen.setdefault(info.box, info)
    return list(seen.values())


def group_counts(infos: list[PatchInfo]) -> dict[str, int]:
    """Distinct patches per group ("low", "high", "both"): what the legend counts."""
    counts = {"low": 0, "high": 0, "both": 0}
    for info in distinct_patches(infos):
        counts[info.kind] += 1
    return counts


def pixel_transformation(zoom: float) -> Qt.TransformationMode:
    """Smooth only while shrinking; above 100 % every image pixel is a sharp square
    (nearest neighbour), which is what an examiner inspects."""
    return Qt.TransformationMode.SmoothTransformation if zoom <= 1.0 else Qt.TransformationMode.FastTransformation


def cosmetic_pen(color: QColor, width: float) -> QPen:
    pen = QPen(color, width)
    pen.setCosmetic(True)  # width in screen pixels: visible at any zoom
    pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
    return pen


class EvidenceView(QGraphicsView):
    """Fit, 1:1, wheel and key zoom, patch outlines, a highlighted patch, hover facts."""

    zoom_changed = Signal(float)  # screen pixels per image pixel
    patch_hovered = Signal(object)  # PatchInfo or None
    pixel_hovered = Signal(object)  # (x, y, (r, g, b)) of the image pixel under the pointer, or None

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.BoundingRectViewportUpdate)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setBackgroundBrush(QBrush(QColor("#303030")))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setMinimumSize(200, 160)
        self.setToolTip("Wheel or +/− zoom, 0 fits, 1 shows actual pixels; drag to pan. "
                        "Hover a patch for its entropy; click a mosaic cell to find its patch.")
        self.full_image = None  # PIL RGB image at full resolution, for the zoomed cut
        self.preview_scale = 1.0  # preview pixels per image pixel
        self.infos: list[PatchInfo] = []
        self.outlines: list[QGraphicsRectItem] = []
        self.highlighted: PatchInfo | None = None
        self.fit_mode = True
        self._overview: QGraphicsPixmapItem | None = None
        self._detail: QGraphicsPixmapItem | None = None
        self._detail_rect = QRectF()
        self._highlight: QGraphicsRectItem | None = None
        self._image_rect = QRectF()
        self._placeholder = QLabel(self)
        self._placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._placeholder.setWordWrap(True)
        self._placeholder.setStyleSheet("color: #e0e0e0; padding: 12px")
        self._detail_timer = QTimer(self, singleShot=True, interval=60)
        self._detail_timer.timeout.connect(self._update_detail)
        self.horizontalScrollBar().valueChanged.connect(lambda _: self._detail_timer.start())
        self.verticalScrollBar().valueChanged.connect(lambda _: self._detail_timer.start())

    # ------------------------------------------------------------------------- content
    @property
    def has_image(self) -> bool:
        return self._overview is not None

    def text(self) -> str:
        return self._placeholder.text() if self._placeholder.isVisible() else ""

    def show_message(self, message: str) -> None:
        self.clear_image()
        self._placeholder.setText(message)
        self._placeholder.setVisible(True)
        self._placeholder.setGeometry(self.viewport().geometry())

    def clear_image(self) -> None:
        self.scene().clear()
        self._overview = self._detail = self._highlight = None
        self.outlines, self.infos, self.highlighted, self.full_image = [], [], None, None
        self._image_rect = QRectF()

    def set_image(self, preview: QImage, preview_scale: float, full_image, size: tuple[int, int],
                  boxes, low_entropy, entropies=None) -> None:
        """Shows `preview` (the image downscaled by `preview_scale`) with the patch outlines."""
        self.clear_image()
        self._placeholder.setVisible(False)
        self.full_image, self.preview_scale = full_image, preview_scale
        width, height = size
        self._image_rect = QRectF(0, 0, width, height)
        self.scene().setSceneRect(self._image_rect)
        self._overview = QGraphicsPixmapItem(QPixmap.fromImage(preview))
        self._overview.setScale(1.0 / preview_scale)
        self._overview.setZValue(0)
        self.scene().addItem(self._overview)
        self.infos = patch_infos(boxes, low_entropy, entropies)
        for info in distinct_patches(self.infos):  # a patch shown in several cells is outlined once
            x, y, w, h = info.box
            item = QGraphicsRectItem(QRectF(x, y, w, h))
            item.setPen(cosmetic_pen(LOW_ENTROPY_COLOR if info.kind == "low" else HIGH_ENTROPY_COLOR, 2))
            item.setZValue(2)
            item.setToolTip(info.describe())
            self.scene().addItem(item)
            self.outlines.append(item)
            if info.kind == "both":  # in both groups: blue dashes over the orange frame
                dashes = QGraphicsRectItem(QRectF(x, y, w, h), item)
                pen = cosmetic_pen(LOW_ENTROPY_COLOR, 2)
                pen.setStyle(Qt.PenStyle.DashLine)
                dashes.setPen(pen)
                dashes.setToolTip(info.describe())
        self.fit()

    # ---------------------------------------------------------------------------- zoom
    @property
    def zoom(self) -> float:
        """Screen pixels per image pixel."""
        return self.transform().m11()

    def set_zoom(self, zoom: float, fit_mode: bool = False) -> None:
        zoom = min(MAX_ZOOM, max(MIN_ZOOM, zoom))
        self.fit_mode = fit_mode
        factor = zoom / self.zoom
        self.scale(factor, factor)
        self._zoomed()

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom * ZOOM_STEP)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom / ZOOM_STEP)

    def actual_size(self) -> None:
        self.set_zoom(1.0)

    def fit(self) -> None:
        if self._image_rect.isEmpty():
            return
        self.resetTransform()
        viewport = self.viewport().rect().adjusted(4, 4, -4, -4)
        zoom = min(viewport.width() / self._image_rect.width(), viewport.height() / self._image_rect.height())
        self.fit_mode = True
        self.scale(zoom, zoom)
        self.centerOn(self._image_rect.center())
        self._zoomed()

    def _zoomed(self) -> None:
        if self._overview is not None:  # the overview's own pixels are magnified by zoom / preview_scale
            self._overview.setTransformationMode(pixel_transformation(self.zoom / self.preview_scale))
        if self._detail is not None:
            self._detail.setTransformationMode(pixel_transformation(self.zoom))
        self.zoom_changed.emit(self.zoom)
        self._detail_timer.start()

    def wheelEvent(self, event) -> None:  # noqa: N802
        steps = event.angleDelta().y() / 120
        if steps:
            self.set_zoom(self.zoom * ZOOM_STEP ** steps)
        event.accept()

    def keyPressEvent(self, event) -> None:  # noqa: N802
        key = event.key()
        if key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_in()
        elif key == Qt.Key.Key_Minus:
            self.zoom_out()
        elif key == Qt.Key.Key_0:
            self.fit()
        elif key == Qt.Key.Key_1:
            self.actual_size()
        else:
            super().keyPressEvent(event)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._placeholder.setGeometry(self.viewport().geometry())
        if self.fit_mode:
            self.fit()

    # ---------------------------------------------------------------- full-res detail
    def visible_image_rect(self) -> QRectF:
        return self.mapToScene(self.viewport().rect()).boundingRect().intersected(self._image_rect)

    def _update_detail(self) -> None:
        """Lays the full-resolution pixels of the visible region over the preview when needed."""
        if self.full_image is None or self._overview is None or self.preview_scale >= 1.0:
            return  # the overview already has every pixel
        if self.zoom <= self.preview_scale * 1.01:
            if self._detail is not None:
                self._detail.setVisible(False)
            return
        rect = self.visible_image_rect().toAlignedRect()
        if rect.isEmpty():
            return
        if self._detail is not None and self._detail.isVisible() and self._detail_rect.contains(QRectF(rect)):
            return
        # Cut at screen resolution (never more than the image has), with a margin for panning.
        margin_x, margin_y = rect.width() // 4, rect.height() // 4
        left, top = max(0, rect.left() - margin_x), max(0, rect.top() - margin_y)
        right = min(int(self._image_rect.width()), rect.right() + 1 + margin_x)
        bottom = min(int(self._image_rect.height()), rect.bottom() + 1 + margin_y)
        density = min(1.0, self.zoom, DETAIL_MAX_SIDE / max(right - left, bottom - top))
        region = self.full_image.crop((left, top, right, bottom))
        if density < 1.0:
            region = region.resize((max(1, round(region.width * density)), max(1, round(region.height * density))))
        from .thumbnails import pil_to_qimage

        pixmap = QPixmap.fromImage(pil_to_qimage(region))
        if self._detail is None:
            self._detail = QGraphicsPixmapItem()
            self._detail.setZValue(1)
            self.scene().addItem(self._detail)
        self._detail.setPixmap(pixmap)
        self._detail.setTransformationMode(pixel_transformation(self.zoom))
        self._detail.setPos(left, top)
        self._detail.setScale((right - left) / region.width)
        self._detail.setVisible(True)
        self._detail_rect = QRectF(left, top, right - left, bottom - top)

    @property
    def showing_full_pixels(self) -> bool:
        return self._detail is not None and self._detail.isVisible()

    # ------------------------------------------------------------------ patches
    def patch_at(self, scene_point: QPointF) -> PatchInfo | None:
        for info in self.infos:
            x, y, w, h = info.box
            if x <= scene_point.x() < x + w and y <= scene_point.y() < y + h:
                return info
        return None

    def highlight_cell(self, cell: int) -> PatchInfo | None:
        """Centres the patch shown in mosaic `cell` and outlines it; zooms in if it is tiny."""
        info = next((i for i in self.infos if i.cell == cell), None)
        if self._highlight is not None:
            self.scene().removeItem(self._highlight)
            self._highlight = None
        self.highlighted = info
        if info is None:
            return None
        x, y, w, h = info.box
        self._highlight = QGraphicsRectItem(QRectF(x, y, w, h))
        pen = cosmetic_pen(HIGHLIGHT_COLOR, 4)
        self._highlight.setPen(pen)
        self._highlight.setBrush(QBrush(QColor(224, 64, 251, 50)))
        self._highlight.setZValue(3)
        self._highlight.setToolTip(info.describe())
        self.scene().addItem(self._highlight)
        if max(w, h) * self.zoom < 16:  # too small to see: bring it to 64 screen pixels, with context
            self.set_zoom(64 / max(w, h))
        self.centerOn(QPointF(x + w / 2, y + h / 2))
        return info

    def pixel_at(self, scene_point: QPointF) -> tuple[int, int, tuple[int, int, int]] | None:
        """(x, y, (r, g, b)) of the full-resolution pixel at `scene_point`, None outside the image.
        The value is the decoded RGB pixel, the one the detector's patches were cut from."""
        x, y = math.floor(scene_point.x()), math.floor(scene_point.y())
        if self.full_image is None or not (0 <= x < self._image_rect.width() and 0 <= y < self._image_rect.height()):
            return None
        r, g, b = self.full_image.getpixel((x, y))[:3]
        return x, y, (int(r), int(g), int(b))

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        super().mouseMoveEvent(event)
        point = self.mapToScene(event.position().toPoint())
        self.patch_hovered.emit(self.patch_at(point))
        self.pixel_hovered.emit(self.pixel_at(point))

    def leaveEvent(self, event) -> None:  # noqa: N802
        self.pixel_hovered.emit(None)
        super().leaveEvent(event)
