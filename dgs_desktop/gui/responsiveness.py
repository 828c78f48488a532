"""Measures how responsive the event loop stays: a 10 ms timer records the gaps between ticks.

Shared by the GUI test and `bench/gui_responsiveness.py`, so both measure the same thing.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QEventLoop, QObject, QTimer


class TickRecorder(QObject):
    """Records the time between ticks of a short timer while it runs; a long gap is a stall."""

    def __init__(self, interval_ms: int = 10, parent=None):
        super().__init__(parent)
        self.gaps: list[float] = []
        self._last = time.perf_counter()
        self._timer = QTimer(self, interval=interval_ms)
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self._last)
        self._last = now

    def __enter__(self) -> TickRecorder:
        self._last = time.perf_counter()
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.stop()


def record_gaps(seconds: float | None = None, until=None) -> list[float]:
    """Runs the event loop for `seconds` or until the `until` signal fires; returns the gaps."""
    loop = QEventLoop()
    if until is not None:
        until.connect(loop.quit)
    if seconds is not None:
        QTimer.singleShot(int(seconds * 1000), loop.quit)
    with TickRecorder() as recorder:
        loop.exec()
    return recorder.gaps
