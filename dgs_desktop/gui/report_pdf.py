"""The report as PDF through Qt's own text layout and PDF writer (no browser needed).

QTextDocument renders the report's HTML (its tables, text and images); the images are the
report's data: URIs, decoded here into the document's resources so nothing is fetched.

The window never renders a PDF in its own process: Qt's image codecs and PDF writer on a
worker thread deadlocked against the GUI thread (the worker stuck in `QImage.fromData`, seen
in CI), and on the GUI thread a long report would freeze the window. So the window's export
builds the HTML on a worker thread and hands it to a child process, `python -m
dgs_desktop.gui.report_pdf HTML PDF`, which can be cancelled by ending it.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QByteArray, QCoreApplication, QMarginsF, QUrl
from PySide6.QtGui import QGuiApplication, QImage, QPageLayout, QPageSize, QPdfWriter, QTextDocument

from ..atomic import atomic_path
from ..report.output import PDF_CREATOR, check_output

_DATA_URI = re.compile(r'src="(data:image/(?:png|jpeg);base64,([A-Za-z0-9+/=]+))"')


def ensure_gui_application() -> QCoreApplication:
    """Qt's text layout needs an application object. Nothing is shown, so the offscreen
    platform is used (an unreachable DISPLAY must not abort a report); a QApplication, not a
    bare QGuiApplication, so widgets can still be made in this process."""
    app = QGuiApplication.instance()
    if app is None:
        from PySide6.QtWidgets import QApplication

        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        app = QApplication([])
    return app


def report_document(html: str) -> QTextDocument:
    """A QTextDocument of the report with every inline image registered as a resource under
    a short name (QTextDocument does not decode data: URIs itself)."""
    document = QTextDocument()
    names: dict[str, str] = {}

    def register(match: re.Match) -> str:
        uri = match.group(1)
        name = names.get(uri)
        if name is None:
            name = f"report-image-{len(names)}"
            image = QImage.fromData(QByteArray(base64.b64decode(match.group(2))))
            document.addResource(QTextDocument.ResourceType.ImageResource, QUrl(name), image)
            names[uri] = name
        return f'src="{name}"'

    document.setHtml(_DATA_URI.sub(register, html))
    return document


def write_pdf(html: str, path: str | Path, overwrite: bool = False, title: str = "DGS Desktop report") -> Path:
    """Renders `html` (a report from dgs_desktop.report) to an A4 PDF at `path`."""
    path = check_output(path, overwrite, "PDF report")
    ensure_gui_application()
    document = report_document(html)
    with atomic_path(path) as tmp:
        writer = QPdfWriter(str(tmp))
        writer.setCreator(PDF_CREATOR)
        writer.setTitle(title)
        writer.setResolution(150)
        writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Portrait,
                                         QMarginsF(10, 10, 10, 10), QPageLayout.Unit.Millimeter))
        document.print_(writer)
        del writer  # finishes the file before it is renamed into place
    return path


PDF_CHILD_POLL_S = 0.1


def write_pdf_in_child(html: str, path: str | Path, overwrite: bool, title: str,
                       cancelled: Callable[[], bool] | None = None) -> Path:
    """`write_pdf` in a child process (see the module's docstring); ended when `cancelled()`
    (InterruptedError), a failure is a UsageError with the child's last line."""
    from ..errors import UsageError

    path = check_output(path, overwrite, "PDF report")
    with tempfile.TemporaryDirectory(prefix="dgs-report-") as folder:
        source, messages = Path(folder) / "report.html", Path(folder) / "stderr.txt"
        source.write_text(html, encoding="utf-8")
        command = [sys.executable, "-m", __name__, str(source), str(path), "--title", title]
        environment = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}  # nothing is shown
        with open(messages, "wb") as stderr:  # a file, not a pipe: a chatty child can never block on it
            child = subprocess.Popen(command + (["--overwrite"] if overwrite else []), stdout=subprocess.DEVNULL,
                                     stderr=stderr, env=environment)
            try:
                while child.poll() is None:
                    if cancelled is not None and cancelled():
                        raise InterruptedError("report cancelled")
                    time.sleep(PDF_CHILD_POLL_S)
            finally:
                if child.poll() is None:  # cancelled, or an error in this thread: leave no child behind
                    child.kill()
                child.wait()
                if child.returncode != 0:  # a child ended mid-write leaves its temporary file (atomic_path)
                    for leftover in path.parent.glob(f".{path.name}.{child.pid}.*.tmp"):
                        leftover.unlink(missing_ok=True)
        errors = messages.read_text(encoding="utf-8", errors="replace").strip()
    if child.returncode != 0:
        last = errors.splitlines()[-1] if errors else f"exit status {child.returncode}"
        raise UsageError(f"the PDF could not be written: {last}")
    return path


def export_report(source, html_path: str | Path | None, pdf_path: str | Path | None, overwrite: bool = False,
                  progress=None, cancelled=None) -> list[Path]:
    """The window's File → Export report, run on a pool thread: builds the report from
    `source` (dgs_desktop.report.inputs.ReportSource) and writes the HTML and/or the PDF (the
    PDF in a child process). Refuses foreign files before any work. Returns the files written."""
    from ..report import build_html, find_model, write_html

    targets = [p for p in (html_path, pdf_path) if p]
    for target in targets:
        check_output(target, overwrite)
    html = build_html(source, find_model(source.run), progress=progress, cancelled=cancelled)
    written = []
    if html_path:
        written.append(write_html(html, html_path, overwrite=overwrite))
    if pdf_path:
        written.append(write_pdf_in_child(html, pdf_path, overwrite, f"DGS Desktop report — {source.path.name}",
                                          cancelled))
    return written


def main(argv: list[str] | None = None) -> int:
    """The child process: renders an HTML report file to a PDF. Errors go to stderr, last line
    plain words (the parent shows it)."""
    parser = argparse.ArgumentParser(description="Render a DGS Desktop HTML report to PDF (used by the window).")
    parser.add_argument("html", type=Path)
    parser.add_argument("pdf", type=Path)
    parser.add_argument("--title", default="DGS Desktop report")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    try:
        write_pdf(args.html.read_text(encoding="utf-8"), args.pdf, overwrite=args.overwrite, title=args.title)
    except Exception as exc:  # noqa: BLE001 - reported to the parent in one line
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
