"""Case files (the window's SQLite case) as report input."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError


def read_case(path: Path):
    try:
        from .. import case  # noqa: F401 - created by the window's case work
    except ImportError:
        raise InputError(f"{path} is a case file; case files need dgs_desktop.case, which this version "
                         "does not have yet: export the case to CSV and give that") from None
    raise InputError(f"{path}: reading case files is not implemented yet; export the case to CSV")
