"""Environment knobs (a bad tuning value warns and uses the default, a bad torchrun value is a
one-line error) and the window's log file (written where the dialogs say; when it cannot be
created the window still starts and the dialog says there is none)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from dgs_desktop import logfile
from dgs_desktop.envknobs import int_knob, path_knob, required_int
from dgs_desktop.errors import UsageError


@pytest.mark.parametrize("text, expected", [("128", 128), (" 7 ", 7), ("", 64), ("abc", 64), ("-3", 64), ("1.5", 64)])
def test_a_tuning_knob_warns_and_falls_back(monkeypatch, caplog, text, expected):
    monkeypatch.setenv("DGS_TEST_KNOB", text)
    with caplog.at_level(logging.WARNING, logger="dgs_desktop.envknobs"):
        assert int_knob("DGS_TEST_KNOB", 64, minimum=0) == expected
    warned = [r.getMessage() for r in caplog.records]
    if expected == 64 and text.strip():
        assert len(warned) == 1 and warned[0].startswith("DGS_TEST_KNOB=") and "using the default 64" in warned[0]
    else:
        assert warned == []


def test_a_bad_pillow_blocks_max_no_longer_stops_the_import():
    done = subprocess.run([sys.executable, "-c", "import dgs_desktop.scan.decode"], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PILLOW_BLOCKS_MAX": "abc"})
    assert done.returncode == 0, done.stderr
    assert "PILLOW_BLOCKS_MAX='abc' is not a whole number; using the default 64" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_torchrun_value_is_a_one_line_error(monkeypatch):
    from dgs_desktop.scan.distributed import ScanRank

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "first")
    with pytest.raises(UsageError, match=r"^RANK='first' is not a whole number$"):
        ScanRank.from_env()
    monkeypatch.delenv("RANK")
    with pytest.raises(UsageError, match="RANK is not set"):
        ScanRank.from_env()
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert ScanRank.from_env() == ScanRank(rank=1, world_size=2, local_rank=0)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert ScanRank.from_env() is None
    monkeypatch.setenv("WORLD_SIZE", "0")
    with pytest.raises(UsageError, match="below its minimum 1"):
        required_int("WORLD_SIZE", minimum=1, default=1)


def test_path_knob(monkeypatch, tmp_path):
    monkeypatch.setenv("DGS_TEST_PATH", "  ")
    assert path_knob("DGS_TEST_PATH") is None
    monkeypatch.setenv("DGS_TEST_PATH", "~/x")
    assert path_knob("DGS_TEST_PATH").parts[-1] == "x" and "~" not in str(path_knob("DGS_TEST_PATH"))


@pytest.fixture
def fresh_log(monkeypatch):
    """No log file started yet in this process; the handler a test adds is removed after it."""
    monkeypatch.setattr(logfile, "_log_file", None)
    before = list(logging.getLogger().handlers)
    yield
    for handler in logging.getLogger().handlers:
        if handler not in before:
            logging.getLogger().removeHandler(handler)
            handler.close()


def test_the_log_file_is_written_where_the_dialog_says(monkeypatch, tmp_path, fresh_log):
    monkeypatch.setenv(logfile.LOG_DIR_ENV, str(tmp_path / "logs" / "deeper"))
    path = logfile.start_log_file()
    assert path == tmp_path / "logs" / "deeper" / logfile.LOG_FILE_NAME
    assert logfile.start_log_file() == path and logfile.log_file() == path  # once per process
    logging.getLogger("dgs_desktop.test").error("the detail behind a dialog")
    for handler in logging.getLogger().handlers:  # only the log file: another test's stream may be closed
        if isinstance(handler, logging.FileHandler):
            handler.flush()
    assert "ERROR dgs_desktop.test: the detail behind a dialog" in path.read_text(encoding="utf-8")
    assert logfile.where_details_are() == f"Details were written to the log file {path}."


def test_no_log_folder_means_no_log_file_and_says_so(monkeypatch, tmp_path, fresh_log, caplog):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(logfile.LOG_DIR_ENV, str(blocker / "logs"))
    with caplog.at_level(logging.WARNING, logger="dgs_desktop.logfile"):
        assert logfile.start_log_file() is None
    assert "no log file" in caplog.text and "logging to the terminal only" in caplog.text
    assert logfile.log_file() is None
    assert logfile.where_details_are().startswith("No log file could be written")


@pytest.mark.parametrize("writable", [True, False])
def test_the_error_dialog_names_the_log_file(qtbot, monkeypatch, tmp_path, fresh_log, writable):
    from PySide6.QtWidgets import QWidget

    from dgs_desktop.gui.app import install_error_dialogs
    from dgs_desktop.gui.dialogs import open_message_boxes

    if not writable:
        (tmp_path / "a_file").write_text("")
    monkeypatch.setenv(logfile.LOG_DIR_ENV, str(tmp_path / ("logs" if writable else "a_file/logs")))
    path = logfile.start_log_file()
    window = QWidget()
    qtbot.addWidget(window)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    install_error_dialogs(window)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
    text = open_message_boxes()[-1].text()
    assert "RuntimeError: boom" in text
    if writable:
        assert text.endswith(f"Details were written to the log file {path}.")
        for handler in logging.getLogger().handlers:  # only the log file: another test's stream may be closed
            if isinstance(handler, logging.FileHandler):
                handler.flush()
        assert "RuntimeError: boom" in path.read_text(encoding="utf-8")  # the traceback is there
    else:
        assert path is None and "No log file could be written" in text
    for box in open_message_boxes():
        box.close()
