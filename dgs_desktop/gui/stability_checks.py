"""The stability check: the shown image's 49 patches scored in 8 other mosaic orders.

The detail pane runs it by itself for every scored image it shows, after the scan's batches
(on the scan's model thread); a check queued for an image no longer shown is dropped before it
costs anything. The spread goes into the image's record (and the case), so an unstable
verdict says so in every export.
"""

from __future__ import annotations

from PySide6.QtCore import QObject

from .results_model import OK
from .workers import Task


class StabilityChecks(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.results: dict = {}  # path -> Stability of this session's checks
        self.pending: set[str] = set()
        window.detail.stability_requested.connect(lambda path: self.check())
        window.verdict_threshold.changed.connect(lambda *_: self.show())

    def check(self, automatic: bool = False) -> None:
        """Checks the shown image (`automatic`: only when its record has no check yet)."""
        from ..stability import file_stability

        window = self.window
        row, session = window.shown_row(), window.controller.session
        if row is None or row.state != OK or session is None or row.path in self.pending:
            return
        if automatic and row.result.stability_orders is not None:
            return
        path, sha256, reference = row.path, row.result.sha256, row.probability
        self.pending.add(path)
        window.detail.show_stability(path, "Scoring 8 other patch orders…")
        window.detail.stability_button.setEnabled(False)
        dropped = (lambda: window.detail.current_path != path) if automatic else None
        task = Task(file_stability, path, sha256, reference, session.scanner.runner.score, cancelled=dropped)
        task.signals.succeeded.connect(lambda stability: self._done(path, sha256, stability))
        task.signals.failed.connect(lambda message: self._failed(path, message))
        task.signals.finished.connect(lambda: self.pending.discard(path))
        window.scans.run_task(task)

    def _done(self, path: str, sha256: str, stability) -> None:
        window = self.window
        self.pending.discard(path)
        if window.model.set_stability(path, stability, sha256):
            self.results[path] = stability
            window.cases.results_scanned([window.model.row_for_path(path).result], window.controller.session,
                                         scanned=False)
        self.show()

    def _failed(self, path: str, message: str) -> None:
        self.pending.discard(path)
        self.window.detail.show_stability(path, "" if message == "cancelled" else f"Stability check failed: {message}")

    def show(self) -> None:
        """The shown image's spread at the current threshold (its check, or its stored record's)."""
        from ..stability import spread_summary

        window = self.window
        row = window.shown_row()
        if row is None or row.state != OK or row.path in self.pending:
            return
        stability = self.results.get(row.path)
        text = stability.summary(window.threshold) if stability is not None \
            else spread_summary(row.result, window.threshold)
        window.detail.show_stability(row.path, text)

    def clear(self) -> None:
        self.results.clear()
