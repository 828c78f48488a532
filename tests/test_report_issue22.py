"""Issue 22: a report stands on its own (page 1 says what matters, the case's history and log
are in it, no Python reprs, a sha256 stays on one or two lines in the PDF)."""

from __future__ import annotations

import pytest
from provenance_samples import encoded, picture

from dgs_desktop.cli import main


@pytest.fixture
def case_with_two_runs(tiny_checkpoint, tmp_path):
    """A case scored by the tiny model, then one file re-scored by another (its first score kept)."""
    import torch

    from dgs_desktop.case import Case
    from dgs_desktop.detector.checkpoint import load_detector
    from dgs_desktop.detector.demo import save_demo_checkpoint
    from dgs_desktop.detector.manifest import read_checkpoint
    from dgs_desktop.scan.engine import Scanner

    folder = tmp_path / "ev"
    folder.mkdir()
    files = [folder / "0.png", folder / "copy.png", folder / "notes.txt.png"]
    files[0].write_bytes(encoded(picture(seed=70), "PNG"))
    files[1].write_bytes(files[0].read_bytes())
    files[2].write_bytes(b"not an image at all")
    other = read_checkpoint(save_demo_checkpoint(tmp_path / "other", seed=5))
    case_path = tmp_path / "c.dgscase"
    with Case.create(case_path, name="Inquiry") as case:
        case.add_paths(str(f) for f in files)
        case.set_details("A. Examiner", "2026/117")
        case.set_threshold(0.4)
        for checkpoint, targets in ((tiny_checkpoint, files), (other, files[:1])):
            scanner = Scanner(load_detector(checkpoint, "cpu"), torch.device("cpu"))
            case.record_results(list(scanner.scan(targets)), str(checkpoint.directory), checkpoint.sha256, "cpu",
                                precision="fp32")
        case.set_note(str(files[0]), "from the forum")
        case.log("exported", "CSV written to /out/r.csv: 3 row(s), all rows")
    return case_path, files, other


def test_case_report_front_page_history_and_log(case_with_two_runs, tiny_checkpoint, tmp_path):
    case_path, files, other = case_with_two_runs
    out = tmp_path / "r.html"
    assert main(["report", str(case_path), "--html", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    front = html.split("<h2>Summary</h2>")[0]
    assert "Case number</td><td>2026/117" in front and "Examiner</td><td>A. Examiner" in front
    assert "test-tiny" in front and "verdicts say nothing" in front  # the model warning, on page 1
    assert "Calibration</td><td>none" in front and "Inconclusive reasons</td><td>" in front
    assert front.index("Case number") < front.index("<h2>Overview</h2>")
    # rows from two models: the overview names each row's model, with a legend
    assert "<th>Model</th>" in front and f"A = {other.directory}" in front
    assert "BytesIO" not in html and "object at 0x" not in html
    sections = html.split('<div class="item">')
    copy = next(s for s in sections if "Image 2 of 3" in s)
    assert f"Same content as</td><td>{files[0]}" in copy
    history = html.split("Appendix: scoring history")[1]
    assert str(tiny_checkpoint.directory) in history and str(other.directory) in history
    assert history.count("<td class='mono'>0.png</td>") == 2  # its first score and the re-score
    log = html.split("Appendix: case log")[1]
    for action in ("created", "added", "details", "exported"):
        assert f"<td>{action}</td>" in log
    assert "CSV written to /out/r.csv" in log
    # the command line's examiner and case number replace the case's
    assert main(["report", str(case_path), "--html", str(out), "--examiner", "B. Other", "--case-number", "7"]) == 0
    assert "Examiner</td><td>B. Other" in out.read_text(encoding="utf-8")


def test_csv_report_says_what_its_time_is(tiny_checkpoint, tmp_path):
    folder = tmp_path / "ev"
    folder.mkdir()
    (folder / "a.png").write_bytes(encoded(picture(seed=71), "PNG"))
    assert main(["scan", str(folder), "--checkpoint", str(tiny_checkpoint.directory), "--csv",
                 str(tmp_path / "s.csv"), "--no-progress", "--device", "cpu"]) == 0
    assert main(["report", str(tmp_path / "s.csv"), "--html", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Scan time" not in html and "CSV last changed</td>" in html
    assert "Case number</td><td>not given" in html


def test_pdf_keeps_a_sha256_on_one_or_two_lines(case_with_two_runs):
    """Qt's layout of the report (what the PDF prints): every sha256 in a key/value table."""
    pytest.importorskip("PySide6")
    from dgs_desktop.gui.report_pdf import ensure_gui_application, report_document
    from dgs_desktop.report import build_html, find_model, read_source

    case_path, _, _ = case_with_two_runs
    source = read_source(case_path)
    ensure_gui_application()
    document = report_document(build_html(source, find_model(source.run)))
    document.setPageSize(__import__("PySide6.QtCore", fromlist=["QSizeF"]).QSizeF(700, 1000))  # A4 at 150 dpi, margins
    document.documentLayout()  # lays the document out
    found = 0
    for sha in source.run.checkpoint_sha256s:
        cursor = document.find(sha)
        while not cursor.isNull():
            block = cursor.block()
            layout, start = block.layout(), cursor.selectionStart() - block.position()
            first, last = layout.lineForTextPosition(start), layout.lineForTextPosition(start + 63)
            assert last.lineNumber() - first.lineNumber() + 1 <= 2, block.text()
            found += 1
            cursor = document.find(sha, cursor)
    assert found >= 4  # the model table, the legend, the history, the log
