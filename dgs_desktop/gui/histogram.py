"""Histogram of the fake probabilities of the current results, painted with QPainter.

The bins are `dgs_desktop.histogram.threshold_bins` (one edge on the threshold, so no bar
mixes images called real with images called fake), the same bins as the report's chart.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from ..histogram import threshold_bins
from ..verdict import DEFAULT_THRESHOLD, RULE_TEXT
from .results_model import FAKE_COLOR, REAL_COLOR


class ProbabilityHistogram(QWidget):
    """Bars at or below the threshold are drawn as 'real', above it as 'fake'; a line marks it."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.values: list[float] = []
        self.threshold = DEFAULT_THRESHOLD
        self.bins = threshold_bins([], self.threshold)
        self.setMinimumSize(200, 64)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip(f"How the fake probabilities of the listed images are spread; the dashed line is the "
                        f"threshold ({RULE_TEXT}). The axis spans the scores, not always 0 to 1.")

    def sizeHint(self) -> QSize:
        return QSize(320, 80)

    def set_values(self, values: list[float]) -> None:
        self.values = list(values)
        self._rebin()

    def set_threshold(self, threshold: float) -> None:
        self.threshold = threshold
        self._rebin()

    def _rebin(self) -> None:
        self.bins = threshold_bins(self.values, self.threshold)
        self.update()

    @property
    def counts(self) -> tuple[int, ...]:
        return self.bins.counts

    def _plot_rect(self) -> QRectF:
        label_h = self.fontMetrics().height()
        return QRectF(self.rect()).adjusted(4, 4, -4, -label_h - 2)

    def _x(self, plot: QRectF, value: float) -> float:
        low, high = self.bins.edges[0], self.bins.edges[-1]
        return plot.left() + plot.width() * (value - low) / max(high - low, 1e-12)

    def bin_at(self, x: float) -> int:
        plot = self._plot_rect()
        for i in range(len(self.bins.counts)):
            if self._x(plot, self.bins.edges[i]) <= x < self._x(plot, self.bins.edges[i + 1]):
                return i
        return -1

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        i = self.bin_at(event.position().x())
        if i >= 0:
            low, high = self.bins.edges[i], self.bins.edges[i + 1]
            side = "fake" if self.bins.is_fake_bin(i) else "real"
            QToolTip.showText(event.globalPosition().toPoint(),
                              f"{self.bins.counts[i]} image(s) with P(fake) from {low:.3f} to {high:.3f}: {side}", self)
        super().mouseMoveEvent(event)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt name
        painter = QPainter(self)
        palette = self.palette()
        label_h = painter.fontMetrics().height()
        plot = self._plot_rect()
        painter.fillRect(self.rect(), palette.base())
        counts = self.bins.counts
        peak = max(counts, default=0) or 1
        for i, count in enumerate(counts):
            if not count:
                continue
            left, right = self._x(plot, self.bins.edges[i]), self._x(plot, self.bins.edges[i + 1])
            height = max(1.0, plot.height() * count / peak)
            color = QColor(FAKE_COLOR if self.bins.is_fake_bin(i) else REAL_COLOR)
            painter.fillRect(QRectF(left + 0.5, plot.bottom() - height, max(1.0, right - left - 1), height), color)
        axis_pen = QPen(palette.text().color())
        painter.setPen(axis_pen)
        painter.drawLine(plot.bottomLeft(), plot.bottomRight())
        x = self._x(plot, self.threshold)
        painter.setPen(QPen(palette.text().color(), 1, Qt.PenStyle.DashLine))
        painter.drawLine(int(x), int(plot.top()), int(x), int(plot.bottom()))
        painter.setPen(axis_pen)
        baseline = int(plot.bottom()) + 2
        low, high = max(0.0, self.bins.edges[0]), min(1.0, self.bins.edges[-1])
        painter.drawText(QRectF(plot.left(), baseline, 60, label_h), Qt.AlignmentFlag.AlignLeft, f"{low:.3f}")
        painter.drawText(QRectF(plot.right() - 60, baseline, 60, label_h), Qt.AlignmentFlag.AlignRight, f"{high:.3f}")
        painter.drawText(QRectF(plot.left() + 60, baseline, plot.width() - 120, label_h),
                         Qt.AlignmentFlag.AlignHCenter, f"P(fake) · tallest bar {max(counts, default=0)}")
        painter.end()
