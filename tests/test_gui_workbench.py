"""The analyst's workbench (issue 10): cases, honesty warnings, layout, menus, evidence viewer."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from gui_helpers import cli_csv, make_images, make_mixed_folder, open_window, read_csv, scan_paths  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication, QToolBar  # noqa: E402

from dgs_desktop.gui.results_model import OK, VERDICT_COL, ResultsModel  # noqa: E402
from dgs_desktop.gui.settings import SETTINGS_ENV  # noqa: E402
from dgs_desktop.histogram import threshold_bins  # noqa: E402
from dgs_desktop.record import ScanRecord  # noqa: E402

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(autouse=True)
def private_settings(tmp_path, monkeypatch):
    monkeypatch.setenv(SETTINGS_ENV, str(tmp_path / "settings.ini"))


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    return make_mixed_folder(tmp_path_factory.mktemp("mixed") / "photos")


@pytest.fixture
def ready_window(qtbot, tiny_checkpoint):
    return open_window(qtbot, tiny_checkpoint)


# ------------------------------------------------------------------------ one verdict rule
def test_table_uses_the_one_verdict_rule_at_the_boundary(qtbot):
    model = ResultsModel()
    model.add_files(["/ev/edge.png", "/ev/above.png"])
    model.apply_results([ScanRecord(path="/ev/edge.png", status="ok", fake_probability=1.0),
                         ScanRecord(path="/ev/above.png", status="ok", fake_probability=0.75)])
    model.set_threshold(1.0)
    assert model.index(0, VERDICT_COL).data() == "real"  # p = threshold: real, as in the CSV
    assert "fake when P(fake) > threshold" in model.index(0, VERDICT_COL).data(Qt.ItemDataRole.ToolTipRole)
    model.set_threshold(0.74)
    assert [model.index(r, VERDICT_COL).data() for r in range(2)] == ["fake", "fake"]
    model.set_threshold(0.75)
    assert model.counts()["fake"] == 1 and model.counts()["real"] == 1


def test_status_bar_counts_and_histogram_follow_the_threshold(qtbot, ready_window, mixed):
    window = ready_window
    scan_paths(qtbot, window, [mixed])
    every = sorted(row.probability for row in window.model.rows if row.probability is not None)
    # tiny.png (one distinct patch) is inconclusive at any threshold; the histogram still shows its score
    scores = sorted(row.probability for row in window.model.rows if row.probability is not None
                    and row.name != "tiny.png")
    middle = round((scores[4] + scores[5]) / 2, 3)
    window.threshold_spin.setValue(middle)
    fake = sum(p > middle for p in scores)
    qtbot.waitUntil(lambda: window.summary.counts.text().startswith(
        f"{fake} fake · {len(scores) - fake} real · 1 inconclusive"))
    assert f"{fake} fake" in window.summary.line.text() and "1 inconclusive" in window.summary.line.text()
    bins = window.histogram.bins
    assert bins.edges[bins.split] == middle and sum(bins.counts[bins.split:]) == sum(p > middle for p in every)
    assert bins == threshold_bins(every, middle)  # the report's chart draws these very bins (tests/test_report.py)
    window.threshold_spin.setValue(1.0)
    qtbot.waitUntil(lambda: window.summary.counts.text().startswith(f"0 fake · {len(scores)} real · 1 inconclusive"))


# ------------------------------------------------------------------------------ honesty
def test_test_model_is_flagged_and_small_images_are_flagged_per_row(qtbot, ready_window, mixed):
    window = ready_window
    assert window.model_warning.isVisible() and "test" in window.model_warning.text()
    scan_paths(qtbot, window, [mixed / "tiny.png", mixed / "sample00.jpg"])
    tiny, normal = window.model.rows
    assert tiny.state == OK and "padded" in tiny.warning and "distinct patch" in tiny.warning
    assert normal.warning == ""
    assert "padded" in window.model.index(0, 5).data()  # the status column says why
    assert window.model.index(0, VERDICT_COL).data(Qt.ItemDataRole.DecorationRole) is not None
    assert window.model.index(1, VERDICT_COL).data(Qt.ItemDataRole.DecorationRole) is None
    _show(qtbot, window, tiny.path)
    assert window.detail.warning_label.isVisible() and "less reliable" in window.detail.warning_label.text()


def test_sixteen_bit_thumbnails_are_tone_mapped(tmp_path):
    from dgs_desktop.gui.thumbnails import make_thumbnail

    ramp = (np.add.outer(np.arange(64), np.arange(64)) * 32).astype(np.uint16)  # 12-bit data: 0..4032
    path = tmp_path / "sixteen.png"
    Image.fromarray(ramp).save(path)
    with Image.open(path) as raw:
        assert raw.mode.startswith("I")
    image = make_thumbnail(str(path), 40)
    pixels = np.array([image.pixelColor(x, y).red() for x in range(image.width()) for y in range(image.height())])
    assert pixels.max() - pixels.min() > 200  # the full grey range, neither white nor black


def test_jpeg_thumbnails_decode_at_reduced_scale_from_the_safe_reader(tmp_path, monkeypatch):
    from dgs_desktop.gui import thumbnails
    from dgs_desktop.scan import decode
    from dgs_desktop.scan.decode import decode_image

    y, x = np.mgrid[0:600, 0:800]
    photo = np.stack([x % 256, y % 256, (x + y) % 256], axis=2).astype(np.uint8)
    path = tmp_path / "photo.jpg"
    Image.fromarray(photo).save(path, quality=90)
    reads = []
    monkeypatch.setattr(decode, "read_file", lambda p, real=decode.read_file: reads.append(p) or real(p))
    fast = thumbnails.make_thumbnail(str(path), 40)
    assert reads == [path]  # the bytes came from the safe reader, once
    full = thumbnails.thumbnail_from_decoded(decode_image(path), 40)
    assert (fast.width(), fast.height()) == (full.width(), full.height()) == (40, 30)
    mean = [np.mean([img.pixelColor(i, j).red() for i in range(40) for j in range(30)]) for img in (fast, full)]
    assert abs(mean[0] - mean[1]) < 8  # the same picture


def test_duplicates_are_grouped_by_content(qtbot, ready_window, tmp_path):
    window = ready_window
    folder = make_images(tmp_path / "dups", 2)
    shutil.copy(folder / "img000.png", folder / "img999.png")  # listed after the original
    scan_paths(qtbot, window, [folder])
    by_name = {row.name: row for row in window.model.rows}
    copy = by_name["img999.png"]
    assert copy.duplicate_of.endswith("img000.png") and "same content as img000.png" in copy.status_text
    assert by_name["img000.png"].duplicate_of == "" and copy.probability == by_name["img000.png"].probability
    assert "1 duplicate" in window.summary.line.text()


# ------------------------------------------------------------------------------ cases
def test_case_saves_reopens_without_rescanning_and_autosaves(qtbot, tiny_checkpoint, mixed, tmp_path, monkeypatch):
    from dgs_desktop.case import read_case

    window = open_window(qtbot, tiny_checkpoint)
    scan_paths(qtbot, window, [mixed])
    window.threshold_spin.setValue(0.55)
    path = tmp_path / "inquiry.dgscase"
    assert window.cases.unsaved
    assert window.cases.save_as(str(path)) and not window.cases.unsaved
    window.cases.annotate(window.model.rows[1].path, "from the complainant", ["exhibit-1"])
    info, files = read_case(path)
    assert info.threshold == 0.55 and info.checkpoint_sha256 == tiny_checkpoint.sha256
    scored = {row.path: row.probability for row in window.model.rows}
    assert {f.path: f.fake_probability for f in files} == scored
    assert files[1].analyst_note == "from the complainant" and files[1].tags == ["exhibit-1"]
    # autosave: files added later go into the case with their results
    extra = make_images(tmp_path / "more", 2)
    scan_paths(qtbot, window, [extra])
    files = read_case(path)[1]
    assert len(files) == len(scored) + 2 and all(f.status in ("ok", "error") for f in files)

    again = open_window(qtbot, tiny_checkpoint)
    started = []
    again.scans.started.connect(started.append)
    assert again.cases.open(str(path))
    assert again.threshold == 0.55 and not again.cases.unsaved
    assert {row.path: row.probability for row in again.model.rows} == {f.path: f.fake_probability for f in files}
    assert again.model.rows[1].analyst_note == "from the complainant"
    QApplication.processEvents()
    assert started == [] and not again.scans.scanning  # the same model's scores are not recomputed
    _show(qtbot, again, mixed / "sample00.jpg")  # evidence shown from the stored boxes
    assert len(again.detail.image_view.outlines) == 49

    # a file that is not a case is refused and the list and the open case stay as they were
    from dgs_desktop.case import Case
    from dgs_desktop.gui.dialogs import open_message_boxes

    listed = [row.path for row in again.model.rows]
    not_a_case = tmp_path / "notes.dgscase"
    not_a_case.write_text("just notes")
    assert not again.cases.open(str(not_a_case))
    assert [row.path for row in again.model.rows] == listed and again.cases.case.path == path
    assert any("not a DGS Desktop case" in box.text() for box in open_message_boxes())
    assert not_a_case.read_text() == "just notes"
    # opening reads the case once
    reads = []
    real_files = Case.files
    monkeypatch.setattr(Case, "files", lambda self: reads.append(self.path) or real_files(self))
    assert again.cases.open(str(path))
    assert reads == [path] and len(again.model.rows) == len(listed)


def test_clear_and_quit_ask_when_results_are_unsaved(qtbot, ready_window, mixed, tmp_path):
    window = ready_window
    scan_paths(qtbot, window, [mixed / "sample00.jpg", mixed / "sample01.png"])
    window.request_clear()
    box = window.cases.unsaved_box
    assert box is not None and len(window.model.rows) == 2
    box.button(box.StandardButton.Cancel).click()
    assert len(window.model.rows) == 2 and window.cases.unsaved_box is None
    window.close()  # quitting asks too
    assert window.isVisible() and window.cases.unsaved_box is not None
    window.cases.unsaved_box.button(window.cases.unsaved_box.StandardButton.Cancel).click()
    assert window.isVisible()
    window.request_clear()
    next(b for b in window.cases.unsaved_box.buttons() if b.text().startswith("Discard")).click()
    assert window.model.rows == []
    scan_paths(qtbot, window, [mixed / "sample00.jpg"])
    assert window.exports.export_csv(str(tmp_path / "out.csv")) and not window.cases.unsaved
    window.request_clear()  # exported: nothing to lose, no question
    assert window.cases.unsaved_box is None and window.model.rows == []


def test_case_option_on_the_command_line(tmp_path):
    from dgs_desktop.cli import COMMANDS, DESCRIPTION, PROG
    from dgs_desktop.cli.shell import build_parser, with_default_command

    argv = with_default_command(["--case", "inquiry.dgscase", str(tmp_path)], COMMANDS, "window", accept_paths=True)
    args = build_parser(PROG, DESCRIPTION, COMMANDS).parse_args(argv)
    assert args.command == "window" and args.case == "inquiry.dgscase" and args.paths == [str(tmp_path)]


# --------------------------------------------------------------------- layout and keyboard
def test_small_screen_keeps_threshold_visible_and_detail_scrolls(qtbot, ready_window, mixed):
    window = ready_window
    window.resize(1024, 700)
    scan_paths(qtbot, window, [mixed / "sample00.jpg"])
    qtbot.waitUntil(lambda: window.width() == 1024)
    assert window.minimumSizeHint().width() <= 1024 and window.minimumSizeHint().height() <= 700
    for widget in (window.threshold_spin, window.threshold_control.slider):
        assert widget.isVisible() and not widget.visibleRegion().isEmpty()
        assert not isinstance(widget.parentWidget().parentWidget(), QToolBar)  # never in an overflow menu
    for i in range(window.detail.tabs.count()):
        assert window.detail.tabs.widget(i).inherits("QScrollArea")
    assert window.detail.probability_label.wordWrap()


def test_menus_list_every_action_and_shortcuts_are_documented(qtbot, ready_window):
    window = ready_window
    assert [menu.title().replace("&", "") for menu in window.menus] == ["File", "View", "Model", "Help"]
    in_menus = {action for menu in window.menus for action in menu.actions()}
    for action in window.toolbar.actions():
        if not action.isSeparator():
            assert action in in_menus, action.text()
    window.show_shortcuts()
    text = window.shortcuts_box.text()
    readme = README.read_text(encoding="utf-8")
    for name, keys in window.shortcut_list():
        assert keys in text and name in text
        assert keys in readme, f"README does not list the shortcut {keys} ({name})"
    window.shortcuts_box.close()


def test_window_declares_exactly_its_actions():
    """MainWindow's QAction annotations (for mypy) name the attributes build_actions sets."""
    import typing

    from dgs_desktop.gui.main_window import MainWindow
    from dgs_desktop.gui.window_actions import ACTIONS

    hints = typing.get_type_hints(MainWindow)
    declared = {name for name in vars(MainWindow).get("__annotations__", {}) if name.endswith("_action")}
    assert declared == {entry[0] for entry in ACTIONS}
    assert all(hints[name].__name__ == "QAction" for name in declared)


