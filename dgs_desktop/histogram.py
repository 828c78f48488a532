"""The bins of the P(fake) histogram, shared by the window's chart and the report's. Qt-free.

The bins adapt to the data (their range spans the scores and the threshold, their number
grows with the count) and one bin edge always lies on the threshold, so no bar mixes images
called real with images called fake. A score equal to the threshold falls on the real side,
as the one verdict rule says (fake when p > threshold).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .verdict import FAKE, verdict

MIN_BINS, MAX_BINS = 8, 40


@dataclass(frozen=True)
class Bins:
    edges: tuple[float, ...]  # len(counts) + 1, increasing; `threshold` is one of them
    counts: tuple[int, ...]
    threshold: float
    split: int  # bins [0, split) are real (p <= threshold), [split, n) fake

    def is_fake_bin(self, index: int) -> bool:
        return index >= self.split


def bin_count(n: int) -> int:
    """About 2·√n bins (more data, finer bins), between MIN_BINS and MAX_BINS."""
    return max(MIN_BINS, min(MAX_BINS, round(2 * math.sqrt(max(n, 1)))))


def threshold_bins(values: list[float], threshold: float, bins: int | None = None) -> Bins:
    """Bins over [min(values, t), max(values, t)] with an edge at the threshold t.

    Left bins are closed on the right (a score equal to t is counted real), right bins hold
    scores strictly above t; each side gets bins in proportion to its width, at least one
    when it holds any score.
    """
    values = [v for v in values if v is not None and math.isfinite(v)]
    total = bins or bin_count(len(values))
    span_of = values or [0.0, 1.0]  # no scores yet: the whole probability axis
    low = min([threshold, *span_of])
    high = max([threshold, *span_of])
    span = max(high - low, 1e-6)
    margin = span * 0.02
    has_left = any(verdict(v, threshold) != FAKE for v in values) or not values
    has_right = any(verdict(v, threshold) == FAKE for v in values) or not values
    left_width = threshold - low + (margin if has_left else 0.0)
    right_width = high - threshold + (margin if has_right else 0.0)
    width = left_width + right_width
    n_left = round(total * left_width / width) if width > 0 else total // 2
    n_left = min(total - (1 if has_right else 0), max(1 if has_left else 0, n_left))
    n_right = total - n_left if has_right else 0
    if not has_right:
        n_left = total
    start = threshold - left_width
    left_step = left_width / n_left if n_left else 0.0
    right_step = right_width / n_right if n_right else 0.0
    edges = [start + i * left_step for i in range(n_left)] + [threshold]
    edges += [threshold + (i + 1) * right_step for i in range(n_right)]
    counts = [0] * (n_left + n_right)
    for v in values:
        if verdict(v, threshold) == FAKE:
            index = n_left + min(n_right - 1, int((v - threshold) / right_step)) if right_step else n_left
        else:
            index = min(n_left - 1, max(0, int((v - start) / left_step))) if left_step else 0
            if v == threshold:
                index = n_left - 1
        counts[index] += 1
    return Bins(edges=tuple(edges), counts=tuple(counts), threshold=threshold, split=n_left)
