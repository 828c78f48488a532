"""Files with the same content (sha256): the first one names the group, each later one says
which file it repeats. Qt-free; the window's table, `dgs-desktop scan` (the CSV's
`same_content_as`), merged torchrun parts and the report of an older case all group by this
one rule, on the sha256 the scan's own read computed (the engine scores each content once).

"First" is the holder with the lowest order: the row's position in the window, the order of
writing in a CSV (a resumed CSV's earlier rows come first). A holder noted again (re-scored)
or forgotten (cleared) leaves its old group, so a copy becomes the first when the original
goes.
"""

from __future__ import annotations

import itertools


class ContentGroups:
    """sha256 -> the keys (paths) that hold that content, each with its order."""

    def __init__(self) -> None:
        self._groups: dict[str, dict[str, float]] = {}  # sha256 -> {key: order}
        self._sha_of: dict[str, str] = {}
        self._next = itertools.count()

    def note(self, key: str, sha256: str, order: float | None = None) -> str:
        """Records that `key` holds `sha256` (an empty sha256: nothing known) in place of what
        it held before; returns the first other key with that content, or "" when `key` is the
        first. Without `order`, keys rank in the order they are noted."""
        self.forget(key)
        if not sha256:
            return ""
        self._groups.setdefault(sha256, {})[key] = next(self._next) if order is None else order
        self._sha_of[key] = sha256
        return self.same_as(key)

    def forget(self, key: str) -> str:
        """`key` no longer holds any content (cleared, or about to be re-scored); returns the
        sha256 it held ("" when none), whose group's first may have changed."""
        sha256 = self._sha_of.pop(key, "")
        if sha256:
            group = self._groups[sha256]
            del group[key]
            if not group:
                del self._groups[sha256]
        return sha256

    def first(self, sha256: str) -> str:
        """The first key holding `sha256`, or "" when none does."""
        group = self._groups.get(sha256)
        return min(group, key=group.__getitem__) if group else ""

    def same_as(self, key: str) -> str:
        """The first other key with `key`'s content, or "" (unique, first, or unknown)."""
        first = self.first(self._sha_of.get(key, ""))
        return "" if first == key else first

    def holders(self, sha256: str) -> list[str]:
        """Every key holding `sha256`, first first."""
        group = self._groups.get(sha256, {})
        return sorted(group, key=group.__getitem__)

    def clear(self) -> None:
        self._groups.clear()
        self._sha_of.clear()
