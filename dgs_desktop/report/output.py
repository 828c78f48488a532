"""Writing a report without ever overwriting a file this program did not make."""

from __future__ import annotations

from pathlib import Path

from ..atomic import atomic_path
from ..errors import UsageError
from .builder import GENERATOR_MARK

PDF_CREATOR = "DGS Desktop report"  # set as the PDF's Creator; how we recognise our own PDFs
_HEAD_BYTES = 4096


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


def check_output(path: str | Path, overwrite: bool, what: str = "report") -> Path:
    """`path` if a report may be written there: it does not exist, is a report we wrote, or
    `overwrite` is given; a UsageError otherwise (nothing is touched)."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path} is a folder; give a file name for the {what}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"cannot write {path}: folder {parent} does not exist")
    if (path.exists() or path.is_symlink()) and not overwrite and not is_our_report(path):
        raise UsageError(f"{path} exists and is not a report written by dgs-desktop; nothing was overwritten "
                         f"(choose another name, or pass --overwrite)")
    return path


def write_html(html: str, path: str | Path, overwrite: bool = False) -> Path:
    path = check_output(path, overwrite, "HTML report")
    with atomic_path(path) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return path
