"""Background tasks: reports reach the GUI thread (also after cancel, which the caller handles),
and nothing reaches an owner widget deleted while a report waited in the queue."""

from __future__ import annotations

import gc
import sys
import threading

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QRunnable, Qt, QThreadPool  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from dgs_desktop.gui.workers import Task  # noqa: E402


def run_and_collect(qtbot, task: Task, cancel_before_delivery: bool) -> dict:
    seen = {"succeeded": [], "failed": [], "progress": [], "finished": 0}
    task.signals.succeeded.connect(seen["succeeded"].append)
    task.signals.failed.connect(seen["failed"].append)
    task.signals.progress.connect(seen["progress"].append)
    task.signals.finished.connect(lambda: seen.__setitem__("finished", seen["finished"] + 1))
    pool = QThreadPool()
    pool.start(task)
    assert pool.waitForDone(10_000)  # the reports are queued for the GUI thread, not yet delivered
    if cancel_before_delivery:
        task.cancel()
    qtbot.waitUntil(lambda: seen["finished"] == 1, timeout=10_000)
    QApplication.processEvents()
    return seen


def reports(report=None, cancelled=None):
    report(0.5)
    return 42


@pytest.mark.parametrize("cancel", [False, True])
def test_reports_reach_the_caller_in_order(qtbot, cancel):
    # A cancel after the task ended does not hide its result: the caller decides (e.g. a
    # download that finished anyway is kept).
    seen = run_and_collect(qtbot, Task(reports, pass_hooks=True), cancel_before_delivery=cancel)
    assert seen["finished"] == 1
    assert seen["succeeded"] == [42] and seen["progress"] == [0.5] and seen["failed"] == []


def broken():
    raise ValueError("bad bytes")


def test_a_failure_is_delivered_in_plain_words_also_after_cancel(qtbot):
    # a cancelled download fails with its own error; the dialog turns it into "Download cancelled."
    for cancel in (False, True):
        assert run_and_collect(qtbot, Task(broken), cancel)["failed"] == ["unexpected problem (ValueError): bad bytes"]


def test_a_task_that_saw_cancel_still_says_cancelled(qtbot):
    started = threading.Event()

    def waits(report=None, cancelled=None):
        started.set()
        while not cancelled():
            started.wait(0.01)
        raise InterruptedError

    task = Task(waits, pass_hooks=True)
    seen = {"failed": []}
    task.signals.failed.connect(seen["failed"].append)
    pool = QThreadPool()
    pool.start(task)
    assert started.wait(10)
    task.cancel()
    assert pool.waitForDone(10_000)
    qtbot.waitUntil(lambda: seen["failed"] == ["cancelled"], timeout=10_000)


def test_nothing_reaches_an_owner_deleted_with_a_result_queued(qtbot):
    from PySide6.QtWidgets import QWidget

    owner = QWidget()
    task = Task(reports, pass_hooks=True).bind(owner)
    seen = []
    for signal in (task.signals.succeeded, task.signals.progress, task.signals.failed):
        signal.connect(seen.append)
    task.signals.finished.connect(lambda: seen.append("finished"))
    pool = QThreadPool()
    pool.start(task)
    assert pool.waitForDone(10_000)
    shiboken6 = pytest.importorskip("shiboken6")
    shiboken6.delete(owner)  # like a window deleted by its parent while the reports wait in the queue
    for _ in range(5):
        QApplication.processEvents()
    assert seen == []


def collect_and_return(index, cancelled=None, report=None):
    # a collection on the pool thread: whatever became unreachable dies here, on this thread
    gc.collect()
    return index


def carriers_die_on(qtbot, make_worker, count: int) -> set[int]:
    """Starts `count` workers, each known only to its `finished` handler, and returns the
    threads on which their signal carriers were deleted (all of them, once deleted)."""
    pool = QThreadPool()
    pool.setMaxThreadCount(2)
    keep: set = set()
    died: list[int] = []
    for index in range(count):
        worker = make_worker(index)
        worker.signals.destroyed.connect(lambda *_: died.append(threading.get_ident()),
                                         Qt.ConnectionType.DirectConnection)
        keep.add(worker)
        worker.signals.finished.connect(lambda *_, worker=worker: keep.discard(worker))
        pool.start(worker)
        del worker
    assert pool.waitForDone(60_000)

    def all_deleted() -> bool:
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        gc.collect()
        return len(died) == count

    qtbot.waitUntil(all_deleted, timeout=30_000)
    assert not keep
    return set(died)


