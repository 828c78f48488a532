"""Background tasks: reports reach the GUI thread (also after cancel, which the caller handles),
and nothing reaches an owner widget deleted while a report waited in the queue."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QThreadPool  # noqa: E402
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
