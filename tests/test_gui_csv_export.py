"""The window's Export and Ctrl+C copy use the scan's CSV writer: a CR in a file name cannot
split a row, formulas are neutralised, and the text is valid UTF-8."""

from __future__ import annotations

import csv
import io

import pytest

pytest.importorskip("PySide6")

from gui_helpers import make_images  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from dgs_desktop.gui.main_window import MainWindow  # noqa: E402
from dgs_desktop.gui.model_controller import READY  # noqa: E402
from dgs_desktop.gui.results_model import ROW_ROLE  # noqa: E402
from dgs_desktop.gui.settings import SETTINGS_ENV, AppSettings  # noqa: E402
from dgs_desktop.scan.csvio import COLUMNS  # noqa: E402

TIMEOUT_MS = 60_000
EVIL_NAME = "a\r=cmd|' -C calc'!A0.png"


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch, tiny_checkpoint):
    monkeypatch.setenv(SETTINGS_ENV, str(tmp_path / "settings.ini"))
    window = MainWindow(AppSettings())
    qtbot.addWidget(window)
    window.show()
    window.controller.start()
    window.models.load(str(tiny_checkpoint.directory), "cpu")
    qtbot.waitUntil(lambda: window.controller.state == READY, timeout=TIMEOUT_MS)
    return window


@pytest.fixture
def hostile_folder(tmp_path):
    folder = make_images(tmp_path / "names", 2)
    (folder / "img000.png").rename(folder / EVIL_NAME)
    return folder


def check_rows(text: str, folder, delimiter: str) -> None:
    text.encode("utf-8")  # valid UTF-8 (a lone surrogate would raise)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    assert rows[0] == list(COLUMNS)
    assert all(len(row) == len(COLUMNS) for row in rows)
    records = {row[0]: dict(zip(COLUMNS, row)) for row in rows[1:]}
    assert sorted(records) == sorted([str(folder / EVIL_NAME), str(folder / "img001.png")])
    assert all(record["status"] == "ok" for record in records.values())
    # the CR stays inside a quoted field, so no reader starts a row (or a cell) at the formula
    assert f'"{folder / EVIL_NAME}"{delimiter}' in text


def test_export_and_copy_use_the_scan_writer(qtbot, window, hostile_folder, tmp_path):
    with qtbot.waitSignal(window.scan_finished, timeout=TIMEOUT_MS):
        window.intake.add_paths([str(hostile_folder)])
    exported = tmp_path / "export.csv"
    assert window.exports.export_csv(str(exported))
    data = exported.read_bytes()
    check_rows(data.decode("utf-8"), hostile_folder, ",")

    window.table.selectAll()
    window.exports.copy_selected_rows()
    check_rows(QApplication.clipboard().text(), hostile_folder, "\t")


def test_copy_neutralises_formulas_from_outside(qtbot, window, hostile_folder):
    with qtbot.waitSignal(window.scan_finished, timeout=TIMEOUT_MS):
        window.intake.add_paths([str(hostile_folder)])
    # Text the file itself supplies (metadata, generator signals) reaches the provenance cell.
    for proxy_row in range(window.proxy.rowCount()):
        row = window.proxy.index(proxy_row, 0).data(ROW_ROLE)
        row.result.provenance = "@SUM(1+1)*cmd|' /C calc'!A0"
    window.table.selectAll()
    window.exports.copy_selected_rows()
    rows = list(csv.DictReader(io.StringIO(QApplication.clipboard().text(), newline=""), delimiter="\t"))
    assert len(rows) == 2 and all(row["provenance"] == "'@SUM(1+1)*cmd|' /C calc'!A0" for row in rows)


def test_the_window_applies_the_scans_link_rules(qtbot, window, tmp_path):
    """A link out of the added folder is refused (never read, not even to hash it) and a hard
    link keeps a row of its own, exactly as in the headless scan."""
    folder = make_images(tmp_path / "case", 2)
    outside = make_images(tmp_path / "elsewhere", 1, seed=9) / "img000.png"
    (folder / "escape.png").symlink_to(outside)
    (folder / "second-name.png").hardlink_to(folder / "img000.png")
    with qtbot.waitSignal(window.intake.files_added, timeout=TIMEOUT_MS):
        window.intake.add_paths([str(folder)])
    qtbot.waitUntil(lambda: not window.scans.scanning and all(r.result is not None for r in window.model.rows),
                    timeout=TIMEOUT_MS)
    rows = {r.path: r for r in window.model.rows}
    assert sorted(rows) == sorted(str(folder / n) for n in ("escape.png", "img000.png", "img001.png",
                                                             "second-name.png"))
    escape = rows[str(folder / "escape.png")].result
    assert escape.status == "error" and "outside" in escape.error and escape.sha256 == ""
    twin = rows[str(folder / "second-name.png")].result
    assert twin.ok and twin.fake_probability == rows[str(folder / "img000.png")].result.fake_probability


def test_export_carries_notes_and_tags_and_exports_only_the_chosen_rows(qtbot, window, tmp_path):
    folder = make_images(tmp_path / "three", 3)
    with qtbot.waitSignal(window.scan_finished, timeout=TIMEOUT_MS):
        window.intake.add_paths([str(folder)])
    noted = str(folder / "img001.png")
    window.cases.annotate(noted, "seen on a forum", ["forum", "ask source"])
    everything = tmp_path / "all.csv"
    assert window.exports.export_csv(str(everything))
    rows = {row["path"]: row for row in csv.DictReader(everything.open(encoding="utf-8", newline=""))}
    assert len(rows) == 3 and rows[noted]["analyst_note"] == "seen on a forum"
    assert "forum" in rows[noted]["tags"] and "ask source" in rows[noted]["tags"]
    assert rows[str(folder / "img000.png")]["analyst_note"] == ""
    assert [scope for scope, _ in window.exports.row_choices()] == ["all rows"]  # one row is merely current
    from PySide6.QtCore import QItemSelectionModel

    selection = window.table.selectionModel()
    for row in (0, 2):
        selection.select(window.proxy.index(row, 0),
                         QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows)
    picked = dict(window.exports.row_choices())["the 2 selected rows"]
    assert sorted(row.path for row in picked) == [str(folder / "img000.png"), str(folder / "img002.png")]
    selection.clearSelection()

    window.text_filter.setText("img002")
    scopes = dict(window.exports.row_choices())
    shown = scopes["the 1 rows the filter shows"]
    narrowed = tmp_path / "shown.csv"
    assert window.exports.export_csv(str(narrowed), shown, "the 1 rows the filter shows")
    assert [row["path"] for row in csv.DictReader(narrowed.open(encoding="utf-8", newline=""))] == \
        [str(folder / "img002.png")]
