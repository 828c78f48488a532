"""The window with a calibration (issue 17): its threshold to every digit, the reference rate
per row, three verdicts, and a refusal of another model's calibration."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("PySide6")

from gui_helpers import open_window, scan_paths  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402

from dgs_desktop.calibration import build_calibration, write_calibration  # noqa: E402
from dgs_desktop.gui.results_model import REFERENCE_COL, VERDICT_COL  # noqa: E402


def test_calibration_sets_the_threshold_and_the_reference_rate(qtbot, tiny_checkpoint, tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(tmp_path / f"photo{i}.png")
    Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(tmp_path / "tiny.png")
    window = open_window(qtbot, tiny_checkpoint)
    scan_paths(qtbot, window, sorted(tmp_path.glob("*.png")))
    scores = [(f"/ref/{i}.jpg", f"{i:064x}", float(p)) for i, p in enumerate(np.linspace(0.05, 0.95, 40))]
    path = tmp_path / "cal.json"
    calibration = write_calibration(path, build_calibration(scores, tiny_checkpoint.sha256, 0.05))
    from dgs_desktop.gui.calibration_dialog import CalibrationDialog

    dialog = CalibrationDialog(window)
    dialog.calibration_chosen.connect(window.models.set_calibration)
    assert dialog.load(str(path))
    assert window.threshold == calibration.threshold  # every digit, not the spin box's three
    assert window.exports.run_info().calibration.sha256 == calibration.sha256
    rows = {row.name: row for row in window.model.rows}
    for index, row in enumerate(window.model.rows):
        expected = calibration.reference_fpr(row.probability)
        assert window.model.index(index, REFERENCE_COL).data() == f"{expected:.1%}"
        assert "real reference photos" in window.model.index(index, VERDICT_COL).data(Qt.ItemDataRole.ToolTipRole)
    tiny_index = window.model.rows.index(rows["tiny.png"])
    assert window.model.index(tiny_index, VERDICT_COL).data() == "inconclusive"
    assert "few-patches" in window.model.index(tiny_index, VERDICT_COL).data(Qt.ItemDataRole.ToolTipRole)
    assert window.model.counts()["inconclusive"] == 1
    window.table.selectRow(tiny_index)
    if os.environ.get("DGS_SCREENSHOT_DIR"):
        window.resize(1600, 1000)
        qtbot.wait(300)
        window.grab().save(os.path.join(os.environ["DGS_SCREENSHOT_DIR"], "calibration.png"))
        dialog.show()
        qtbot.wait(200)
        dialog.grab().save(os.path.join(os.environ["DGS_SCREENSHOT_DIR"], "calibration_dialog.png"))
    # another model's calibration is refused and changes nothing
    other = write_calibration(tmp_path / "other.json", build_calibration(scores, "e" * 64, 0.05))
    monkeypatch.setattr("dgs_desktop.gui.calibration_dialog.show_error", lambda *args: None)
    assert not dialog.load(other.path) and window.model.calibration.sha256 == calibration.sha256
    window.models.set_calibration(None)
    assert window.threshold == tiny_checkpoint.threshold and window.model.index(0, REFERENCE_COL).data() == ""
