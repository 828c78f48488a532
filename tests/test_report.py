"""`dgs-desktop report`: the self-contained HTML report, its PDF, and what it refuses.

Inputs are generated and scanned here with the tiny model. Chromium and pdftoppm checks are
skipped where those tools are not installed (scripts/report_preview.py makes the same
renders for a person to look at)."""

from __future__ import annotations

import base64
import csv
import io
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from provenance_samples import SIGNER_NAME, encoded, picture, sample_files

from dgs_desktop.cli import main
from dgs_desktop.detector.patches import select_patches
from dgs_desktop.errors import UsageError
from dgs_desktop.report import images
from dgs_desktop.report.builder import GENERATOR_MARK
from dgs_desktop.report.output import is_our_report
from dgs_desktop.scan.decode import decode_image
from dgs_desktop.verdict import assess, verdict

HOSTILE_NAME = '<img src=x onerror="alert(1)">.png'


def scan(folder, checkpoint, out):
    assert main(["scan", str(folder), "--checkpoint", str(checkpoint.directory), "--csv", str(out),
                 "--no-progress", "--device", "cpu"]) == 0
    with open(out, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def scanned(tiny_checkpoint, tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    folder = root / "images"
    folder.mkdir()
    sample_files(folder)
    (folder / HOSTILE_NAME).write_bytes(encoded(picture(seed=30), "PNG"))
    (folder / "phone.heic").write_bytes(encoded(picture(seed=31), "HEIF", quality=90))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    rows = scan(folder, tiny_checkpoint, root / "scan.csv")
    html_path = root / "report.html"
    assert main(["report", str(root / "scan.csv"), "--html", str(html_path)]) == 0
    return root, rows, html_path.read_text(encoding="utf-8")


def data_images(html: str, alt: str) -> list[Image.Image]:
    found = re.findall(r'<img src="data:image/(?:png|jpeg);base64,([A-Za-z0-9+/=]+)" alt="' + re.escape(alt), html)
    return [Image.open(io.BytesIO(base64.b64decode(data))) for data in found]


def test_html_is_self_contained(scanned):
    _, _, html = scanned
    assert f'<meta name="generator" content="{GENERATOR_MARK}' in html
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert "<script" not in html.lower() and "<link" not in html.lower() and "url(" not in html
    references = re.findall(r'\b(?:src|href|action|poster)\s*=\s*"([^"]*)"', html)
    assert references and all(ref.startswith("data:image/") for ref in references)


def test_text_from_files_is_escaped(scanned):
    _, _, html = scanned
    assert HOSTILE_NAME not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;.png" in html
    # Metadata text is escaped too (the ComfyUI prompt JSON has quotes and braces).
    assert "&quot;class_type&quot;: &quot;KSampler&quot;" in html


def test_summary_counts_and_histogram(scanned):
    _, rows, html = scanned
    labels = [r["verdict"] for r in rows]  # the scan's three-way verdicts, recomputed by the report
    for r in rows:
        if r["status"] == "ok" and not r["inconclusive_reasons"]:
            assert r["verdict"] == verdict(float(r["fake_probability"]), float(r["threshold"]))
    assert f'<td class="k">Images</td><td>{len(rows)}</td>' in html
    assert f'<td class="k">Fake</td><td>{labels.count("fake")}</td>' in html
    assert f'<td class="k">Real</td><td>{labels.count("real")}</td>' in html
    assert f'<td class="k">Inconclusive</td><td>{labels.count("inconclusive")}</td>' in html
    assert f'<td class="k">Not scored (errors)</td><td>{labels.count("")}</td>' in html
    [chart] = data_images(html, "histogram of P(fake)")
    assert chart.size == (1120, 420)


def test_every_row_has_its_section(scanned):
    _, rows, html = scanned
    sections = html.split('<div class="item">')[1:]
    assert len(sections) == len(rows)
    for row, section in zip(rows, sections):
        assert row["sha256"] and row["sha256"] in section
        assert "Threshold</td><td>0.5 (fake when P(fake) &gt; threshold)" in section
        if row["status"] == "ok":
            p = float(row["fake_probability"])
            assert f"<td>{p:.4f}</td>" in section
            label = row["verdict"]  # three-way; the two-way rule where no reason applies
            assert label == (verdict(p, float(row["threshold"])) if not row["inconclusive_reasons"] else "inconclusive")
            assert f'<span class="{label}">{label}</span>' in section
            assert 'alt="thumbnail"' in section and 'alt="patch overlay"' in section and 'alt="mosaic"' in section
            assert f"{row['width']}×{row['height']} px" in section
        else:
            assert "no verdict (error)" in section


def test_provenance_in_the_report(scanned):
    _, rows, html = scanned
    c2pa_section = next(s for s in html.split('<div class="item">') if "c2pa_ai.jpg</h3>" in s)
    assert f"{SIGNER_NAME} (DGS Test Lab)" in c2pa_section
    assert "valid, signer not on a trust list" in c2pa_section
    assert "C2PA declares AI</td><td>trainedAlgorithmicMedia" in c2pa_section
    webui = next(s for s in html.split('<div class="item">') if "webui.png</h3>" in s)
    assert "Signal (generator)</td><td>Stable Diffusion WebUI" in webui


def test_mosaic_is_exactly_what_the_detector_saw(scanned):
    root, _, html = scanned
    mosaics = data_images(html, "mosaic")
    ok_rows = [r for r in csv.DictReader(open(root / "scan.csv", encoding="utf-8")) if r["status"] == "ok"]
    assert len(mosaics) == len(ok_rows)
    for row, mosaic in list(zip(ok_rows, mosaics))[:3]:
        expected = select_patches(decode_image(row["path"]).image).mosaic
        assert np.array_equal(np.asarray(mosaic.convert("RGB")), expected)


def test_model_and_run_on_the_first_page(scanned, tiny_checkpoint):
    _, rows, html = scanned
    head = html.split('<div class="item">')[0]  # everything before the first image's page
    assert tiny_checkpoint.sha256 in head
    assert "Architecture</td><td>test-tiny" in head
    assert "Provenance: purpose</td><td>tests" not in head  # training settings: in the appendix
    assert "Provenance: purpose</td><td>tests" in html.split("Appendix: how the model was trained")[1]
    assert "Validation metrics</td><td>none recorded" in head
    assert "Device</td><td>cpu" in head and f"Precision</td><td>{rows[0]['precision']}" in head
    assert f"dgs-desktop {rows[0]['dgs_desktop_version']}" in head


def test_validation_metrics_from_the_manifest(tiny_checkpoint, tmp_path):
    import torch

    from dgs_desktop.detector.checkpoint import save_checkpoint
    from dgs_desktop.detector.manifest import read_checkpoint
    from dgs_desktop.detector.model import build_detector

    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "trained", build_detector("test-tiny", None), architecture="test-tiny",
                           base_weights="random-init",
                           provenance={"final_metrics": {"val": {"acc": 0.875, "ap": 0.9321}}})
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.png").write_bytes(encoded(picture(seed=3), "PNG"))
    scan(folder, read_checkpoint(path), tmp_path / "s.csv")
    assert main(["report", str(tmp_path / "s.csv"), "--html", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Validation: acc</td><td>0.875" in html and "Validation: ap</td><td>0.9321" in html
    # Another checkpoint's manifest is not passed off as this run's model.
    assert main(["report", str(tmp_path / "s.csv"), "--html", str(tmp_path / "r2.html"),
                 "--checkpoint", str(tiny_checkpoint.directory)]) == 0
    other = (tmp_path / "r2.html").read_text(encoding="utf-8")
    assert "different or modified checkpoint" in other and "Validation: acc" not in other


def test_missing_and_changed_files_are_said(tiny_checkpoint, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.png").write_bytes(encoded(picture(seed=40 + i), "PNG"))
    scan(folder, tiny_checkpoint, tmp_path / "s.csv")
    (folder / "0.png").unlink()
    (folder / "1.png").write_bytes(encoded(picture(seed=99), "PNG"))
    assert main(["report", str(tmp_path / "s.csv"), "--html", str(tmp_path / "r.html")]) == 0
    sections = (tmp_path / "r.html").read_text(encoding="utf-8").split('<div class="item">')[1:]
    assert "The file cannot be read now (file not found" in sections[0] and 'alt="mosaic"' not in sections[0]
    assert "The file has changed since the scan" in sections[1]
    assert "has changed" not in sections[2] and 'alt="mosaic"' in sections[2]


def test_never_overwrites_a_file_that_is_not_ours(scanned, tmp_path, capsys):
    root, _, _ = scanned
    victim = tmp_path / "notes.html"
    victim.write_text("<html>the analyst's own notes</html>")
    assert main(["report", str(root / "scan.csv"), "--html", str(victim)]) == 2
    assert "is not a report written by dgs-desktop" in capsys.readouterr().err
    assert victim.read_text() == "<html>the analyst's own notes</html>"
    # Its own report is replaced; --overwrite replaces anything.
    ours = tmp_path / "ours.html"
    assert main(["report", str(root / "scan.csv"), "--html", str(ours)]) == 0
    assert main(["report", str(root / "scan.csv"), "--html", str(ours)]) == 0
    assert main(["report", str(root / "scan.csv"), "--html", str(victim), "--overwrite"]) == 0
    assert is_our_report(victim)
    # The input CSV is never a valid output.
    assert main(["report", str(root / "scan.csv"), "--html", str(root / "scan.csv")]) == 2


def test_refuses_inputs_that_are_not_scans(tmp_path, capsys):
    other = tmp_path / "other.csv"
    other.write_text("name,value\na,1\n")
    assert main(["report", str(other), "--html", str(tmp_path / "r.html")]) == 2
    assert "is not a DGS Desktop scan CSV" in capsys.readouterr().err
    assert main(["report", str(other)]) == 2
    assert "give --html OUT.html and/or --pdf OUT.pdf" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_case_file_input(tiny_checkpoint, tmp_path, capsys):
    import torch

    from dgs_desktop import case as case_module
    from dgs_desktop.detector.checkpoint import load_detector
    from dgs_desktop.scan.engine import Scanner

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(2):
        (folder / f"{i}.png").write_bytes(encoded(picture(seed=60 + i), "PNG"))
    scanner = Scanner(load_detector(tiny_checkpoint, "cpu"), torch.device("cpu"))
    results = list(scanner.scan([folder / "0.png", folder / "1.png"]))
    case_path = tmp_path / "Case 42.dgscase"
    case = case_module.Case.create(case_path, name="Case 42")
    case.add_paths([str(folder / "0.png"), str(folder / "1.png"), str(folder / "later.png")])
    case.set_threshold(0.4)
    case.set_model(str(tiny_checkpoint.directory), tiny_checkpoint.sha256, "cpu")
    case.record_results(results, str(tiny_checkpoint.directory), tiny_checkpoint.sha256, "cpu")
    case.set_note(str(folder / "0.png"), "Posted <b>2024-05-01</b> on the forum")
    case.set_tags(str(folder / "0.png"), ["exhibit-7"])
    case.close()
    before = case_path.read_bytes()

    assert main(["report", str(case_path), "--html", str(tmp_path / "r.html")]) == 0
    assert case_path.read_bytes() == before  # read-only
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    first = html.split('<div class="item">')[0]
    assert "Case</td><td>Case 42" in first and "From case file" in first
    assert "Architecture</td><td>test-tiny" in first and "Threshold</td><td>0.4 (" in first
    sections = html.split('<div class="item">')[1:]
    assert len(sections) == 3
    assert "Posted &lt;b&gt;2024-05-01&lt;/b&gt; on the forum<br>Tags: exhibit-7" in sections[0]
    assert f"<td>{results[1].fake_probability:.4f}</td>" in sections[1]
    label = assess(results[1], 0.4).verdict
    assert label and f'<span class="{label}">{label}</span>' in sections[1]
    assert "no verdict" in sections[2] and "not scanned in this case" in sections[2]


def test_pdf_through_qt(scanned, tmp_path):
    root, rows, _ = scanned
    pdf = tmp_path / "report.pdf"
    assert main(["report", str(root / "scan.csv"), "--pdf", str(pdf)]) == 0
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and is_our_report(pdf)
    assert len(re.findall(rb"/Type\s*/Page\b", data)) >= 1 + len(rows)  # each image starts a page
    assert main(["report", str(root / "scan.csv"), "--pdf", str(pdf)]) == 0  # our own PDF: replaced
    foreign = tmp_path / "foreign.pdf"
    foreign.write_bytes(b"%PDF-1.4\n% someone else's\n")
    assert main(["report", str(root / "scan.csv"), "--pdf", str(foreign)]) == 2
    assert foreign.read_bytes() == b"%PDF-1.4\n% someone else's\n"
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "4", str(pdf), str(tmp_path / "page")],
                       check=True, timeout=120)
        pages = [np.asarray(Image.open(p).convert("RGB")).astype(int) for p in sorted(tmp_path.glob("page-*.png"))]
        assert len(pages) == 4
        assert (pages[0] < 200).any(axis=2).mean() > 0.01  # the first page has text, not blank
        colourful = [((a.max(axis=2) - a.min(axis=2)) > 80).mean() for a in pages]
        assert max(colourful[1:]) > 0.02  # an image's page: thumbnail, overlay and mosaic


@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")), reason="no chromium")
def test_html_renders_in_headless_chromium(scanned, tmp_path):
    root, _, _ = scanned
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    html = root / "report.html"
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={shot}", "--window-size=1000,1800", html.as_uri()],
                   check=True, capture_output=True, timeout=180)
    array = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert array.shape[:2] == (1800, 1000)
    histogram_colours = [(images.REAL_COLOUR, 0), (images.FAKE_COLOUR, 0)]
    found = [((np.abs(array - colour).sum(axis=2) < 12).sum()) for colour, _ in histogram_colours]
    assert sum(found) > 200  # the inline histogram was decoded and drawn
    assert (np.abs(array - images.LOW_ENTROPY_COLOUR).sum(axis=2) < 30).sum() > 50  # patch overlay outlines


def test_overlay_outlines_the_selected_patches():
    image = picture(320, 256, seed=5)
    selection = select_patches(image)
    drawn = np.asarray(images.overlay(image, selection, side=320)).astype(int)
    outline = (images.LOW_ENTROPY_COLOUR, images.HIGH_ENTROPY_COLOUR)
    for x, y, _, h in selection.boxes:
        edge = drawn[y + h // 2, x]  # left edge, half way down (a neighbour's outline may cover it)
        assert min(np.abs(edge - colour).sum() for colour in outline) < 10
    for colour in outline:
        assert (np.abs(drawn - colour).sum(axis=2) < 10).sum() > 32 * 4


def test_histogram_bins_and_colours():
    chart = np.asarray(images.histogram([0.05] * 3 + [0.95], 0.5)).astype(int)
    red = (np.abs(chart - images.FAKE_COLOUR).sum(axis=2) < 6).sum()
    green = (np.abs(chart - images.REAL_COLOUR).sum(axis=2) < 6).sum()
    assert green > 2.5 * red > 0  # three below the threshold for one above


def _colour_columns(chart: np.ndarray, colour) -> np.ndarray:
    return np.flatnonzero((np.abs(chart - colour).sum(axis=2) < 6).any(axis=0))


def _bar_colours(chart: np.ndarray) -> list[tuple[int, int, int]]:
    """The colour of each bar, left to right, read along the bars' bottom row."""
    bar = (np.abs(chart - images.REAL_COLOUR).sum(axis=2) < 6) | (np.abs(chart - images.FAKE_COLOUR).sum(axis=2) < 6)
    row = chart[np.flatnonzero(bar.any(axis=1)).max()]
    colours, previous = [], None
    for pixel in map(tuple, row):
        current = pixel if pixel in (images.REAL_COLOUR, images.FAKE_COLOUR) else None
        if current is not None and current != previous:
            colours.append(current)
        previous = current
    return colours


@pytest.mark.parametrize("scores, threshold", [
    ([0.49, 0.51], 0.5),
    ([0.52, 0.5249, 0.525, 0.5251, 0.53, 0.9], 0.525),  # 20 fixed bins would put these in one bar
    ([0.05] * 3 + [0.95], 0.5),
])
def test_histogram_bars_are_the_windows_bins_split_at_the_threshold(scores, threshold):
    from dgs_desktop.histogram import threshold_bins

    chart = np.asarray(images.histogram(scores, threshold)).astype(int)
    bins = threshold_bins(scores, threshold)  # what the window's histogram shows for these scores
    expected = [images.FAKE_COLOUR if bins.is_fake_bin(i) else images.REAL_COLOUR
                for i, count in enumerate(bins.counts) if count]
    assert _bar_colours(chart) == expected
    dashed = np.flatnonzero((np.abs(chart - (30, 30, 30)).sum(axis=2) < 6).sum(axis=0) > 100)  # the threshold line
    green, red = _colour_columns(chart, images.REAL_COLOUR), _colour_columns(chart, images.FAKE_COLOUR)
    assert len(dashed) and green.max() < dashed.min() and dashed.max() < red.min()  # no bar crosses it


def test_report_from_window_results_with_analyst_notes(tmp_path):
    from dgs_desktop.record import ScanRecord
    from dgs_desktop.report import build_html, find_model
    from dgs_desktop.report.inputs import source_from_results
    from dgs_desktop.scan.csvio import RunInfo

    path = tmp_path / "a.png"
    path.write_bytes(encoded(picture(seed=50), "PNG"))
    decoded = decode_image(path)
    results = [ScanRecord(path=str(path), status="ok", sha256=decoded.sha256, fake_probability=0.73,
                          width=decoded.width, height=decoded.height, format="PNG", provenance="no metadata",
                          analyst_note="Seen on <b>forum</b>\nsecond line", tags=["forum", "urgent"]),
               ScanRecord(path=str(tmp_path / "b.png"), status="error", error="file not found")]
    run = RunInfo(checkpoint="hf:lab/model@v1", checkpoint_sha256="ab" * 32, device="cuda:0 (H200)",
                  threshold=0.6, precision="bf16")
    source = source_from_results(results, run, case_name="Case 42")
    html = build_html(source, find_model(source.run))
    first = html.split('<div class="item">')[0]
    assert "Case</td><td>Case 42" in first and "bf16" in first and "cuda:0 (H200)" in first
    assert "the model came from the hub; pass --checkpoint DIR" in first
    section = html.split('<div class="item">')[1]
    assert "Analyst&#x27;s note</td><td>Seen on &lt;b&gt;forum&lt;/b&gt;<br>second line<br>Tags: forum, urgent" in section
    assert "<td>0.7300</td>" in section and '<span class="fake">fake</span>' in section
    assert "Threshold</td><td>0.6 (" in section
    assert "no verdict (error)" in html.split('<div class="item">')[2]


def test_window_export_runs_on_a_pool_thread(qtbot, tmp_path):
    """File → Export report: HTML built on a worker thread and the PDF rendered in a child
    process (both off the GUI thread), refusing a foreign file before any work."""
    from dgs_desktop.gui.report_pdf import export_report
    from dgs_desktop.gui.workers import Task, start_task
    from dgs_desktop.record import ScanRecord
    from dgs_desktop.report.inputs import source_from_results
    from dgs_desktop.scan.csvio import RunInfo

    path = tmp_path / "a.jpg"
    path.write_bytes(encoded(picture(seed=51), "JPEG"))
    decoded = decode_image(path)
    source = source_from_results([ScanRecord(path=str(path), status="ok", sha256=decoded.sha256,
                                             fake_probability=0.2, width=decoded.width, height=decoded.height)],
                                 RunInfo(checkpoint="x", checkpoint_sha256="", device="cpu", threshold=0.5))
    jobs: set = set()
    done = []
    task = Task(export_report, source, tmp_path / "r.html", tmp_path / "r.pdf")
    task.signals.succeeded.connect(done.append)
    task.signals.failed.connect(done.append)
    start_task(task, jobs)
    qtbot.waitUntil(lambda: bool(done), timeout=60000)
    assert done[0] == [tmp_path / "r.html", tmp_path / "r.pdf"]
    assert is_our_report(tmp_path / "r.html") and is_our_report(tmp_path / "r.pdf")
    foreign = tmp_path / "mine.pdf"
    foreign.write_bytes(b"%PDF-1.7 analyst's file")
    with pytest.raises(UsageError, match="not a report written by dgs-desktop"):
        export_report(source, None, foreign)
    assert foreign.read_bytes() == b"%PDF-1.7 analyst's file"


def test_window_pdf_is_rendered_in_a_child_process_that_a_cancel_ends(tmp_path, monkeypatch):
    """The window's PDF: Qt's codecs and PDF writer run in a child process (never on a worker
    thread of the window, where they deadlocked with the GUI thread); cancelling ends the child
    and leaves no file, a failed child is one plain-words error."""
    import sys

    from dgs_desktop.gui import report_pdf

    html = "<html><body><h1>Report</h1><p>one line</p></body></html>"
    children = []
    real_popen = report_pdf.subprocess.Popen
    monkeypatch.setattr(report_pdf.subprocess, "Popen", lambda *a, **k: children.append(a[0]) or real_popen(*a, **k))
    written = report_pdf.write_pdf_in_child(html, tmp_path / "a.pdf", False, "title")
    assert written == tmp_path / "a.pdf" and is_our_report(written)
    assert children[0][1:3] == ["-m", "dgs_desktop.gui.report_pdf"]
    with pytest.raises(InterruptedError):
        report_pdf.write_pdf_in_child(html, tmp_path / "b.pdf", False, "title", cancelled=lambda: True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pdf"]  # nothing half-written stays
    monkeypatch.setattr(sys, "executable", "/bin/false")
    with pytest.raises(UsageError, match="the PDF could not be written: exit status 1"):
        report_pdf.write_pdf_in_child(html, tmp_path / "c.pdf", False, "title")
    foreign = tmp_path / "mine.pdf"
    foreign.write_bytes(b"%PDF-1.7 analyst's file")
    with pytest.raises(UsageError, match="not a report written by dgs-desktop"):
        report_pdf.write_pdf_in_child(html, foreign, False, "title")
    assert foreign.read_bytes() == b"%PDF-1.7 analyst's file"


# ------------------------------------------------------------------------------ the window
def test_window_provenance_tab_column_and_export_report(qtbot, tiny_checkpoint, tmp_path, monkeypatch):
    pytest.importorskip("PySide6")
    from dgs_desktop.gui.main_window import MainWindow
    from dgs_desktop.gui.model_controller import READY
    from dgs_desktop.gui.results_model import PROVENANCE_COL, ROW_ROLE
    from dgs_desktop.gui.settings import SETTINGS_ENV, AppSettings

    monkeypatch.setenv(SETTINGS_ENV, str(tmp_path / "settings.ini"))
    folder = tmp_path / "case"
    folder.mkdir()
    cases = sample_files(folder)
    window = MainWindow(AppSettings())
    qtbot.addWidget(window)
    window.resize(1300, 800)
    window.show()
    window.controller.start()
    window.models.load(str(tiny_checkpoint.directory), "cpu")
    qtbot.waitUntil(lambda: window.controller.state == READY, timeout=60000)
    with qtbot.waitSignal(window.scan_finished, timeout=60000):
        window.intake.add_paths([str(folder)])
    attached = window.provenance
    assert window.export_report_action.isEnabled()

    # The table's provenance column: the same line as the CSV.
    from dgs_desktop.provenance.summary import analyze

    rows = {window.model.index(r, 0).data(ROW_ROLE).name: r for r in range(window.model.rowCount())}
    for name in ("c2pa_ai.jpg", "webui.png"):
        cell = window.model.index(rows[name], PROVENANCE_COL).data()
        assert cell == analyze(cases[name][0]).summary

    # The provenance tab follows the selected row.
    attached.show()
    proxy_row = next(r for r in range(window.proxy.rowCount())
                     if window.proxy.index(r, 0).data(ROW_ROLE).name == "c2pa_ai.jpg")
    with qtbot.waitSignal(attached.panel.shown, timeout=20000):
        window.table.setCurrentIndex(window.proxy.index(proxy_row, 1))
    qtbot.waitUntil(lambda: "C2PA valid" in attached.panel.summary.text(), timeout=20000)
    qtbot.wait(300)  # let the panel lay out its new rows before the screenshot
    window.grab().save(str(tmp_path / "window.png"))

    # File → Export report, HTML then PDF, in the background.
    html_path = tmp_path / "window-report.html"
    window.exports.export_report(str(html_path))
    qtbot.waitUntil(lambda: window.export_report_action.isEnabled() and html_path.exists(), timeout=60000)
    html = html_path.read_text(encoding="utf-8")
    assert html.count('<div class="item">') == len(cases)
    assert "From window session" in html and tiny_checkpoint.sha256 in html
    assert window.export_report_action in window.menus[0].actions()  # File menu
    window.exports.export_report(str(tmp_path / "window-report"), pdf=True)
    qtbot.waitUntil(lambda: (tmp_path / "window-report.pdf").exists() and window.export_report_action.isEnabled(),
                    timeout=60000)
    assert is_our_report(tmp_path / "window-report.pdf")