def test_about_names_version_model_and_device(qtbot, ready_window, tiny_checkpoint):
    from dgs_desktop import __version__

    window = ready_window
    window.show_about()
    text = window.about_box.text()
    assert __version__ in text and tiny_checkpoint.sha256[:12] in text and "cpu" in text.lower()
    assert "test-tiny" in text
    window.about_box.close()


def test_recent_models_update_at_once(qtbot, tiny_checkpoint):
    window = open_window(qtbot)
    window.models.open_manager()
    dialog = window.models.manager_dialog
    assert dialog.recent_list.count() == 0
    window.models.load(str(tiny_checkpoint.directory), "cpu")
    qtbot.waitUntil(lambda: dialog.recent_list.count() == 1, timeout=60_000)
    assert [a.text() for a in window.recent_menu.actions()] == [str(tiny_checkpoint.directory)]
    dialog.close()


def test_tab_leaves_the_table_and_toolbar_is_reachable(qtbot, ready_window, mixed):
    window = ready_window
    scan_paths(qtbot, window, [mixed / "sample00.jpg", mixed / "sample01.png"])
    window.activateWindow()
    window.table.setFocus()
    qtbot.waitUntil(lambda: window.table.hasFocus())
    QTest.keyClick(window.table, Qt.Key.Key_Tab)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is not window.table)
    for action in window.toolbar.actions():
        if not action.isSeparator():
            assert window.toolbar.widgetForAction(action).focusPolicy() & Qt.FocusPolicy.TabFocus


