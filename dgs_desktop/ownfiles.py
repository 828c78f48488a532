"""How this program recognises the files it wrote: a case, an HTML report, a PDF report.

By content, never by the name alone. The modules that write these files (`case`, `report`)
and discovery, which skips them in a scanned folder (`scan.discover`), all ask here, so each
rule is written once and the scan does not import the layers above it. Standard library only.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

CASE_FORMAT = "dgs-desktop-case"  # the `format` value in a case's `meta` table
CASE_SUFFIX = ".dgscase"
SQLITE_MAGIC = b"SQLite format 3\x00"

GENERATOR_MARK = "dgs-desktop report"  # in every report's <head>
PDF_CREATOR = "DGS Desktop report"  # set as the PDF's Creator
_HEAD_BYTES = 4096


def is_case_file(path: Path) -> bool:
    """True for an SQLite file whose `meta` table names the case format."""
    try:
        with open(path, "rb") as handle:
            if handle.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                return False
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = connection.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        finally:
            connection.close()
    except (OSError, sqlite3.Error):
        return False
    return row is not None and row[0] == CASE_FORMAT


def is_our_report(path: Path) -> bool:
    """True for an HTML report or PDF that dgs-desktop wrote (its marker near the start)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(_HEAD_BYTES)
            if head.startswith(b"%PDF"):
                handle.seek(0, 2)
                size = handle.tell()
                handle.seek(max(0, size - 65536))
                tail = handle.read()
                return _pdf_marker(head + tail)
    except OSError:
        return False
    return f'<meta name="generator" content="{GENERATOR_MARK}'.encode() in head


def _pdf_marker(data: bytes) -> bool:
    utf16 = PDF_CREATOR.encode("utf-16-be").hex().encode()
    return PDF_CREATOR.encode() in data or utf16 in data.lower() or utf16.upper() in data
