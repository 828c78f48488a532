"""The one verdict rule of DGS Desktop, used by the scan, the CSV, the window and the trainer.

An image is called fake when its probability is strictly greater than the threshold, as the
authors' `validate.py` does (`y_pred > 0.5`). A probability that is not a finite number in
[0, 1] never gets a verdict: a forensic tool must not turn NaN into "real".
"""

from __future__ import annotations

import math

DEFAULT_THRESHOLD = 0.5
FAKE, REAL = "fake", "real"
NON_FINITE_SCORE = "model produced a non-finite score"
RULE_TEXT = "fake when P(fake) > threshold"


def is_valid_probability(p: float | None) -> bool:
    """True for a finite number in [0, 1]."""
    return p is not None and isinstance(p, (int, float)) and math.isfinite(p) and 0.0 <= p <= 1.0


def is_fake(p, threshold: float = DEFAULT_THRESHOLD):
    """The rule itself, p > threshold; elementwise for numpy arrays and tensors (metrics)."""
    return p > threshold


def verdict(p: float | None, threshold: float = DEFAULT_THRESHOLD) -> str:
    """`fake` when p > threshold, `real` otherwise; `""` when there is no valid probability."""
    if not is_valid_probability(p):
        return ""
    return FAKE if is_fake(p, threshold) else REAL


def check_threshold(threshold: float) -> float:
    """The threshold as a float, or ValueError when it is not a probability."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
            or not math.isfinite(threshold) or not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold {threshold!r} is not a probability between 0 and 1")
    return float(threshold)