def test_detail_pane_follows_the_row_state(qtbot, ready_window, mixed):
    from dgs_desktop.gui.results_model import QUEUED, SCANNING

    window = ready_window
    scan_paths(qtbot, window, [mixed / "sample00.jpg", mixed / "sample01.png"])
    path = window.model.rows[0].path
    _show(qtbot, window, path)
    window.model.set_state([path], QUEUED)  # e.g. a new model: the row waits again
    assert window.detail.probability_label.text() == "queued"
    window.model.set_state([path], SCANNING)
    assert window.detail.probability_label.text() == "scanning"  # the same word as the table
    assert window.model.index(0, 5).data() == "scanning"
    window.scans.start_next()  # nothing queued: no scan starts, the row stays as it is
    assert not window.scans.scanning


def test_moving_quickly_through_rows_shows_the_last_one(qtbot, ready_window, mixed):
    window = ready_window
    scan_paths(qtbot, window, [mixed])
    scored = [row.path for row in window.model.rows if row.state == OK]
    loaded = []
    window.detail.loaded.connect(loaded.append)
    for path in scored:  # faster than the pane can decode: the waiting decodes are dropped
        window.select_path(path)
    qtbot.waitUntil(lambda: window.detail.evidence_shown and window.detail.current_path == scored[-1], timeout=30_000)
    assert loaded[-1] == scored[-1] and len(loaded) < len(scored)
    # nothing left behind: the threads end, and each task's queued "finished" releases it
    qtbot.waitUntil(lambda: window.detail.pool.activeThreadCount() == 0 and len(window.detail._jobs) == 0)


