"""Expands user-given paths into the list of files to scan.

Every regular file found is returned (whether it is an image is decided later, by its
content, not its suffix), so each one gets a result row. Folders are walked recursively in
sorted order; the same file reached twice (duplicates, hard links, symlinks) is returned once;
symlink loops are detected and not followed twice; broken symlinks are returned so they get
an error row.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp", ".gif", ".tif",
                            ".tiff", ".heic", ".heif", ".hif", ".avif", ".jxl", ".ppm", ".pgm", ".pbm", ".tga", ".jp2", ".ico"})


def _identity(path: Path):
    try:
        stat = path.stat()
    except OSError:
        return ("unresolvable", os.path.abspath(path))
    return (stat.st_dev, stat.st_ino)


def _list_folder(directory: Path) -> list[os.DirEntry] | None:
    try:
        with os.scandir(directory) as iterator:
            return sorted(iterator, key=lambda entry: entry.name)
    except OSError:
        return None


def _walk(directory: Path, seen_dirs: set) -> Iterator[Path]:
    """Depth-first, sorted, with an explicit stack: trees deeper than Python's recursion
    limit (1000) are walked like any other, and only one folder listing per level is held."""
    entries = _list_folder(directory)
    if entries is None:
        yield directory  # unreadable folder: reported as an error row
        return
    stack = [iter(entries)]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        path = Path(entry.path)
        try:
            is_dir = entry.is_dir(follow_symlinks=True)
        except OSError:
            is_dir = False
        if not is_dir:
            yield path
            continue
        identity = _identity(path)
        if identity in seen_dirs:
            continue  # symlink loop or a folder already walked
        seen_dirs.add(identity)
        children = _list_folder(path)
        if children is None:
            yield path  # unreadable folder: reported as an error row
        else:
            stack.append(iter(children))


def expand_paths(paths: Iterable[str | os.PathLike]) -> Iterator[Path]:
    """Absolute paths of all files under `paths`, each file once, in a stable order."""
    seen_files: set = set()
    seen_dirs: set = set()
    for raw in paths:
        path = Path(os.path.abspath(os.path.expanduser(os.fspath(raw))))
        candidates: Iterable[Path]
        if path.is_dir():
            identity = _identity(path)
            if identity in seen_dirs:
                continue
            seen_dirs.add(identity)
            candidates = _walk(path, seen_dirs)
        else:
            candidates = (path,)  # missing files too: they get an error row
        for candidate in candidates:
            identity = _identity(candidate)
            if identity in seen_files:
                continue
            seen_files.add(identity)
            yield candidate
