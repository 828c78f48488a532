"""The window, headless (QT_QPA_PLATFORM=offscreen), with the test-tiny checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("PySide6")

from gui_helpers import cli_csv, make_images, make_mixed_folder, open_window, read_csv  # noqa: E402
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from dgs_desktop.detector.patches import mosaic_from_boxes  # noqa: E402
from dgs_desktop.gui.detail_pane import HIGH_ENTROPY_COLOR, LOW_ENTROPY_COLOR  # noqa: E402
from dgs_desktop.gui.main_window import MainWindow  # noqa: E402
from dgs_desktop.gui.model_controller import NO_MODEL, READY  # noqa: E402
from dgs_desktop.gui.results_model import ERROR, NOT_SCANNED, OK, PROB_COL, ROW_ROLE, VERDICT_COL  # noqa: E402
from dgs_desktop.gui.settings import SETTINGS_ENV, AppSettings  # noqa: E402

SCAN_TIMEOUT_MS = 60_000


@pytest.fixture(autouse=True)
def private_settings(tmp_path, monkeypatch):
    path = tmp_path / "settings.ini"
    monkeypatch.setenv(SETTINGS_ENV, str(path))
    return path


@pytest.fixture(scope="session")
def mixed_folder(tmp_path_factory):
    return make_mixed_folder(tmp_path_factory.mktemp("mixed") / "photos")


@pytest.fixture(scope="session")
def many_folder(tmp_path_factory):
    return make_images(tmp_path_factory.mktemp("many") / "batch", 300)


@pytest.fixture
def make_window(qtbot):
    return lambda checkpoint=None: open_window(qtbot, checkpoint)


def scan(qtbot, window: MainWindow, paths) -> None:
    with qtbot.waitSignal(window.scan_finished, timeout=SCAN_TIMEOUT_MS):
        window.intake.add_paths([str(p) for p in paths])
    assert not window.scans.scanning


def drop(window, paths) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    position = QPointF(window.width() / 2, window.height() / 2)
    with warnings.catch_warnings():  # PySide6 marks this constructor deprecated; it is the one Qt exposes
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(position.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    event = QDropEvent(position, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, event)


def files_in(folder):
    return sorted(p for p in folder.rglob("*") if p.is_file())


# --------------------------------------------------------------------------------- tests
def test_no_model_panel_and_loading_state(qtbot, make_window):
    window = make_window()
    assert window.banner.isVisible()  # says the libraries are loading
    qtbot.waitUntil(lambda: window.controller.state == NO_MODEL, timeout=SCAN_TIMEOUT_MS)
    text = window.banner.message.text()
    assert "three ways" in text and "hub" in text
    assert window.banner.import_button.isVisible() and window.banner.hub_button.isVisible()


def test_drop_adds_files_once(qtbot, make_window, mixed_folder):
    window = make_window()
    one_file = mixed_folder / "sample00.jpg"
    drop(window, [mixed_folder, one_file])  # the file is also inside the folder
    expected = len(files_in(mixed_folder))
    qtbot.waitUntil(lambda: len(window.model.rows) == expected, timeout=10_000)
    with qtbot.waitSignal(window.intake.files_added, timeout=10_000) as added:
        drop(window, [one_file, mixed_folder / "nested"])  # all already listed
    assert added.args == [0]
    assert len(window.model.rows) == expected
    assert len({row.path for row in window.model.rows}) == expected


def test_scan_matches_cli_and_export_equals_cli_csv(qtbot, make_window, tiny_checkpoint, mixed_folder, tmp_path):
    window = make_window(tiny_checkpoint)
    scan(qtbot, window, [mixed_folder])
    reference = cli_csv(mixed_folder, tiny_checkpoint.directory, tmp_path / "cli.csv")
    _, cli_rows = read_csv(reference)
    by_path = {row["path"]: row for row in cli_rows}
    assert len(window.model.rows) == len(cli_rows)
    for row in window.model.rows:
        expected = by_path[row.path]
        if expected["status"] == "ok":
            assert row.state == OK
            assert f"{row.probability:.8f}" == expected["fake_probability"]
        else:
            assert row.state == ERROR and row.result.error == expected["error"]
    # the table shows the same numbers
    shown = {window.proxy.index(r, 0).data(ROW_ROLE).path: window.proxy.index(r, PROB_COL).data()
             for r in range(window.proxy.rowCount())}
    for path, text in shown.items():
        if by_path[path]["status"] == "ok":
            assert abs(float(text) - float(by_path[path]["fake_probability"])) < 1e-4

    exported = tmp_path / "gui.csv"
    assert window.exports.export_csv(str(exported))
    assert exported.read_bytes() == reference.read_bytes()


def test_sorting_filters_and_threshold(qtbot, make_window, tiny_checkpoint, mixed_folder):
    window = make_window(tiny_checkpoint)
    scan(qtbot, window, [mixed_folder])
    window.table.sortByColumn(PROB_COL, Qt.SortOrder.DescendingOrder)
    shown = [window.proxy.index(r, 0).data(ROW_ROLE).probability for r in range(window.proxy.rowCount())]
    scored = [p for p in shown if p is not None]
    assert scored == sorted(scored, reverse=True) and len(scored) >= 10
    window.table.sortByColumn(PROB_COL, Qt.SortOrder.AscendingOrder)
    shown = [window.proxy.index(r, 0).data(ROW_ROLE).probability for r in range(window.proxy.rowCount())]
    assert [p for p in shown if p is not None] == sorted(scored)

    # the threshold re-labels verdicts at once, between the lowest and highest score
    middle = round(float(np.median(scored)), 3)
    window.threshold_spin.setValue(middle)
    for r in range(window.proxy.rowCount()):
        row = window.proxy.index(r, 0).data(ROW_ROLE)
        if row.probability is not None:  # tiny.png is inconclusive (one distinct patch), at any threshold
            two_way = "fake" if row.probability > middle else "real"
            reasons = row.assessment(middle).reasons
            assert window.proxy.index(r, VERDICT_COL).data() == ("inconclusive" if reasons else two_way)
            assert bool(reasons) == (row.name == "tiny.png")
    window.threshold_control.slider.setValue(0)
    assert window.threshold == 0.0
    assert window.model.counts()["real"] == 0
    window.threshold_spin.setValue(middle)

    window.verdict_filter.setCurrentText("Fake")
    fakes = window.proxy.rowCount()
    assert 0 < fakes == sum(row.probability > middle for row in window.model.rows
                            if row.probability is not None and row.name != "tiny.png")
    window.verdict_filter.setCurrentText("Failed")
    assert window.proxy.rowCount() == 1  # broken.jpg
    assert "error" in window.proxy.index(0, 5).data()
    window.verdict_filter.setCurrentText("All")
    window.text_filter.setText("nested")
    assert window.proxy.rowCount() == 1
    window.text_filter.setText("")

    window.table.selectAll()
    window.exports.copy_selected_rows()
    copied = QApplication.clipboard().text().splitlines()
    assert copied[0].startswith("path\tsha256\tstatus") and len(copied) == 1 + len(window.model.rows)


def test_cancel_stops_and_keeps_partial_results(qtbot, make_window, tiny_checkpoint, many_folder):
    window = make_window(tiny_checkpoint)
    window.intake.add_paths([str(many_folder)])
    scored = lambda: sum(window.model.counts()[v] for v in ("real", "fake", "inconclusive"))  # noqa: E731
    qtbot.waitUntil(lambda: scored() >= 8, timeout=SCAN_TIMEOUT_MS)
    worker = window.scans.worker
    assert worker is not None
    with qtbot.waitSignal(worker.signals.finished, timeout=SCAN_TIMEOUT_MS):
        window.scans.cancel()
        # from the user's view the scan stopped at once: nothing is left "scanning"
        assert not window.model.paths_in_state("scanning") and not window.cancel_action.isEnabled()
    QApplication.processEvents()  # anything the worker emitted before `finished` has arrived now
    kept = [row for row in window.model.rows if row.state == OK]
    not_scanned = window.model.paths_in_state(NOT_SCANNED)
    assert 8 <= len(kept) < 300 and len(kept) + len(not_scanned) == 300
    assert window.resume_action.isEnabled()
    with qtbot.waitSignal(window.scan_finished, timeout=SCAN_TIMEOUT_MS):
        window.scan_progress.scan_remaining()
    assert window.model.counts()["pending"] == 0
    assert len([row for row in window.model.rows if row.state == OK]) == 300


def test_scans_run_on_their_own_pool(qtbot, make_window, tiny_checkpoint, mixed_folder):
    from PySide6.QtCore import QThreadPool

    window = make_window(tiny_checkpoint)
    assert window.scans.pool is not QThreadPool.globalInstance()
    assert window.thumbnails.pool is not QThreadPool.globalInstance()
    assert window.detail.pool is not QThreadPool.globalInstance()
    window.intake.add_paths([str(mixed_folder)])
    qtbot.waitUntil(lambda: window.scans.scanning, timeout=SCAN_TIMEOUT_MS)
    assert window.scans.pool.activeThreadCount() == 1
    assert window.shutdown(timeout_ms=30_000)  # cancels the scan and waits for every pool
    assert window.scans.pool.activeThreadCount() == 0


def test_detail_pane_shows_patch_overlay_and_mosaic(qtbot, make_window, tiny_checkpoint, mixed_folder):
    from dgs_desktop.detector.patches import select_patches
    from dgs_desktop.scan.decode import decode_image

    window = make_window(tiny_checkpoint)
    scan(qtbot, window, [mixed_folder])
    path = str(mixed_folder / "sample00.jpg")
    with qtbot.waitSignal(window.detail.loaded, timeout=10_000):
        window.select_path(path)
    row = window.model.row_for_path(path)
    view = window.detail.image_view
    colors = {True: LOW_ENTROPY_COLOR.rgb(), False: HIGH_ENTROPY_COLOR.rgb()}
    outlines = {(int(o.rect().x()), int(o.rect().y()), int(o.rect().width()), int(o.rect().height())):
                o.pen().color().rgb() for o in view.outlines}
    assert len(view.outlines) == 49 and all(o.pen().isCosmetic() for o in view.outlines)
    for box, low in zip(row.boxes, row.low_entropy):
        assert outlines[tuple(box)] == colors[low]  # each scored patch outlined in its group's colour
    shown = view.grab().toImage()
    painted = {shown.pixel(x, y) for x in range(0, shown.width(), 2) for y in range(0, shown.height(), 2)}
    assert set(colors.values()) <= painted

    # the mosaic shown is the one the score came from
    decoded = decode_image(path)
    selection = select_patches(decoded.image)
    assert selection.boxes == row.boxes
    assert np.array_equal(mosaic_from_boxes(np.asarray(decoded.image), row.boxes), selection.mosaic)
    mosaic = window.detail.mosaic_pixmap.toImage()
    assert (mosaic.width(), mosaic.height()) == (224, 224)
    centre = QColor(mosaic.pixel(16, 16))
    assert tuple(selection.mosaic[16, 16]) == (centre.red(), centre.green(), centre.blue())
    assert QColor(mosaic.pixel(0, 10)).rgb() == colors[row.low_entropy[0]]
    text = window.detail.facts_text()
    assert row.result.sha256 in text.replace("\n", "") and "256 × 256" in text and "JPEG" in text

    # an evicted mosaic is rebuilt from the boxes: same pixels
    window.model.selections.clear()
    with qtbot.waitSignal(window.detail.loaded, timeout=10_000):
        window.select_path(str(mixed_folder / "sample01.png"))
    with qtbot.waitSignal(window.detail.loaded, timeout=10_000):
        window.select_path(path)
    assert window.detail.mosaic_pixmap.toImage() == mosaic


def test_small_and_broken_files(qtbot, make_window, tiny_checkpoint, mixed_folder):
    window = make_window(tiny_checkpoint)
    scan(qtbot, window, [mixed_folder / "tiny.png", mixed_folder / "broken.jpg"])
    tiny, broken = window.model.rows
    assert tiny.state == OK and len(tiny.boxes) == 49
    assert broken.state == ERROR and "error" in broken.status_text
    window.select_path(broken.path)
    assert "could not be scored" in window.detail.image_view.text()


def test_settings_persist(qtbot, make_window, tiny_checkpoint, private_settings):
    window = make_window(tiny_checkpoint)
    window.threshold_spin.setValue(0.7)
    window.close()
    settings = AppSettings()
    assert settings.active_model == str(tiny_checkpoint.directory)
    assert settings.recent_models[0] == str(tiny_checkpoint.directory)
    assert settings.threshold_for(tiny_checkpoint.sha256) == pytest.approx(0.7)
    assert settings.geometry("main") is not None
    again = make_window(tiny_checkpoint)
    assert again.threshold == pytest.approx(0.7)


def test_model_manager_shows_manifest_and_devices(qtbot, make_window, tiny_checkpoint):
    window = make_window(tiny_checkpoint)
    window.models.open_manager()
    dialog = window.models.manager_dialog
    assert tiny_checkpoint.sha256 in dialog.manifest_view.toPlainText()
    assert "test-tiny" in dialog.manifest_view.toPlainText()
    labels = [dialog.device_combo.itemText(i) for i in range(dialog.device_combo.count())]
    assert labels[:2] == ["Auto", "CPU"]
    assert dialog.recent_list.count() == 1
    dialog.close()


def test_offline_download_shows_plain_message(qtbot, make_window, monkeypatch):
    hub = pytest.importorskip("dgs_desktop.detector.hub", reason="dgs_desktop.detector.hub is not written yet")
    from dgs_desktop.errors import CheckpointError

    try:
        hub.download_checkpoint("hf:some-lab/dgs-model@main")
        pytest.fail("an offline download should fail")
    except CheckpointError as exc:
        expected = str(exc)
    window = make_window()
    window.models.open_manager("hub")
    dialog = window.models.manager_dialog
    dialog.repo_edit.setText("some-lab/dgs-model")
    dialog.revision_edit.setText("main")
    dialog.download_button.click()
    qtbot.waitUntil(lambda: dialog.download_button.isEnabled(), timeout=30_000)
    assert expected in dialog.hub_message.text()
    assert "Traceback" not in dialog.hub_message.text()
    assert not dialog.download_progress.isVisible()
    dialog.close()




FIFO_SCRIPT = r"""
import json, sys
from PySide6.QtCore import QTimer
from dgs_desktop.gui.app import make_application
from dgs_desktop.gui.main_window import MainWindow
from dgs_desktop.gui.settings import AppSettings