def test_notes_and_tags_are_saved_into_the_case(qtbot, ready_window, mixed, tmp_path):
    from dgs_desktop.case import read_case

    window = ready_window
    scan_paths(qtbot, window, [mixed / "sample00.jpg"])
    assert not window.detail.note_edit.isEnabled()  # no case yet: nowhere to keep a note
    path = tmp_path / "notes.dgscase"
    assert window.cases.save_as(str(path))
    _show(qtbot, window, mixed / "sample00.jpg")
    assert window.detail.note_edit.isEnabled()
    window.detail.note_edit.setPlainText("EXIF says edited in an app")
    window.detail.tags_edit.setText("exhibit-2, check")
    window.detail.tags_edit.textEdited.emit(window.detail.tags_edit.text())
    qtbot.waitUntil(lambda: read_case(path)[1][0].tags == ["check", "exhibit-2"], timeout=5_000)
    assert read_case(path)[1][0].analyst_note == "EXIF says edited in an app"


# -------------------------------------------------------------------------- evidence viewer
def _show(qtbot, window, path):
    assert window.select_path(str(path))
    qtbot.waitUntil(lambda: window.detail.current_path == str(path) and window.detail.evidence_shown, timeout=30_000)
    return window.detail.image_view


def test_viewer_zooms_and_mosaic_click_finds_the_patch(qtbot, ready_window, tmp_path):
    window = ready_window
    rng = np.random.default_rng(5)
    big = tmp_path / "big" / "panorama.png"
    big.parent.mkdir()
    Image.fromarray(rng.integers(0, 255, (1200, 4000, 3), dtype=np.uint8)).save(big)
    scan_paths(qtbot, window, [big])
    view = _show(qtbot, window, big)
    assert view.preview_scale < 1  # a downscaled overview of the 4000 px wide image
    assert view.fit_mode and view.zoom < 0.2
    row = window.model.rows[0]
    # a click on a mosaic cell centres its patch and highlights it, in the mosaic and the image
    mosaic = window.detail.mosaic_view
    x, y = mosaic.cell_centre(10)
    QTest.mouseClick(mosaic, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(x, y))
    assert view.highlighted is not None and view.highlighted.cell == 10 and view.highlighted.box == row.boxes[10]
    bx, by, bw, bh = row.boxes[10]
    centre = view.mapToScene(view.viewport().rect().center())
    assert abs(centre.x() - (bx + bw / 2)) <= bw and abs(centre.y() - (by + bh / 2)) <= bh
    assert max(bw, bh) * view.zoom >= 16  # zoomed in far enough to see it
    # the same from the keyboard: arrows move over the cells, Enter finds the patch
    mosaic.setFocus()
    QTest.keyClick(mosaic, Qt.Key.Key_Right)
    QTest.keyClick(mosaic, Qt.Key.Key_Down)
    QTest.keyClick(mosaic, Qt.Key.Key_Return)
    assert view.highlighted.cell == 18 and view.highlighted.box == row.boxes[18]
    view.highlight_cell(10)
    assert "entropy" in window.detail.patch_info.text() and ("low-entropy" in window.detail.patch_info.text()
                                                             or "high-entropy" in window.detail.patch_info.text())
    # hovering a patch in the image names its entropy and group
    info = view.patch_at(QPointF(bx + 1, by + 1))
    assert info.cell == 10 and info.entropy == pytest.approx(row.entropies[10])
    assert info.low == row.low_entropy[10]
    # full pixels once the zoom asks for more than the overview has
    view.actual_size()
    assert view.zoom == pytest.approx(1.0)
    qtbot.waitUntil(lambda: view.showing_full_pixels)
    view.zoom_in()
    assert view.zoom == pytest.approx(1.25)
    QTest.keyClick(view, Qt.Key.Key_0)
    assert view.fit_mode and view.zoom < 0.2
    # the outlines are cosmetic: the same screen width at every zoom
    assert all(o.pen().isCosmetic() and o.pen().widthF() >= 2 for o in view.outlines)


