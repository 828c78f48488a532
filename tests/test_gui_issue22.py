"""Issue 22: the workbench never loses or hides the analyst's work (the window's part).

Save dialogs open outside the evidence and ask before writing inside it, and discovery skips
our own files; a threshold that is not the model's is marked; the detail pane shows only a
selected row, names it, and keeps no text from the previous image; the legend counts
distinct patches and agrees with the tooltips; zoomed pixels are sharp, with a readout; the
window fits the screen.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from gui_helpers import make_images, open_window, scan_paths  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QItemSelectionModel, QPointF, QRect, Qt, QTimer  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox  # noqa: E402

from dgs_desktop.gui.settings import SETTINGS_ENV, AppSettings  # noqa: E402


@pytest.fixture(autouse=True)
def private_settings_and_home(tmp_path, monkeypatch):
    monkeypatch.setenv(SETTINGS_ENV, str(tmp_path / "settings.ini"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # Documents/"DGS Desktop cases" lands here
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("XDG_DOCUMENTS_DIR", raising=False)


@pytest.fixture
def ready_window(qtbot, tiny_checkpoint):
    return open_window(qtbot, tiny_checkpoint)


def _show(qtbot, window, path):
    assert window.select_path(str(path))
    qtbot.waitUntil(lambda: window.detail.current_path == str(path) and window.detail.evidence_shown, timeout=30_000)
    return window.detail.image_view


def _image(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


# ------------------------------------------------------------ item 3: outside the evidence
class SaveDialog:
    """Stands in for the native save dialog: records where it opened, answers with `answers`."""

    def __init__(self, monkeypatch, answers):
        self.opened_at: list[str] = []
        self.answers = list(answers)
        monkeypatch.setattr(QFileDialog, "getSaveFileName", self)

    def __call__(self, parent, title, start, filters, options=None):
        self.opened_at.append(start)
        return (self.answers.pop(0), filters.split(";;")[0]) if self.answers else ("", "")


def answer_evidence_box(qtbot, button_text: str, asked: list) -> None:
    """Clicks `button_text` in the "inside the evidence" warning once it is shown."""
    def click():
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, click)
            return
        asked.append(box.text())
        next(b for b in box.buttons() if b.text() == button_text).click()

    QTimer.singleShot(0, click)


def test_saves_open_outside_the_evidence_and_ask_before_writing_inside(qtbot, ready_window, tmp_path, monkeypatch):
    window = ready_window
    evidence = make_images(tmp_path / "evidence", 2)
    scan_paths(qtbot, window, [evidence])
    cases = tmp_path / "home" / "Documents" / "DGS Desktop cases"
    inside, outside = evidence / "case.dgscase", tmp_path / "elsewhere" / "inquiry.dgscase"
    outside.parent.mkdir()

    # Inside the evidence: asked; "Choose another place" opens the dialog again.
    dialog = SaveDialog(monkeypatch, [str(inside), str(outside)])
    asked: list = []
    answer_evidence_box(qtbot, "Choose another place…", asked)
    assert window.cases.choose_save()
    assert Path(dialog.opened_at[0]).parent == cases and cases.is_dir()  # never in the evidence by default
    assert len(asked) == 1 and str(evidence) in asked[0]
    assert outside.is_file() and not inside.exists()
    # The next save opens where the analyst last saved outside the evidence.
    dialog = SaveDialog(monkeypatch, [str(evidence / "out.csv")])
    answer_evidence_box(qtbot, "Cancel", asked)
    window.exports.choose_csv()
    assert Path(dialog.opened_at[0]).parent == outside.parent
    assert len(asked) == 2 and not (evidence / "out.csv").exists()  # cancelled: nothing written
    # Writing inside is the analyst's choice, after the warning.
    SaveDialog(monkeypatch, [str(evidence / "out.csv")])
    answer_evidence_box(qtbot, "Write inside the evidence", asked)
    window.exports.choose_csv()
    assert len(asked) == 3 and (evidence / "out.csv").is_file()
    assert window.settings.output_folder == str(outside.parent)  # a folder in the evidence is not remembered


def test_a_folder_holding_our_case_report_and_csv_scans_without_them(qtbot, ready_window, tmp_path):
    from dgs_desktop.case import read_case

    window = ready_window
    evidence = make_images(tmp_path / "evidence", 3)
    scan_paths(qtbot, window, [evidence])
    window.exports.export_report(str(evidence / "report.html"))
    window.exports.export_report(str(evidence / "report.pdf"), pdf=True)
    qtbot.waitUntil(lambda: (evidence / "report.html").is_file() and (evidence / "report.pdf").is_file()
                    and not window.exports.exporting, timeout=60_000)
    assert window.exports.export_csv(str(evidence / "results.csv"))
    assert window.cases.save_as(str(evidence / "inquiry.dgscase"))  # open: SQLite may keep a journal beside it
    (evidence / "inquiry.dgscase-journal").write_bytes(b"")  # what a crash leaves beside a case
    # Files that only share our suffixes are evidence like any other.
    (evidence / "notes.csv").write_text("name,comment\na,b\n")
    (evidence / "page.html").write_text("<html><head><title>x</title></head></html>")
    (evidence / "other.dgscase").write_bytes(b"not a case at all")
    window.clear_results()

    scan_paths(qtbot, window, [evidence])
    listed = sorted(row.name for row in window.model.rows)
    assert listed == ["img000.png", "img001.png", "img002.png", "notes.csv", "other.dgscase", "page.html"]
    assert len(read_case(evidence / "inquiry.dgscase")[1]) == 3  # the case itself is intact


def test_discovery_skip_rule_is_one_table_of_our_files(tmp_path):
    from dgs_desktop.case import CASE_SUFFIX, Case
    from dgs_desktop.scan.discover import OWN_FILES, expand_paths, is_own_file

    assert CASE_SUFFIX in OWN_FILES and {".html", ".pdf", ".csv"} <= set(OWN_FILES)
    Case.create(tmp_path / "a.dgscase").close()
    (tmp_path / "a.dgscase-wal").write_bytes(b"x")
    (tmp_path / "b.dgscase-wal").write_bytes(b"x")  # no case beside it: not ours
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8 not really")
    assert is_own_file(tmp_path / "a.dgscase") and is_own_file(tmp_path / "a.dgscase-wal")
    assert not is_own_file(tmp_path / "b.dgscase-wal")
    assert sorted(p.name for p in expand_paths([tmp_path])) == ["b.dgscase-wal", "photo.jpg"]


# ------------------------------------------------------------------- item 4: the threshold
def test_a_threshold_that_is_not_the_models_is_marked_with_a_reset(qtbot, tiny_checkpoint, tmp_path):
    settings = AppSettings()
    settings.set_threshold_for(tiny_checkpoint.sha256, 0.385)  # saved from an earlier session
    settings.sync()
    window = open_window(qtbot, tiny_checkpoint)
    model_value = tiny_checkpoint.threshold
    assert window.threshold == pytest.approx(0.385) and window.verdict_threshold.reference == (round(model_value, 3), "model")
    assert window.threshold_control.note.isVisible() and f"model {model_value:.3f}" in window.threshold_control.note.text()
    assert window.threshold_control.reset.isVisible() and "0.385" in window.last_status  # said, not silent
    window.threshold_control.reset.click()
    assert window.threshold == pytest.approx(model_value)
    assert not window.threshold_control.note.isVisible() and not window.threshold_control.reset.isVisible()
    assert window.settings.threshold_for(tiny_checkpoint.sha256) is None
    # Any reference with its source (calibration will set one) is compared the same way.
    window.verdict_threshold.set_reference(0.42, "calibration")
    assert window.threshold_control.note.isVisible() and window.threshold_control.note.text() == "≠ calibration 0.420"
    window.threshold_spin.setValue(0.42)
    assert not window.threshold_control.note.isVisible()


# ------------------------------------------------------------------ item 5: the detail pane
def test_detail_pane_shows_only_a_selected_row_and_names_it(qtbot, ready_window, tmp_path):
    window = ready_window
    folder = make_images(tmp_path / "ev", 3)
    scan_paths(qtbot, window, [folder])
    first, second = window.model.rows[0], window.model.rows[1]
    _show(qtbot, window, first.path)
    assert window.detail.name_label.text() == first.name and window.detail.name_label.toolTip() == first.path
    # Deselecting the row (Ctrl+click) leaves a current row that is not selected: not shown.
    selection = window.table.selectionModel()
    selection.select(window.table.currentIndex(), QItemSelectionModel.SelectionFlag.Deselect
                     | QItemSelectionModel.SelectionFlag.Rows)
    assert window.table.currentIndex().isValid() and not selection.selectedRows()
    assert window.detail.current_path is None and window.detail.name_label.isHidden()
    # A filter that hides the selected row moves the current row; the pane does not follow it.
    _show(qtbot, window, second.path)
    window.text_filter.setText(first.name)
    current = window.table.currentIndex()
    shown = window.detail.current_path
    assert shown is None or (current.isValid() and selection.isRowSelected(current.row(), current.parent()))
    assert shown != second.path


def test_no_patch_text_stays_from_the_previous_image(qtbot, ready_window, tmp_path):
    from dgs_desktop.gui.detail_pane import PATCH_HINT

    window = ready_window
    folder = make_images(tmp_path / "ev", 2, size=(256, 256))
    scan_paths(qtbot, window, [folder])
    first, second = window.model.rows
    _show(qtbot, window, first.path)
    window.detail.show_cell(3)
    assert window.detail.patch_info.text().startswith("Patch in mosaic cell 4")
    _show(qtbot, window, second.path)
    assert window.detail.patch_info.text() == PATCH_HINT
    assert window.detail.image_view.highlighted is None and window.detail.pixel_label.text() == ""


def test_legend_counts_distinct_patches_and_tooltips_agree_with_the_text(qtbot, ready_window, tmp_path):
    window = ready_window
    rng = np.random.default_rng(2)
    one_patch = _image(tmp_path / "ev" / "square.png", rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    normal = _image(tmp_path / "ev" / "photo.png", rng.integers(0, 255, (256, 256, 3), dtype=np.uint8))
    scan_paths(qtbot, window, [one_patch, normal])
    view = _show(qtbot, window, normal)
    assert window.detail.legend_text() == "24 low / 25 high" and len(view.outlines) == 49
    view = _show(qtbot, window, one_patch)
    row = window.model.row_for_path(str(one_patch))
    filled = [(box, low) for box, low in zip(row.boxes, row.low_entropy) if box[2] and box[3]]
    assert len({box for box, _ in filled}) == 1 and len(view.outlines) == 1  # one patch, in every filled cell
    lows = sum(low for _, low in filled)
    assert 0 < lows < len(filled)  # it stands for both groups
    assert window.detail.legend_text() == "1 in both"
    # The outline's tooltip and the text shown on hover are the same description.
    outline = view.outlines[0]
    centre = view.mapFromScene(outline.rect().center())
    QTest.mouseMove(view.viewport(), centre)
    qtbot.waitUntil(lambda: window.detail.patch_info.text() == outline.toolTip())
    assert (f"fill {len(filled)} mosaic cells ({lows} in the low-entropy group, {len(filled) - lows} in the "
            f"high-entropy group)") in outline.toolTip()
    # A mosaic cell names its own group and the sharing.
    info = window.detail.show_cell(0)
    assert info.kind == "both" and info.group in window.detail.patch_info.text()


# --------------------------------------------------------------- item 6: pixels when zoomed
def test_zoomed_pixels_are_sharp_squares_with_a_value_readout(qtbot, ready_window, tmp_path):
    from dgs_desktop.gui.evidence_view import pixel_transformation

    assert pixel_transformation(1.0) == Qt.TransformationMode.SmoothTransformation  # shrinking: smooth
    assert pixel_transformation(1.01) == Qt.TransformationMode.FastTransformation
    window = ready_window
    y, x = np.mgrid[0:64, 0:64]
    checker = np.where(((x + y) % 2 == 0)[..., None], [250, 10, 10], [10, 10, 250]).astype(np.uint8)
    checker[5, 10] = (12, 200, 34)
    path = _image(tmp_path / "ev" / "checker.png", checker)
    scan_paths(qtbot, window, [path])
    view = _show(qtbot, window, path)
    view.set_zoom(8.0)
    view.centerOn(QPointF(10.5, 5.5))
    QApplication.processEvents()
    image = view.viewport().grab().toImage()
    # Every screen pixel inside image pixel (10, 5) has its exact value, even near its edges:
    # a smoothed (bilinear) zoom would blend in the neighbours' red and blue.
    for sx, sy in ((10.5, 5.5), (10.1, 5.1), (10.9, 5.9)):
        colour = image.pixelColor(view.mapFromScene(QPointF(sx, sy)))
        assert (colour.red(), colour.green(), colour.blue()) == (12, 200, 34)
    QTest.mouseMove(view.viewport(), view.mapFromScene(QPointF(10.5, 5.5)))
    qtbot.waitUntil(lambda: window.detail.pixel_label.text() == "x 10, y 5  RGB (12, 200, 34)")
    assert view.pixel_at(QPointF(64.5, 3)) is None  # outside the image: no readout


# ----------------------------------------------------------------- item 9: a small screen
def test_window_fits_the_available_screen(qtbot, monkeypatch):
    from dgs_desktop.gui import window_geometry
    from dgs_desktop.gui.window_geometry import fit_to_screen

    small = QRect(0, 0, 1024, 740)  # 1024x768 less a panel
    assert fit_to_screen(QRect(0, 0, 1280, 800), small) == QRect(0, 0, 1024, 740)
    assert fit_to_screen(QRect(900, 600, 800, 600), small) == QRect(224, 140, 800, 600)  # moved on screen
    assert fit_to_screen(QRect(10, 10, 600, 400), QRect(1920, 0, 1280, 1024)) == QRect(1920, 10, 600, 400)
    window = open_window(qtbot)
    available = window.screen().availableGeometry()  # offscreen: 800x800, smaller than the default 1280x800
    assert window.frameGeometry().width() <= max(available.width(), window.minimumWidth() + 4)
    assert window.frameGeometry().height() <= available.height()
    # On a 1024x768 screen the whole window, frame included, is on the screen.
    monkeypatch.setattr(window_geometry, "available_geometry", lambda w: small)
    window.resize(1280, 800)
    window_geometry.fit_screen(window)
    assert small.contains(window.frameGeometry()) and window.frameGeometry().width() == 1024
    assert window.minimumSizeHint().width() <= 1024 and window.minimumSizeHint().height() <= 740


# ------------------------------------------------------------- item 1: another model on a case
def case_of_two_files_and_another_model(qtbot, tiny_checkpoint, tmp_path):
    """A window whose two scanned files are saved in a case at threshold 0.385, and a second model."""
    from dgs_desktop.detector.demo import save_demo_checkpoint

    other = save_demo_checkpoint(tmp_path / "other", seed=11)
    window = open_window(qtbot, tiny_checkpoint)
    scan_paths(qtbot, window, [make_images(tmp_path / "ev", 2)])
    window.threshold_spin.setValue(0.385)
    case = tmp_path / "inquiry.dgscase"
    assert window.cases.save_as(str(case))
    return window, case, other


def test_another_model_on_a_case_asks_before_rescoring(qtbot, tiny_checkpoint, tmp_path):
    from dgs_desktop.case import read_case
    from dgs_desktop.gui.model_controller import READY

    window, case, other = case_of_two_files_and_another_model(qtbot, tiny_checkpoint, tmp_path)
    stored = {f.path: f.fake_probability for f in read_case(case)[1]}

    def load(spec):
        window.models.load(str(spec), "cpu")
        qtbot.waitUntil(lambda: window.controller.state == READY and window.controller.session.spec == str(spec),
                        timeout=60_000)

    load(other)
    box = window.models.rescore_box
    assert box is not None and "2 file(s)" in box.text()
    QApplication.processEvents()
    info, files = read_case(case)  # nothing changed while the question is open
    assert info.threshold == 0.385 and info.checkpoint_sha256 == tiny_checkpoint.sha256
    assert {f.path: f.fake_probability for f in files} == stored and not window.scans.scanning
    next(b for b in box.buttons() if b.text() == "Keep the stored scores").click()
    qtbot.waitUntil(lambda: window.controller.session.checkpoint.sha256 == tiny_checkpoint.sha256, timeout=60_000)
    QApplication.processEvents()
    assert window.threshold == 0.385 and read_case(case)[0].threshold == 0.385
    assert {row.path: row.probability for row in window.model.rows} == stored
    # Re-scoring is the analyst's explicit choice.
    load(other)
    with qtbot.waitSignal(window.scan_finished, timeout=60_000):
        next(b for b in window.models.rescore_box.buttons() if b.text() == "Re-score with this model").click()
    assert all(row.checkpoint_sha256 != tiny_checkpoint.sha256 for row in window.model.rows)


def test_rescoring_a_case_keeps_every_run_names_each_rows_model_and_logs_it(qtbot, tiny_checkpoint, tmp_path):
    from dgs_desktop.case import read_case, read_history, scoring_runs
    from dgs_desktop.gui.model_controller import READY
    from dgs_desktop.gui.results_model import MODEL_COL

    window, case, other = case_of_two_files_and_another_model(qtbot, tiny_checkpoint, tmp_path)
    first = {f.path: f.fake_probability for f in read_case(case)[1]}
    model_cells = lambda: {window.model.index(i, MODEL_COL).data() for i in range(2)}  # noqa: E731
    assert model_cells() == {Path(tiny_checkpoint.directory).name}
    window.models.load(str(other), "cpu")
    qtbot.waitUntil(lambda: window.models.rescore_box is not None, timeout=60_000)
    with qtbot.waitSignal(window.scan_finished, timeout=60_000):
        next(b for b in window.models.rescore_box.buttons() if b.text() == "Re-score with this model").click()
    assert model_cells() == {"other"}
    assert "other" in window.model.index(0, MODEL_COL).data(Qt.ItemDataRole.ToolTipRole)
    info, files = read_case(case)
    assert {f.checkpoint_sha256 for f in files} == {window.controller.session.checkpoint.sha256}
    window.cases.close()  # flushes what waits for the log
    scores, audit = read_history(case)
    runs = scoring_runs(scores)
    assert [(r.checkpoint, r.files) for r in runs] == [(str(tiny_checkpoint.directory), 2), (str(other), 2)]
    kept = {e.record.path: e.record.fake_probability for e in scores if e.record.checkpoint == str(tiny_checkpoint.directory)}
    assert kept == first and all(e.threshold == 0.385 for e in scores[:2])  # the first run, as it was
    assert window.controller.state == READY
    actions = [e.action for e in audit]
    assert actions[:4] == ["created", "added", "model", "threshold"] and "re-score" in actions
    scanned = [e for e in audit if e.action == "scanned"]
    assert len(scanned) == 1 and str(other) in scanned[0].detail and "2 file(s)" in scanned[0].detail
    assert actions.index("re-score") < actions.index("scanned")


def test_exports_are_logged_in_the_case_with_their_rows(qtbot, tiny_checkpoint, tmp_path):
    from dgs_desktop.case import read_history

    window = open_window(qtbot, tiny_checkpoint)
    scan_paths(qtbot, window, [make_images(tmp_path / "ev", 3)])
    case = tmp_path / "inquiry.dgscase"
    assert window.cases.save_as(str(case))
    window.text_filter.setText("img001")
    scope, rows = window.exports.row_choices()[1]
    out = tmp_path / "out" / "one.csv"
    out.parent.mkdir()
    assert window.exports.export_csv(str(out), rows, scope)
    window.cases.close()
    _, audit = read_history(case)
    [entry] = [e for e in audit if e.action == "exported"]
    assert str(out) in entry.detail and "1 row(s)" in entry.detail and "filter" in entry.detail


def test_window_report_offers_the_rows_and_carries_the_case_details_history_and_log(qtbot, tiny_checkpoint,
                                                                                    tmp_path):
    """File → Export report: the same row choice as the CSV, the case's examiner and case number
    (set in Case details…), its scoring history and log; the export itself is logged."""
    from dgs_desktop.case import read_history
    from dgs_desktop.gui.results_model import ROW_ROLE

    window = open_window(qtbot, tiny_checkpoint)
    assert window.case_details_action in window.menus[0].actions()  # File menu
    folder = make_images(tmp_path / "ev", 3)
    scan_paths(qtbot, window, [folder])
    window.case_details_action.trigger()  # no case yet: refused with a clear message
    qtbot.waitUntil(lambda: isinstance(QApplication.activeModalWidget(), QMessageBox), timeout=5_000)
    assert "No case open" in QApplication.activeModalWidget().windowTitle()
    QApplication.activeModalWidget().close()

    case = tmp_path / "inquiry.dgscase"
    assert window.cases.save_as(str(case))
    window.case_details_action.trigger()
    dialog = window.cases.details_dialog
    dialog.findChild(type(window.text_filter), "examiner").setText("  A. Analyst ")
    dialog.findChild(type(window.text_filter), "caseNumber").setText("2026-117")
    dialog.grab().save(str(tmp_path / "details.png"))
    dialog.accept()
    assert window.cases.details_dialog is None
    assert (window.cases.case.info().examiner, window.cases.case.info().case_number) == ("A. Analyst", "2026-117")

    selection = window.table.selectionModel()
    selection.clearSelection()
    for name in ("img000.png", "img002.png"):
        row = next(r for r in range(window.proxy.rowCount()) if window.proxy.index(r, 0).data(ROW_ROLE).name == name)
        selection.select(window.proxy.index(row, 0),
                         QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows)
    choices = dict(window.exports.row_choices())
    assert list(choices) == ["all rows", "the 2 selected rows"]
    out = tmp_path / "out" / "two.html"
    out.parent.mkdir()
    window.exports.export_report(str(out), rows=choices["the 2 selected rows"], scope="the 2 selected rows")
    qtbot.waitUntil(lambda: out.exists() and not window.exports.exporting, timeout=60_000)
    html = out.read_text(encoding="utf-8")
    assert html.count('<div class="item">') == 2
    assert "img000.png" in html and "img002.png" in html and "img001.png" not in html
    first = html.split('<div class="item">')[0]
    assert "A. Analyst" in first and "2026-117" in first
    assert "Appendix: scoring history" in html and "Appendix: case log" in html
    window.cases.close()
    _, audit = read_history(case)
    [entry] = [e for e in audit if e.action == "exported"]
    assert entry.detail.startswith("HTML report written to") and str(out) in entry.detail
    assert "2 row(s), the 2 selected rows" in entry.detail
    assert [e.action for e in audit].index("details") < [e.action for e in audit].index("exported")