folder, checkpoint, settings = sys.argv[1:4]
app = make_application()
window = MainWindow(AppSettings(settings))
window.show()
window.controller.start()
window.models.load(checkpoint, "cpu")
report = {}

def thumbnails_done():
    return all(row.path in window.thumbnails._cache for row in window.model.rows)

def finish():
    report["rows"] = {row.path: [row.state, window.thumbnails.has(row.path)] for row in window.model.rows}
    window.close()  # unexported results: the window asks first
    report["asked"] = window.cases.unsaved_box is not None
    discard = next(b for b in window.cases.unsaved_box.buttons() if b.text().startswith("Discard"))
    discard.click()  # closes the window; nothing may still block on the pipe
    report["closed"] = not window.isVisible()
    app.quit()

def wait_for_thumbnails():
    if thumbnails_done():
        finish()
    else:
        QTimer.singleShot(50, wait_for_thumbnails)

def scanned(cancelled):
    for row in window.model.rows:
        window.thumbnails.get(row.path)  # as the table does when it paints a row
    wait_for_thumbnails()

window.scan_finished.connect(scanned)
window.intake.add_paths([folder])
app.exec()
print("REPORT " + json.dumps(report))
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
def test_named_pipe_in_folder_neither_blocks_thumbnails_nor_quitting(tmp_path, tiny_checkpoint):
    """A FIFO in a scanned folder: an error row, every image gets its thumbnail, and the
    process exits after the window closes (before the fix it waited on the pipe forever)."""
    folder = make_images(tmp_path / "evidence", 5)
    pipe = folder / "aaa-named-pipe.jpg"  # sorted first: its thumbnail is asked for first
    os.mkfifo(pipe)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    completed = subprocess.run([sys.executable, "-c", FIFO_SCRIPT, str(folder), str(tiny_checkpoint.directory),
                                str(tmp_path / "settings.ini")], env=env, capture_output=True, text=True,
                               timeout=180)
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.split("REPORT ", 1)[1])
    assert report["asked"] and report["closed"]
    rows = report["rows"]
    assert rows[str(pipe)] == ["error", False]
    others = {path: value for path, value in rows.items() if path != str(pipe)}
    assert len(others) == 5 and all(value == ["ok", True] for value in others.values())


