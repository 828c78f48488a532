"""A budget for the memory that decoding takes, shared by the scan's worker threads.

Each worker estimates, from the image header and before decoding, how many bytes the decoded
image and its patch selection will hold (`decoded_bytes_estimate`), and waits until that fits
in the budget next to what the other workers hold. One image larger than the whole budget is
still decoded, alone, so nothing is refused for its size (the pixel limit does that).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

MIB = 1 << 20
DEFAULT_MEMORY_BUDGET_MIB = 1536  # 8 bytes/pixel: one 12000x12000 image (1.1 GB) at a time, ~190 MP in all


def bytes_per_pixel(mode: str) -> int:
    """Bytes per pixel held while one image of `mode` is decoded, converted and patch-selected:
    the image in its own mode (Pillow keeps 3-channel images as 4 bytes), its RGB copy when it
    needs converting, and patch selection's work in bands of whole patch rows (gray band, FFT
    buffers: ~200 MB at most), counted as 4 bytes per pixel: generous for large images."""
    own = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2, "LA": 4, "La": 4, "PA": 4,
           "I": 4, "F": 4}.get(mode, 4)
    converted = 0 if mode == "RGB" else 4
    if mode in ("I", "F") or mode.startswith("I;16"):
        converted += 8  # float64/float32 working copy while rescaling to 8 bits
    return own + converted + 4


def decoded_bytes_estimate(width: int, height: int, mode: str) -> int:
    return int(width) * int(height) * bytes_per_pixel(mode)


class MemoryBudget:
    """Byte counts held by threads; `reserve(n)` waits until n more bytes fit."""

    def __init__(self, limit_bytes: int):
        self.limit = max(1, int(limit_bytes))
        self.held = 0
        self.peak = 0  # the largest sum held at once (for tests and the benchmark)
        self._changed = threading.Condition()

    def acquire(self, nbytes: int) -> int:
        nbytes = max(0, int(nbytes))
        with self._changed:
            # Alone, any image may go: otherwise one larger than the budget would never run.
            while self.held > 0 and self.held + nbytes > self.limit:
                self._changed.wait()
            self.held += nbytes
            self.peak = max(self.peak, self.held)
        return nbytes

    def release(self, nbytes: int) -> None:
        with self._changed:
            self.held -= nbytes
            self._changed.notify_all()

    @contextmanager
    def claim(self) -> Iterator[Claim]:
        """A claim that reserves once its size is known and gives everything back on exit."""
        claim = Claim(self)
        try:
            yield claim
        finally:
            claim.release()


class Claim:
    def __init__(self, budget: MemoryBudget):
        self.budget = budget
        self.held = 0

    def reserve(self, nbytes: int) -> None:
        self.held += self.budget.acquire(nbytes)

    def release(self) -> None:
        if self.held:
            self.budget.release(self.held)
            self.held = 0
