"""How much an image's score depends on the order of its patches in the mosaic.

The detector sees the 49 selected patches shuffled into a 7x7 mosaic. The app seeds that
shuffle from the image content (same file, same score), while the authors' test script
shuffles at random. Scoring the same 49 patches in K other orders shows an analyst how much
the order matters for this image: a verdict that flips between orders is weak evidence.

No Qt: the window runs `order_scores` on a worker thread; a CLI can call it as it is.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from .verdict import FAKE, NON_FINITE_SCORE, crosses_threshold, verdict

DEFAULT_ORDERS = 8


def order_seeds(k: int = DEFAULT_ORDERS) -> list[int]:
    """Fixed seeds 1..K, so the check gives the same numbers every time it is run."""
    return list(range(1, k + 1))


@dataclass(frozen=True)
class Stability:
    """P(fake) of the content-seeded order and of K other orders, with their spread."""

    reference: float  # the score shown in the table (content-seeded order)
    others: tuple[float, ...]  # one per other order, in seed order

    @property
    def all_scores(self) -> tuple[float, ...]:
        return (self.reference, *self.others)

    @property
    def low(self) -> float:
        return min(self.all_scores)

    @property
    def high(self) -> float:
        return max(self.all_scores)

    @property
    def spread(self) -> float:
        return self.high - self.low

    @property
    def stdev(self) -> float:
        return statistics.pstdev(self.all_scores)

    def fake_count(self, threshold: float) -> int:
        """How many of the K other orders give the verdict `fake` (the one rule, p > threshold)."""
        return sum(verdict(p, threshold) == FAKE for p in self.others)

    def summary(self, threshold: float) -> str:
        fakes = self.fake_count(threshold)
        k = len(self.others)
        agree = fakes if verdict(self.reference, threshold) == FAKE else k - fakes
        return (f"P(fake) over {k} other patch orders: {self.low:.4f} – {self.high:.4f} "
                f"(spread {self.spread:.4f}, std {self.stdev:.4f}); {agree} of {k} orders give the same verdict "
                f"as the table ({fakes} fake, {k - fakes} real at threshold {threshold:.3f}).")


def spread_summary(record, threshold: float) -> str:
    """The stored spread of a record (a `--stability` scan or a reopened case), or ""."""
    if record is None or record.stability is None:
        return ""
    low, high = record.stability
    crosses = crosses_threshold(low, high, threshold)
    return (f"P(fake) over {record.stability_orders} other patch orders: {low:.4f} – {high:.4f} "
            f"(spread {high - low:.4f}); the orders {'disagree' if crosses else 'agree'} on the verdict "
            f"at threshold {threshold:.3f}.")


def order_mosaics(selection, k: int = DEFAULT_ORDERS) -> list:
    """The selection's 49 patches in the orders of seeds 1..K (`select_patches(image, seed)`'s
    mosaics, rebuilt from the selection without recomputing anything)."""
    from .detector.patches import other_orders

    return other_orders(selection, k)


def order_scores(image, score_mosaics, reference: float, k: int = DEFAULT_ORDERS, cancelled=None) -> Stability:
    """Scores `image`'s 49 patches in K other orders.

    `score_mosaics(list_of_mosaics) -> list[float]` is the scan's model runner
    (`Scanner.runner.score`), so the numbers are made exactly as the scan makes them.
    """
    from .detector.patches import select_patches

    if cancelled is not None and cancelled():
        raise InterruptedError("cancelled")
    scores = score_mosaics(order_mosaics(select_patches(image), k))
    if not all(math.isfinite(p) for p in scores):  # never a spread made of NaN
        raise ValueError(f"{NON_FINITE_SCORE} for another patch order")
    return Stability(reference=float(reference), others=tuple(float(p) for p in scores))


def file_stability(path: str, expected_sha256: str, reference: float, score_mosaics, k: int = DEFAULT_ORDERS,
                   cancelled=None) -> Stability:
    """`order_scores` for a file, read through the scan's safe reader; refuses a file whose
    bytes changed since the scan (the spread would describe another image)."""
    from pathlib import Path

    from .errors import InputError
    from .scan.decode import decode_image

    decoded = decode_image(Path(path))
    if expected_sha256 and decoded.sha256 != expected_sha256:
        raise InputError("the file changed after it was scanned; scan it again before checking stability")
    return order_scores(decoded.image, score_mosaics, reference, k, cancelled)