def test_model_manager_shows_a_hub_models_published_metrics(qtbot, make_window, tiny_checkpoint, monkeypatch):
    """The lab-to-analyst loop: the card's evaluation (read off the GUI thread) beside the manifest."""
    import dataclasses

    from dgs_desktop.detector import modelcard

    asked = []

    def fake_card(spec, **kwargs):
        asked.append(spec)
        return [modelcard.CardEvaluation(
            name="GenImage", rows=[{"subset": "Midjourney", "n_real": 10, "n_fake": 10, "acc": 0.95, "r_acc": 0.9,
                                    "f_acc": 1.0, "ap": 0.99}],
            paper_table={"subset": "paper_table", "n_real": 10, "n_fake": 10, "acc": 0.976, "r_acc": None,
                         "f_acc": None, "ap": 0.998})]

    monkeypatch.setattr(modelcard, "hub_card_metrics", fake_card)
    window = make_window()
    hub_model = dataclasses.replace(tiny_checkpoint, source="hf:some-lab/dgs-model@main")
    window.models.load(hub_model, "cpu")
    qtbot.waitUntil(lambda: window.controller.state == READY, timeout=SCAN_TIMEOUT_MS)
    window.models.open_manager()
    dialog = window.models.manager_dialog
    qtbot.waitUntil(lambda: "Published evaluation" in dialog.manifest_view.toPlainText(), timeout=SCAN_TIMEOUT_MS)
    text = dialog.manifest_view.toPlainText()
    assert asked and asked[0] == "hf:some-lab/dgs-model@main"
    assert "GenImage: acc 97.6, AP 99.8 (paper_table, 1 subsets)" in text
    assert "Midjourney: acc 95.0" in text and tiny_checkpoint.sha256 in text
    dialog.close()


