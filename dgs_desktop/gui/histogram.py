"""Histogram of the fake probabilities of the current results, painted with QPainter.

The bins adapt to the data (their range spans the scores and the threshold, their number
grows with the count) and one bin edge always lies on the threshold, so no bar mixes images
called real with images called fake. A score equal to the threshold falls on the real side,
as the one verdict rule says (fake when p > threshold).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from ..verdict import DEFAULT_THRESHOLD, FAKE, RULE_TEXT, verdict
from .results_model import FAKE_COLOR, REAL_COLOR

MIN_BINS, MAX_BINS = 8, 40


@dataclass(frozen=True)
class Bins:
    edges: tuple[float, ...]  # len(counts) + 1, increasing; `threshold` is one of them
    counts: tuple[int, ...]
    threshold: float
    split: int  # bins [0, split) are real (p <= threshold), [split, n) fake

    def is_fake_bin(self, index: int) -> bool:
        return index >= self.split


def bin_count(n: int) -> int:
    """About 2·√n bins (more data, finer bins), between MIN_BINS and MAX_BINS."""
    return max(MIN_BINS, min(MAX_BINS, round(2 * math.sqrt(max(n, 1)))))


def threshold_bins(values: list[float], threshold: float, bins: int | None = None) -> Bins:
    """Bins over [min(values, t), max(values, t)] with an edge at the threshold t.

    Left bins are closed on the right (a score equal to t is counted real), right bins hold
    scores strictly above t; each side gets bins in proportion to its width, at least one
    when it holds any score.
    """
    values = [v for v in values if v is not None and math.isfinite(v)]
    total = bins or bin_count(len(values))
    span_of = values or [0.0, 1.0]  # no scores yet: the whole probability axis
    low = min([threshold, *span_of])
    high = max([threshold, *span_of])
    span = max(high - low, 1e-6)
    margin = span * 0.02
    has_left = any(verdict(v, threshold) != FAKE for v in values) or not values
    has_right = any(verdict(v, threshold) == FAKE for v in values) or not values
    left_width = threshold - low + (margin if has_left else 0.0)
    right_width = high - threshold + (margin if has_right else 0.0)
    width = left_width + right_width
    n_left = round(total * left_width / width) if width > 0 else total // 2
    n_left = min(total - (1 if has_right else 0), max(1 if has_left else 0, n_left))
    n_right = total - n_left if has_right else 0
    if not has_right:
        n_left = total
    start = threshold - left_width
    left_step = left_width / n_left if n_left else 0.0
    right_step = right_width / n_right if n_right else 0.0
    edges = [start + i * left_step for i in range(n_left)] + [threshold]
    edges += [threshold + (i + 1) * right_step for i in range(n_right)]
    counts = [0] * (n_left + n_right)
    for v in values:
        if verdict(v, threshold) == FAKE:
            index = n_left + min(n_right - 1, int((v - threshold) / right_step)) if right_step else n_left
        else:
            index = min(n_left - 1, max(0, int((v - start) / left_step))) if left_step else 0
            if v == threshold:
                index = n_left - 1
        counts[index] += 1
    return Bins(edges=tuple(edges), counts=tuple(counts), threshold=threshold, split=n_left)


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
