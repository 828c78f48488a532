"""Replace a file in one step: readers see the old file or the new one, never half of one."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary name beside `path` to write to; when the block succeeds the file
    replaces `path` with one rename, when it fails the temporary file is removed.

    The name is unique per process and thread (DDP ranks, GUI workers), and the file is
    created by the caller, so it gets the usual permissions.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
