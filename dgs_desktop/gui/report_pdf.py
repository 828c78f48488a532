"""The report as PDF through Qt's own text layout and PDF writer (no browser needed).

QTextDocument renders the report's HTML (its tables, text and images); the images are the
report's data: URIs, decoded here into the document's resources so nothing is fetched.
"""

from __future__ import annotations

import base64
import os
import re
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


def export_report(source, html_path: str | Path | None, pdf_path: str | Path | None, overwrite: bool = False,
                  progress=None, cancelled=None) -> list[Path]:
    """The window's File → Export report, run on a pool thread: builds the report from
    `source` (dgs_desktop.report.inputs.ReportSource) and writes the HTML and/or the PDF.
    Refuses foreign files before any work. Returns the files written."""
    from ..report import build_html, find_model, write_html

    targets = [p for p in (html_path, pdf_path) if p]
    for target in targets:
        check_output(target, overwrite)
    html = build_html(source, find_model(source.run), progress=progress, cancelled=cancelled)
    written = []
    if html_path:
        written.append(write_html(html, html_path, overwrite=overwrite))
    if pdf_path:
        written.append(write_pdf(html, pdf_path, overwrite=overwrite, title=f"DGS Desktop report — {source.path.name}"))
    return written
