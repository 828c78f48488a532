"""Histogram of the fake probabilities of the current results, painted with QPainter."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from .results_model import FAKE_COLOR, REAL_COLOR

BINS = 20


def bin_counts(values: list[float], bins: int = BINS) -> list[int]:
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, max(0, int(value * bins)))] += 1
    return counts


class ProbabilityHistogram(QWidget):
    """Bars left of the threshold are drawn as 'real', right of it as 'fake'; a line marks it."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.counts = [0] * BINS
        self.threshold = 0.5
        self.setMinimumSize(220, 70)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("How the fake probabilities of the listed images are spread (0 left, 1 right). "
                        "The line is the threshold.")

    def sizeHint(self) -> QSize:
        return QSize(320, 84)

    def set_values(self, values: list[float]) -> None:
        self.counts = bin_counts(values)
        self.update()

    def set_threshold(self, threshold: float) -> None:
        self.threshold = threshold
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt name
        painter = QPainter(self)
        palette = self.palette()
        metrics = painter.fontMetrics()
        label_h = metrics.height()
        plot = QRectF(self.rect()).adjusted(4, 4, -4, -label_h - 2)
        painter.fillRect(self.rect(), palette.base())
        peak = max(self.counts) or 1
        width = plot.width() / BINS
        for i, count in enumerate(self.counts):
            if not count:
                continue
            height = max(1.0, plot.height() * count / peak)
            color = QColor(FAKE_COLOR if (i + 0.5) / BINS >= self.threshold else REAL_COLOR)
            bar = QRectF(plot.left() + i * width + 1, plot.bottom() - height, width - 2, height)
            painter.fillRect(bar, color)
        axis_pen = QPen(palette.text().color())
        painter.setPen(axis_pen)
        painter.drawLine(plot.bottomLeft(), plot.bottomRight())
        x = plot.left() + plot.width() * self.threshold
        painter.setPen(QPen(palette.text().color(), 1, Qt.PenStyle.DashLine))
        painter.drawLine(int(x), int(plot.top()), int(x), int(plot.bottom()))
        painter.setPen(axis_pen)
        baseline = int(plot.bottom()) + 2
        painter.drawText(QRectF(plot.left(), baseline, 40, label_h), Qt.AlignmentFlag.AlignLeft, "0")
        painter.drawText(QRectF(plot.right() - 40, baseline, 40, label_h), Qt.AlignmentFlag.AlignRight, "1")
        painter.drawText(QRectF(plot.left(), baseline, plot.width(), label_h), Qt.AlignmentFlag.AlignHCenter,
                         f"P(fake), max {max(self.counts)} per bar")
        painter.end()
