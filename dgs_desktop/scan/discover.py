"""Expands user-given paths into the list of files to scan.

Every regular file found is returned (whether it is an image is decided later, by its
content, not its suffix), so each one gets a result row. Folders are walked recursively in
sorted order. Each path gets one row (README "Reliability"):

- a symbolic link whose target lies outside the given roots is not followed (unless
  `follow_links`): it is returned with a `refusal` that becomes its error row, and a linked
  folder outside the roots is not walked;
- another name of a file already listed (hard link, symlink inside the roots) is returned
  with `same_as` = the first name, which becomes a note "same file as …";
- a path given twice, or a folder reached twice (symlink loops), is listed once; broken
  symlinks are returned so they get an error row; `exclude` (the results CSV) is skipped;
- this program's own files (a case, a report, a results CSV saved into a scanned folder) are
  skipped: `is_own_file`, recognised by name *and* content, never by the name alone.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..ownfiles import CASE_SUFFIX, is_case_file, is_our_report

log = logging.getLogger(__name__)

# The image file suffixes, each with the Pillow formats it may hold (the decoder notes a file
# whose content does not match its suffix). Only the file dialogs and the trainer's folder
# index go by suffix; the scan decides by content and gives every file a row.
SUFFIX_FORMATS = {
    ".jpg": {"JPEG", "MPO"}, ".jpeg": {"JPEG", "MPO"}, ".jpe": {"JPEG", "MPO"}, ".jfif": {"JPEG", "MPO"},
    ".png": {"PNG"}, ".webp": {"WEBP"}, ".bmp": {"BMP", "DIB"}, ".gif": {"GIF"}, ".tif": {"TIFF"},
    ".tiff": {"TIFF"}, ".heic": {"HEIF"}, ".heif": {"HEIF"}, ".hif": {"HEIF"}, ".avif": {"AVIF"},
    ".jxl": {"JPEG XL"}, ".ppm": {"PPM"}, ".pgm": {"PPM"}, ".pbm": {"PPM"}, ".tga": {"TGA"},
    ".jp2": {"JPEG2000"}, ".ico": {"ICO"},
}
IMAGE_SUFFIXES = frozenset(SUFFIX_FORMATS)


def _is_case_side_file(path: Path) -> bool:
    """SQLite's journal, WAL or shared-memory file beside one of our cases."""
    return is_case_file(path.with_name(path.name.rsplit("-", 1)[0]))


def _is_results_csv(path: Path) -> bool:
    """A CSV whose header has every column our scan CSV always writes."""
    import csv

    from .csvio import REQUIRED_COLUMNS

    try:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
            header = next(csv.reader([handle.readline(1 << 16)]), [])
    except OSError:
        return False
    return set(REQUIRED_COLUMNS) <= set(header)


# The files dgs-desktop writes, by suffix, each with the content check that tells ours from a
# file that only has the same suffix (that one is scanned like any other). The one list.
OWN_FILES: dict[str, Callable[[Path], bool]] = {
    CASE_SUFFIX: is_case_file,
    **{CASE_SUFFIX + side: _is_case_side_file for side in ("-journal", "-wal", "-shm")},
    ".html": is_our_report, ".htm": is_our_report, ".pdf": is_our_report,
    ".csv": _is_results_csv,
}


def is_own_file(path: Path) -> bool:
    """True for a case, report or results CSV that this program wrote (not evidence). Only a
    regular file is read: a pipe with such a name must not block the walk."""
    check = OWN_FILES.get(path.suffix.lower())
    return check is not None and path.is_file() and check(path)


if TYPE_CHECKING:
    _ConcretePath = Path
else:  # before Python 3.12 only the concrete class (PosixPath, WindowsPath) can be subclassed
    _ConcretePath = type(Path())

# What tells two names of one file apart: (device, inode), or the absolute path when stat fails.
_Identity = tuple[int, int] | tuple[str, str]


class FoundPath(_ConcretePath):
    """A path to scan, with what discovery found out about it (a plain Path otherwise)."""

    refusal = ""  # not read, and why (a link that leads out of the scanned folders)
    same_as = ""  # the first name of the same file (hard link or symlink)