def test_viewer_handles_a_tiny_image(qtbot, ready_window, tmp_path):
    window = ready_window
    tiny = tmp_path / "t" / "icon.png"
    tiny.parent.mkdir()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(tiny)
    scan_paths(qtbot, window, [tiny])
    view = _show(qtbot, window, tiny)
    assert view.preview_scale == 1.0 and view.zoom > 4  # fitted: the 20 px image fills the view
    assert view.outlines and all(o.rect().right() <= 20 and o.rect().bottom() <= 20 for o in view.outlines)
    assert window.detail.show_cell(0) is not None


def test_detail_view_checks_stability_by_itself_and_an_unstable_row_is_inconclusive(qtbot, ready_window, mixed):
    from dgs_desktop.verdict import INCONCLUSIVE, UNSTABLE

    window = ready_window
    scan_paths(qtbot, window, [mixed / "sample00.jpg"])
    _show(qtbot, window, mixed / "sample00.jpg")  # no click on "Check stability"
    row = window.model.rows[0]
    qtbot.waitUntil(lambda: row.path in window.stability.results, timeout=60_000)
    stability = window.stability.results[row.path]
    assert stability.reference == row.probability and len(stability.others) == 8
    text = window.detail.stability_label.text()
    assert "8 other patch orders" in text and f"{stability.spread:.4f}" in text
    assert re.search(r"\d of 8 orders give the same verdict", text)
    record = row.result  # the spread is stored in the record: CSV, case and verdict read it
    assert record.stability_orders == 8
    assert (record.stability_low, record.stability_high) == pytest.approx((stability.low, stability.high), abs=1e-8)
    assert stability.spread > 0  # 8 random orders of a test-tiny mosaic never score all alike
    window.verdict_threshold.set((stability.low + stability.high) / 2, exact=True)
    assessment = row.assessment(window.threshold)
    assert assessment.verdict == INCONCLUSIVE and any(r.startswith(UNSTABLE) for r in assessment.reasons)
    assert window.model.counts()[INCONCLUSIVE] == 1
    assert window.detail.reasons_label.isVisible() and UNSTABLE in window.detail.reasons_label.text()
    if os.environ.get("DGS_SCREENSHOT_DIR"):
        window.resize(1600, 1000)
        qtbot.wait(300)
        window.grab().save(os.path.join(os.environ["DGS_SCREENSHOT_DIR"], "unstable.png"))
    window.stability_action.trigger()  # asked again by hand: it runs again, same seeds, same numbers
    qtbot.waitUntil(lambda: row.path not in window.stability.pending and window.stability.results[row.path] is not stability,
                    timeout=60_000)
    assert window.stability.results[row.path] == stability