def test_precision_is_chosen_in_the_model_manager_and_recorded(qtbot, make_window, tiny_checkpoint, mixed_folder,
                                                               tmp_path):
    """--precision of the headless scan, in the window: the choice reloads the model, rescoring
    the rows (scores differ in the last bits), and the export records it."""
    window = make_window(tiny_checkpoint)
    scan(qtbot, window, [mixed_folder])
    window.models.open_manager()
    dialog = window.models.manager_dialog
    for choice in ("fp32", "bf16"):
        with qtbot.waitSignal(window.controller.session_changed, timeout=SCAN_TIMEOUT_MS):
            dialog.precision_combo.setCurrentIndex(dialog.precision_combo.findData(choice))
            dialog.precision_combo.activated.emit(dialog.precision_combo.currentIndex())
        assert window.controller.session.scanner.precision == choice
        assert choice in window.controller.session.scored_on
        qtbot.waitUntil(lambda: not window.scans.scanning and all(
            row.device == window.controller.session.scored_on for row in window.model.rows if row.result is not None),
            timeout=SCAN_TIMEOUT_MS)
        assert window.settings.precision == choice
        out = tmp_path / f"{choice}.csv"
        assert window.exports.export_csv(str(out))
        _, rows = read_csv(out)
        assert {row["precision"] for row in rows if row["status"] == "ok"} == {choice}
    dialog.close()
