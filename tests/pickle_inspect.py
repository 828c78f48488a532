"""Reads what a pickle would call when loaded, without loading it (for the "evil file" tests)."""

from __future__ import annotations

import pickletools
import zipfile
from pathlib import Path


def pickle_stream(path: Path) -> bytes:
    """The pickle bytes of a torch.save zip archive, or of a plain pickle file."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            name = next(n for n in archive.namelist() if n.endswith("data.pkl"))
            return archive.read(name)
    return Path(path).read_bytes()


def called_globals(path: Path) -> set[str]:
    """'module.name' of every global the pickle imports and then calls (REDUCE)."""
    strings: list[str] = []
    pending: list[str] = []
    called: set[str] = set()
    for opcode, arg, _ in pickletools.genops(pickle_stream(path)):
        if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
            strings.append(arg)
        elif opcode.name == "GLOBAL":
            pending.append(arg.replace(" ", "."))
        elif opcode.name == "STACK_GLOBAL":
            pending.append(f"{strings[-2]}.{strings[-1]}")
        elif opcode.name == "REDUCE" and pending:
            called.add(pending[-1])
    return called
