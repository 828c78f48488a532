"""Work off the GUI thread: QRunnables that report through Qt signals.

Compared with the usual "QRunnable + signals" helper (e.g. hexrdgui's AsyncWorker), these
workers
- own their cancel flag (a threading.Event the long-running code polls), so Cancel needs no
  shared state and a cancelled worker never reports results after it was told to stop;
- batch their results (at most one `results` signal per `EMIT_INTERVAL_S`), so a fast scan
  of thousands of tiny images cannot flood the GUI event loop with one signal per file;
- turn exceptions into one line of plain words (`plain_error`) for the dialogs; the
  traceback goes to the log, never to the user.

The signal carriers are QObjects created on the GUI thread, so every connection to them is
queued across threads automatically. Callers keep a reference to a worker until `finished`.
Qt allows a QObject to be deleted only on its own thread, so a carrier is owned by the
application object, not by Python, and deletes itself on the GUI thread after its last report
(`GuiThreadReports`): a Python-owned carrier died wherever its last reference did, which is the
pool thread whenever the GUI thread let go of the worker before QThreadPool deleted it.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, QRunnable, QThreadPool, QTimer, Signal

log = logging.getLogger(__name__)

EMIT_INTERVAL_S = 0.1


def plain_error(exc: BaseException) -> str:
    """One line for a dialog. Our own errors already speak plainly; others get their type name."""
    from ..errors import DGSError
    from ..scan.decode import DecodeError

    message = str(exc).strip() or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    if isinstance(exc, (DGSError, DecodeError, OSError)):
        return message
    if isinstance(exc, MemoryError):
        return "the computer ran out of memory"
    return f"unexpected problem ({type(exc).__name__}): {message}"


class GuiThreadCollector(QObject):
    """Python's cycle collector, run by a GUI-thread timer instead of by whichever thread
    allocates past its threshold (CPython's rule), which in this app is often a scan or decode
    thread: a closed window or dialog left in a reference cycle was freed there, its Qt objects
    (settings, pixmaps, fonts, widgets) deleted off the GUI thread, which corrupts Qt's heap.
    The timer applies CPython's own rules (its thresholds, and a full collection only once the
    objects promoted to the oldest generation since the last one reach a quarter of those it
    kept), so as much is collected as often, only here. A collection holds the GIL in any
    thread, so running it here stalls the window no more than before."""

    def __init__(self, app: QCoreApplication, interval_ms: int):
        super().__init__(app)
        self.thresholds = gc.get_threshold()
        self.long_lived = 0  # objects in the oldest generation after the last full collection
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.collect)
        app.aboutToQuit.connect(self.stop)

    def start(self) -> None:
        gc.disable()
        self.long_lived = len(gc.get_objects(generation=2))
        self.timer.start()

    def collect(self) -> None:
        generation = generation_to_collect(gc.get_count(), self.thresholds, self.long_lived,
                                           lambda: len(gc.get_objects(generation=2)))
        if generation is not None:
            gc.collect(generation)
        if generation == 2:
            self.long_lived = len(gc.get_objects(generation=2))

    def stop(self) -> None:
        self.timer.stop()
        gc.enable()


def generation_to_collect(counts: tuple[int, int, int], thresholds: tuple[int, ...], long_lived: int,
                          oldest: Callable[[], int]) -> int | None:
    """The generation CPython would collect now (None: none yet): the oldest whose count passed
    its threshold, the oldest one only once its objects (`oldest()`, counted only then) exceed
    those the last full collection kept (`long_lived`) by a quarter (CPython's guard against
    quadratic full runs)."""
    if counts[0] <= thresholds[0]:
        return None
    if counts[1] <= thresholds[1]:
        return 0
    if counts[2] > thresholds[2] and oldest() - long_lived > long_lived / 4:
        return 2
    return 1


def collect_cycles_on_gui_thread(app: QCoreApplication, interval_ms: int = 250) -> GuiThreadCollector:
    """Starts the application's `GuiThreadCollector` (made once; later calls return it)."""
    collector = app.findChild(GuiThreadCollector) or GuiThreadCollector(app, interval_ms)
    collector.start()
    return collector


def shared_pool() -> QThreadPool:
    return QThreadPool.globalInstance()


class GuiThreadReports(QObject):
    """A signal carrier that only the GUI thread deletes: owned by the application object (so
    no Python reference dying on a pool thread deletes it), released once its last report was
    delivered. A carrier whose worker never ran (a cleared queue) lives until the application."""

    def __init__(self):
        super().__init__(QCoreApplication.instance())

    def release(self) -> None:
        """Called on the GUI thread after the last report: deleted when control returns to the loop."""
        self.deleteLater()


class TaskSignals(GuiThreadReports):
    """What a task reports, delivered on the GUI thread. A report is dropped when, by the time
    it reaches the GUI thread, the task's `owner` widget is gone: a window deleted with a result
    still queued is never called back. (Cancellation is the caller's to handle: a cancelled
    download, say, still reports its failure so the dialog can say "cancelled".)"""

    progress = Signal(object)  # whatever the task reports
    succeeded = Signal(object)  # the task's return value
    failed = Signal(str)  # plain words
    finished = Signal()  # always, last (unless the owner is gone)
    _reported = Signal(object)  # emitted on the pool thread; re-emitted on the GUI thread
    _returned = Signal(object)
    _raised = Signal(str)
    _ended = Signal()

    def __init__(self):
        super().__init__()
        self.owner: QObject | None = None
        self._reported.connect(self._deliver_progress)
        self._returned.connect(self._deliver_success)
        self._raised.connect(self._deliver_failure)
        self._ended.connect(self._deliver_end)

    def _owner_gone(self) -> bool:
        return self.owner is not None and not shiboken6.isValid(self.owner)

    def _deliver_progress(self, value) -> None:
        if not self._owner_gone():
            self.progress.emit(value)

    def _deliver_success(self, value) -> None:
        if not self._owner_gone():
            self.succeeded.emit(value)

    def _deliver_failure(self, message: str) -> None:
        if not self._owner_gone():
            self.failed.emit(message)

    def _deliver_end(self) -> None:
        if not self._owner_gone():
            self.finished.emit()
        self.release()


