"""The application icon: a 7x7 patch mosaic (blue = smooth, orange = detailed patches) with a
magnifier, the picture of what the detector looks at. `gui/assets/dgs-desktop.png` (shipped in
the wheel, read through importlib.resources) is rendered from this; the app falls back to
painting it should the file be missing."""

from __future__ import annotations

from importlib import resources

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPen, QPixmap

ICON_NAME = "dgs-desktop.png"
# 1 = low entropy (blue), 0 = high entropy (orange): a fixed, balanced pattern.
PATTERN = ("1010011", "0101100", "1100101", "0011010", "1010101", "0110010", "1001101")


def paint_icon(size: int = 256) -> QImage:
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    scale = size / 256
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor("#17253d"))
    painter.drawRoundedRect(QRectF(8 * scale, 8 * scale, 240 * scale, 240 * scale), 44 * scale, 44 * scale)
    cell = 26 * scale
    origin = 37 * scale
    for r, line in enumerate(PATTERN):
        for c, bit in enumerate(line):
            painter.setBrush(QColor("#1e88e5") if bit == "1" else QColor("#ff9800"))
            painter.drawRoundedRect(QRectF(origin + c * cell + 2 * scale, origin + r * cell + 2 * scale,
                                           cell - 4 * scale, cell - 4 * scale), 3 * scale, 3 * scale)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.setPen(QPen(QColor("white"), 14 * scale, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
    centre = QPointF(150 * scale, 150 * scale)
    painter.drawEllipse(centre, 52 * scale, 52 * scale)
    painter.drawLine(QPointF(188 * scale, 188 * scale), QPointF(226 * scale, 226 * scale))
    painter.end()
    return image


def app_icon() -> QIcon:
    packaged = resources.files(__package__).joinpath("assets").joinpath(ICON_NAME)
    if packaged.is_file():
        pixmap = QPixmap()
        if pixmap.loadFromData(packaged.read_bytes()):
            return QIcon(pixmap)
    icon = QIcon()
    for size in (16, 32, 64, 128, 256):
        icon.addPixmap(QPixmap.fromImage(paint_icon(size)))
    return icon