def test_reopened_rows_from_another_model_or_device_are_scored_again(qtbot, tiny_checkpoint, mixed, tmp_path):
    from types import SimpleNamespace

    from dgs_desktop.case import Case

    window = open_window(qtbot, tiny_checkpoint)
    here = window.controller.session.scored_on  # device and precision, e.g. "cpu bf16"
    path = tmp_path / "mixed-models.dgscase"
    same, other_device, other_model = (str(mixed / n) for n in ("sample00.jpg", "sample01.png", "sample02.jpg"))
    with Case.create(path) as case:
        case.add_paths([same, other_device, other_model])
        case.set_model(str(tiny_checkpoint.directory), tiny_checkpoint.sha256, here)
        for file, sha, device in ((same, tiny_checkpoint.sha256, here), (other_device, tiny_checkpoint.sha256, "cuda:0"),
                                  (other_model, "0" * 64, here)):
            case.record_results([SimpleNamespace(path=file, sha256="", status="ok", fake_probability=0.123456, error="",
                                                 width=256, height=256, format="JPEG", notes=[], provenance="")],
                                str(tiny_checkpoint.directory), sha, device)
    with qtbot.waitSignal(window.scan_finished, timeout=60_000):
        assert window.cases.open(str(path))
    rows = {row.path: row for row in window.model.rows}
    assert rows[same].probability == 0.123456  # scored by this model on this device: kept
    for rescored in (other_device, other_model):  # never mixed into the table or an export
        assert rows[rescored].probability != 0.123456 and rows[rescored].device == here
        assert rows[rescored].checkpoint_sha256 == tiny_checkpoint.sha256