def _found(path: Path, refusal: str = "", same_as: str = "") -> FoundPath:
    found = FoundPath(path)
    if refusal:
        found.refusal = refusal
    if same_as:
        found.same_as = same_as
    return found


def _identity(path: Path) -> _Identity:
    try:
        stat = path.stat()
    except OSError:
        return ("unresolvable", os.path.abspath(path))
    return (stat.st_dev, stat.st_ino)


def _list_folder(directory: Path) -> list[os.DirEntry[str]] | None:
    try:
        with os.scandir(directory) as iterator:
            return sorted(iterator, key=lambda entry: entry.name)
    except OSError:
        return None


class _Roots:
    """The real locations of the given paths; a link may only lead inside them."""

    def __init__(self, paths: list[Path]):
        self.real = [os.path.realpath(p) for p in paths]

    def contain(self, real: str) -> bool:
        for root in self.real:
            try:
                if os.path.commonpath([real, root]) == root:
                    return True
            except ValueError:  # different drives
                continue
        return False

    def refusal(self, path: Path) -> str:
        """Why the symlink `path` is not followed ("" when it leads inside the roots)."""
        target = os.path.realpath(path)
        if self.contain(target):
            return ""
        return (f"symbolic link to {target}, outside the scanned folders: not followed "
                f"(--follow-links follows it)")


def _walk(directory: Path, seen_dirs: set[_Identity], roots: _Roots | None) -> Iterator[FoundPath]:
    """Depth-first, sorted, with an explicit stack: trees deeper than Python's recursion
    limit (1000) are walked like any other, and only one folder listing per level is held."""
    entries = _list_folder(directory)
    if entries is None:
        yield _found(directory)  # unreadable folder: reported as an error row
        return
    stack = [iter(entries)]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        path = Path(entry.path)
        if roots is not None and entry.is_symlink():
            refusal = roots.refusal(path)
            if refusal:
                yield _found(path, refusal)  # neither read nor walked
                continue
        try:
            is_dir = entry.is_dir(follow_symlinks=True)
        except OSError:
            is_dir = False
        if not is_dir:
            yield _found(path)
            continue
        identity = _identity(path)
        if identity in seen_dirs:
            continue  # symlink loop or a folder already walked
        seen_dirs.add(identity)
        children = _list_folder(path)
        if children is None:
            yield _found(path)  # unreadable folder: reported as an error row
        else:
            stack.append(iter(children))


def expand_paths(paths: Iterable[str | os.PathLike[str]], follow_links: bool = False,
                 exclude: Iterable[tuple[int, int]] = ()) -> Iterator[FoundPath]:
    """Absolute paths of all files under `paths`, each path once, in a stable order.

    `exclude`: (device, inode) of files never to list (the results CSV being written).
    """
    given = [Path(os.path.abspath(os.path.expanduser(os.fspath(raw)))) for raw in paths]
    roots = None if follow_links else _Roots(given)
    excluded = set(exclude)
    first_name: dict[_Identity, str] = {}  # file identity -> the first path listed for it
    listed: set[str] = set()
    seen_dirs: set[_Identity] = set()
    for path in given:
        candidates: Iterable[FoundPath]
        if path.is_dir():
            identity = _identity(path)
            if identity in seen_dirs:
                continue
            seen_dirs.add(identity)
            candidates = _walk(path, seen_dirs, roots)
        else:
            candidates = (_found(path),)  # missing files too: they get an error row
        for candidate in candidates:
            name = str(candidate)
            if name in listed:
                continue
            if candidate.refusal:
                listed.add(name)
                yield candidate
                continue
            identity = _identity(candidate)
            if identity in excluded:
                continue
            if is_own_file(candidate):
                log.info("skipped %s: a file dgs-desktop wrote, not evidence", candidate)
                continue
            listed.add(name)
            if identity[0] != "unresolvable":
                first = first_name.setdefault(identity, name)
                if first != name:
                    candidate.same_as = first
            yield candidate
