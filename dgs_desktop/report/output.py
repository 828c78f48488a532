"""Writing a report without ever overwriting a file this program did not make."""

from __future__ import annotations

from pathlib import Path

from ..atomic import atomic_path
from ..errors import UsageError
from ..ownfiles import PDF_CREATOR as PDF_CREATOR
from ..ownfiles import is_our_report as is_our_report


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
