"""Background tasks: a task cancelled before its report reaches the GUI thread never delivers it."""

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
def test_a_result_queued_before_cancel_is_dropped(qtbot, cancel):
    seen = run_and_collect(qtbot, Task(reports, pass_hooks=True), cancel_before_delivery=cancel)
    assert seen["finished"] == 1  # callers always learn that it ended
    if cancel:
        assert seen["succeeded"] == [] and seen["progress"] == [] and seen["failed"] == []
    else:
        assert seen["succeeded"] == [42] and seen["progress"] == [0.5] and seen["failed"] == []


def broken():
    raise ValueError("bad bytes")


def test_a_failure_is_delivered_in_plain_words_unless_cancelled(qtbot):
    assert run_and_collect(qtbot, Task(broken), False)["failed"] == ["unexpected problem (ValueError): bad bytes"]
    assert run_and_collect(qtbot, Task(broken), True)["failed"] == []


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