def test_same_content_is_scored_once(qtbot, ready_window, tmp_path):
    window = ready_window
    folder = make_images(tmp_path / "copies", 2)
    for name in ("img000-a.png", "img000-b.png"):
        shutil.copy(folder / "img000.png", folder / name)
    (folder / "img000-c.jpg").write_bytes((folder / "img000.png").read_bytes())  # same bytes, wrong suffix
    from dgs_desktop.detector.patches import select_patches
    from dgs_desktop.scan.decode import decode_image

    mosaic = select_patches(decode_image(folder / "img000.png").image).mosaic  # the four copies' content
    runner = window.controller.session.scanner.runner
    scored = []
    real_score = runner.score
    runner.score = lambda mosaics: scored.extend(np.asarray(m) for m in mosaics) or real_score(mosaics)
    scan_paths(qtbot, window, [folder])
    assert len(window.model.rows) == 5
    assert sum(np.array_equal(m, mosaic) for m in scored) == 1  # four files of one content: one forward pass
    later = tmp_path / "later"  # a copy dropped on its own, after that scan: no forward pass either
    later.mkdir()
    shutil.copy(folder / "img000.png", later / "img000-later.png")
    scan_paths(qtbot, window, [later])
    runner.score = real_score
    assert sum(np.array_equal(m, mosaic) for m in scored) == 1
    rows = {row.name: row for row in window.model.rows}
    first = rows["img000-a.png"]  # listed first (sorted names)
    for name in ("img000-b.png", "img000-c.jpg", "img000.png", "img000-later.png"):
        assert rows[name].duplicate_of == first.path and rows[name].probability == first.probability
        assert rows[name].boxes == first.boxes
    assert any("suffix .jpg" in note for note in rows["img000-c.jpg"].result.notes)
    assert not any("suffix" in note for note in rows["img000-b.png"].result.notes)
    with qtbot.waitSignal(window.detail.loaded, timeout=10_000):  # a copy's evidence, from its own file
        window.select_path(rows["img000-b.png"].path)
    filled = [box for box in first.boxes if box[2] and box[3]]  # a 96x128 image fills 24 cells, 25 stay black
    assert len(filled) == 24 and len(window.detail.image_view.outlines) == len(set(filled)) == 12  # one per patch
    # the headless scan groups by the same rule: its same_content_as column says what the table says
    _, csv_rows = read_csv(cli_csv(folder, window.controller.session.checkpoint.directory, tmp_path / "copies.csv"))
    assert {row["path"]: row["same_content_as"] for row in csv_rows} == \
        {row.path: row.duplicate_of for row in window.model.rows if row.name != "img000-later.png"}