class Task(QRunnable):
    """Runs `fn(*args, report=..., cancelled=...)` on a pool thread.

    `report(value)` emits `progress`; `cancelled()` says whether `cancel()` was called.
    """

    def __init__(self, fn: Callable, *args, pass_hooks: bool = False, **kwargs):
        super().__init__()
        self.setAutoDelete(True)
        self.cancel_event = threading.Event()
        self.signals = TaskSignals()
        self._call = (fn, args, kwargs, pass_hooks)

    def cancel(self) -> None:
        self.cancel_event.set()

    def bind(self, owner: QObject) -> Task:
        """Drops every report that arrives after `owner` (its C++ object) was deleted."""
        self.signals.owner = owner
        return self

    def run(self) -> None:
        fn, args, kwargs, pass_hooks = self._call
        try:
            if pass_hooks:
                kwargs = dict(kwargs, report=self.signals._reported.emit, cancelled=self.cancel_event.is_set)
            value = fn(*args, **kwargs)
        except InterruptedError:  # the task saw cancelled(): not a failure
            self.signals._raised.emit("cancelled")
        except BaseException as exc:  # noqa: BLE001 - reported in plain words; details to the log
            log.warning("background task failed:\n%s", traceback.format_exc())
            self.signals._raised.emit(plain_error(exc))
        else:
            self.signals._returned.emit(value)
        finally:
            self.signals._ended.emit()


def start_task(task: Task, keep: set, pool: QThreadPool | None = None, owner: QObject | None = None) -> Task:
    """Starts `task`, holding a Python reference in `keep` until it finishes; with `owner`, its
    reports are dropped once that widget is gone."""
    if owner is not None:
        task.bind(owner)
    keep.add(task)
    task.signals.finished.connect(lambda: keep.discard(task))
    (pool or shared_pool()).start(task)
    return task


# ---------------------------------------------------------------------------------- scanning
@dataclass(frozen=True)
class ScanStatus:
    done: int
    total: int
    failed: int
    rate: float  # images per second
    eta_s: float | None


class ScanSignals(GuiThreadReports):
    results = Signal(int, list)  # scan id, list[ScanRecord] in input order
    progress = Signal(int, object)  # scan id, ScanStatus
    failed = Signal(int, str)  # scan id, plain words
    finished = Signal(int, bool)  # scan id, whether it was cancelled; always, last
    _ended = Signal(int, bool)  # emitted on the pool thread; re-emitted on the GUI thread

    def __init__(self):
        super().__init__()
        self._ended.connect(self._deliver_end)

    def _deliver_end(self, scan_id: int, cancelled: bool) -> None:
        self.finished.emit(scan_id, cancelled)
        self.release()


class ScanWorker(QRunnable):
    """Runs `Scanner.scan` over `paths` and emits the results in batches (the scan scores each
    content once: a copy takes the score of the first file with its bytes)."""

    def __init__(self, scan_id: int, scanner, paths: list, emit_interval_s: float = EMIT_INTERVAL_S):
        super().__init__()
        self.setAutoDelete(True)
        self.scan_id = scan_id
        self.signals = ScanSignals()
        self.cancel_event = threading.Event()
        self._scanner = scanner
        self._paths = list(paths)
        self._emit_interval_s = emit_interval_s

    def cancel(self) -> None:
        self.cancel_event.set()

    def run(self) -> None:
        from ..scan.engine import ScanProgress

        progress = ScanProgress(total=len(self._paths))
        batch: list = []
        last_emit = time.monotonic()

        def flush() -> None:
            nonlocal batch, last_emit
            if batch and not self.cancel_event.is_set():
                self.signals.results.emit(self.scan_id, batch)
                self.signals.progress.emit(self.scan_id, ScanStatus(
                    progress.done, len(self._paths), progress.failed, progress.rate, progress.eta_s))
            batch, last_emit = [], time.monotonic()

        try:
            for result in self._scanner.scan(self._paths, cancel=self.cancel_event, keep_selection=True):
                if self.cancel_event.is_set():
                    break
                progress.update(result)
                batch.append(result)
                if time.monotonic() - last_emit >= self._emit_interval_s:
                    flush()
            flush()
        except BaseException as exc:  # noqa: BLE001
            log.warning("scan failed:\n%s", traceback.format_exc())
            self.signals.failed.emit(self.scan_id, plain_error(exc))
        finally:
            self.signals._ended.emit(self.scan_id, self.cancel_event.is_set())


# ------------------------------------------------------------------------------- discovery
def discover_files(paths: list[str]) -> list:
    """Every file under `paths`, found by the scan engine's own discovery: the found paths
    carry its verdicts (a link out of the scanned folders is refused, another name of a file
    already listed is noted), which the scan then applies exactly as the headless scan does."""
    from ..scan.discover import expand_paths

    return list(expand_paths(paths))
