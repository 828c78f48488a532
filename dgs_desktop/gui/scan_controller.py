"""The scan state machine: which rows wait, which scan runs, cancel, resume, model changes.

Rows move queued -> scanning -> ok | error, or to "not scanned" when a scan is cancelled or
dies. One scan runs at a time on this controller's own thread pool (never the global pool
that model loading and the detail pane use), so a long scan cannot starve them and
`shutdown` can wait for exactly the scan's threads. Results of a cancelled or superseded
scan are dropped by their scan id.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QThreadPool, Signal

from .results_model import NOT_SCANNED, QUEUED, SCANNING, ResultsModel
from .workers import ScanStatus, ScanWorker, Task

log = logging.getLogger(__name__)


class ScanController(QObject):
    started = Signal(int)  # number of files in the scan that just started
    results = Signal(list)  # ScanRecords of the current scan, already applied to the model
    progress = Signal(object)  # ScanStatus
    failed = Signal(str)  # plain words
    cancelled = Signal(int, int, int)  # done, total, rows left not scanned
    stopped = Signal(bool)  # a scan ended (cancelled?); another may start right after
    idle = Signal(bool)  # no scan runs and nothing waits (cancelled?)

    def __init__(self, model: ResultsModel, parent=None):
        super().__init__(parent)
        self.model = model
        self.scanner = None
        self.checkpoint_sha256 = ""
        self.checkpoint = ""  # where the model was loaded from (each row names it)
        self.device = ""
        self.worker: ScanWorker | None = None
        self.scan_id = 0
        self.total = 0
        self.done = 0
        self.pool = QThreadPool(self)
        # One thread: a scan already uses every core through its own decode threads, and model
        # calls from other tasks (the stability check) queue behind it instead of competing.
        self.pool.setMaxThreadCount(1)
        self._tasks: set = set()

    @property
    def scanning(self) -> bool:
        return self.worker is not None

    def set_scanner(self, scanner, checkpoint_sha256: str, device: str, checkpoint: str = "") -> None:
        """A new model or device: rows it did not score are queued again, so the table and
        its exports never mix models (or devices, whose scores differ in the last bits)."""
        self._stop_worker()
        self.scanner, self.checkpoint_sha256, self.device = scanner, checkpoint_sha256, device
        self.checkpoint = checkpoint
        stale = [row.path for row in self.model.rows
                 if row.result is None or (row.checkpoint_sha256, row.device) != (checkpoint_sha256, device)]
        self.model.set_state(stale, QUEUED)
        self.start_next()

    def start_next(self) -> None:
        if self.worker is not None or self.scanner is None:
            return
        paths = self.model.paths_in_state(QUEUED)
        if not paths:
            return
        self.scan_id += 1
        self.total, self.done = len(paths), 0
        self.model.set_state(paths, SCANNING)
        worker = ScanWorker(self.scan_id, self.scanner, self.model.scan_targets(paths))
        worker.signals.results.connect(self._results)
        worker.signals.progress.connect(self._progress)
        worker.signals.failed.connect(self._failed)
        worker.signals.finished.connect(self._worker_finished)
        self.worker = worker
        self.started.emit(len(paths))
        self.pool.start(worker)

    def _results(self, scan_id: int, results: list) -> None:
        if scan_id != self.scan_id:
            return  # a cancelled or superseded scan
        self.model.apply_results(results, self.checkpoint_sha256, self.device, self.checkpoint)
        self.results.emit(results)

    def _progress(self, scan_id: int, status: ScanStatus) -> None:
        if scan_id == self.scan_id:
            self.done = status.done
            self.progress.emit(status)

    def _failed(self, scan_id: int, message: str) -> None:
        if scan_id == self.scan_id:
            log.warning("scan stopped: %s", message)
            self.failed.emit(message)

    def _stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.scan_id += 1  # its late results are ignored from now on

    def cancel(self) -> None:
        """Stops at once from the user's view: unscanned rows are marked, late results ignored."""
        if self.worker is None:
            return
        self._stop_worker()
        left = self.model.paths_in_state(SCANNING) + self.model.paths_in_state(QUEUED)
        self.model.set_state(left, NOT_SCANNED)
        self.cancelled.emit(self.done, self.total, len(left))

    def _worker_finished(self, scan_id: int, cancelled: bool) -> None:
        self.worker = None
        if scan_id == self.scan_id:
            # A scan that died (e.g. a device error) leaves rows unscanned, not stuck in "scanning".
            self.model.set_state(self.model.paths_in_state(SCANNING), NOT_SCANNED)
            self.stopped.emit(cancelled)
        self.start_next()
        if self.worker is None:
            self.idle.emit(cancelled)

    def scan_remaining(self) -> None:
        self.model.set_state(self.model.paths_in_state(NOT_SCANNED), QUEUED)
        self.start_next()

    def run_task(self, task: Task) -> Task:
        """Runs a model task (e.g. the stability check) after the running scan's batches; its
        reports are dropped once this controller (the window) is gone."""
        task.bind(self)
        self._tasks.add(task)
        task.signals.finished.connect(lambda: self._tasks.discard(task))
        self.pool.start(task)
        return task

    def shutdown(self, timeout_ms: int) -> bool:
        """Cancels the scan and queued tasks and waits for the pool; True when it is idle."""
        self._stop_worker()
        for task in list(self._tasks):
            task.cancel()
        self.pool.clear()
        return self.pool.waitForDone(timeout_ms)