def test_signal_carriers_are_deleted_on_the_gui_thread_only(qtbot):
    """Qt allows a QObject to be deleted only on its own thread. A Python-owned carrier died
    wherever its last reference did: on the pool thread when the GUI thread had let go of the
    worker first (the CI abort in the detail pane's `setText` was this heap corruption)."""
    from dgs_desktop.gui.workers import ScanWorker

    class NoFiles:
        def scan(self, paths, cancel, keep_selection):
            gc.collect()
            return iter(())

    gui_thread = {threading.get_ident()}
    assert carriers_die_on(qtbot, lambda i: Task(collect_and_return, i, pass_hooks=True), 200) == gui_thread
    assert carriers_die_on(qtbot, lambda i: ScanWorker(i, NoFiles(), []), 50) == gui_thread


class DoNothing(QRunnable):
    def run(self):
        pass


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None and True are immortal from Python 3.12: counts never move")
def test_pool_runs_and_signals_leave_reference_counts_alone(qtbot):
    """PySide6 6.12.0 released a reference it did not hold on every Python `QRunnable.run`
    (to None) and every `Signal.emit` (to True): after a few thousand tasks Python freed True
    and aborted (the CI abort). pyproject.toml keeps that release out where these singletons
    are mortal; this catches it, or a successor, in whatever PySide6 is installed."""
    import PySide6

    def runs_change(singleton, runnables: list) -> int:
        before = sys.getrefcount(singleton)
        pool = QThreadPool()
        for runnable in runnables:
            pool.start(runnable)
        assert pool.waitForDone(60_000)
        QApplication.processEvents()  # each Task's two reports, relayed on this thread
        return sys.getrefcount(singleton) - before

    changes = {"None": runs_change(None, [DoNothing() for _ in range(300)]),
               "True": runs_change(True, [Task(int, index) for index in range(300)])}
    assert all(abs(change) < 50 for change in changes.values()), \
        f"PySide6 {PySide6.__version__} changed reference counts by {changes} in 300 pool runs"


def test_cycles_holding_qt_objects_are_collected_on_the_gui_thread(qtbot):
    """CPython runs its cycle collector in whichever thread allocates past a threshold: in the
    app, often a scan or decode thread. A closed window or dialog left in a reference cycle was
    then freed there, its Qt objects deleted off the GUI thread (the CI crashes in the detail
    pane while a stability check ran). The window collects cycles on the GUI thread instead."""
    from dgs_desktop.gui.workers import collect_cycles_on_gui_thread

    collector = collect_cycles_on_gui_thread(QApplication.instance())
    assert collect_cycles_on_gui_thread(QApplication.instance()) is collector  # once per application
    assert not gc.isenabled()
    died: list[int] = []

    class Cycle:
        pass

    for _ in range(50):
        cycle = Cycle()
        cycle.me, cycle.qt = cycle, QObject()  # unreachable once `cycle` is dropped: only a collection frees it
        cycle.qt.destroyed.connect(lambda *_: died.append(threading.get_ident()), Qt.ConnectionType.DirectConnection)
        del cycle
    made: list = []  # what a scan thread builds: far past any collection threshold
    busy = threading.Thread(target=lambda: made.extend([{}] for _ in range(300_000)))
    busy.start()
    busy.join()
    qtbot.waitUntil(lambda: len(died) == 50, timeout=10_000)
    assert set(died) == {threading.get_ident()}


def test_the_gui_thread_collector_follows_cpythons_rules():
    """Full collections stall the window (any thread's collection holds the GIL): they run only
    when CPython would run them, once the oldest generation grew by a quarter since the last."""
    from dgs_desktop.gui.workers import generation_to_collect

    thresholds = (700, 10, 10)
    assert generation_to_collect((700, 50, 50), thresholds, 1000, lambda: 5000) is None  # nothing due yet
    assert generation_to_collect((701, 3, 50), thresholds, 1000, lambda: 5000) == 0
    assert generation_to_collect((701, 11, 3), thresholds, 1000, lambda: 5000) == 1
    assert generation_to_collect((701, 11, 11), thresholds, 1000, lambda: 1250) == 1  # grew by a quarter only
    assert generation_to_collect((701, 11, 11), thresholds, 1000, lambda: 1251) == 2
