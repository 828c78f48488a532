"""The one verdict rule of DGS Desktop, used by the scan, the CSV, the window, the report and
the trainer.

Two-way rule: an image is called fake when its probability is strictly greater than the
threshold, as the authors' `validate.py` does (`y_pred > 0.5`). A probability that is not a
finite number in [0, 1] never gets a verdict: a forensic tool must not turn NaN into "real".

Three-way verdict of a scanned file (`assess`): `real` or `fake` by that rule, unless the
image lies where DGS-Net is known to be unreliable; then it is `inconclusive` and each reason
is named (README "When the verdict is inconclusive"). The probability is never changed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, TypeGuard, TypeVar

DEFAULT_THRESHOLD = 0.5
FAKE, REAL, INCONCLUSIVE = "fake", "real", "inconclusive"
VERDICTS = (REAL, FAKE, INCONCLUSIVE)
NON_FINITE_SCORE = "model produced a non-finite score"
RULE_TEXT = "fake when P(fake) > threshold"

FULL_PATCHES = 49  # the mosaic's cells: fewer distinct patches repeat or leave cells black
# Below the lowest JPEG quality the paper evaluated (Table 5: q 95, 85, 75; accuracy already falls
# from 97.6 to 82.4 on GenImage at q 75) nothing is known of DGS-Net's accuracy.
MIN_JPEG_QUALITY = 75
# A >= 2x upscale or a blur of sigma >= 1 px leaves the 25 most detailed patches under 3 % as much
# energy in the upper half of the spectrum as in the lower half; camera images measured 0.1-0.25
# (README "When the verdict is inconclusive"; tests/test_verdicts.py builds both kinds).
MAX_RESAMPLED_RATIO = 0.03
CLAIM_AI, CLAIM_CAMERA = "ai", "camera"

# Reason codes: each reason in the CSV reads "code: detail".
FEW_PATCHES, PADDED, RECOMPRESSED, RESAMPLED, UNSTABLE, PROVENANCE_CONFLICT = (
    "few-patches", "padded", "recompressed", "resampled", "unstable", "provenance-conflict")

_R_co = TypeVar("_R_co", covariant=True)
_R = TypeVar("_R")


class _ComparesToFloat(Protocol[_R_co]):
    """A float (gives a bool), or a numpy array or tensor (gives one of booleans)."""

    def __gt__(self, other: float, /) -> _R_co: ...


class Reliability(Protocol):
    """What the inconclusive reasons read of a scanned record (a `ScanRecord` has it all)."""

    @property
    def fake_probability(self) -> float | None: ...
    @property
    def distinct_patches(self) -> int | None: ...
    @property
    def padded(self) -> bool: ...
    @property
    def jpeg_quality(self) -> int | None: ...
    @property
    def high_frequency_ratio(self) -> float | None: ...
    @property
    def stability_orders(self) -> int | None: ...
    @property
    def stability_low(self) -> float | None: ...
    @property
    def stability_high(self) -> float | None: ...
    @property
    def provenance_claim(self) -> str: ...


def is_valid_probability(p: object) -> TypeGuard[float]:
    """True for a finite number in [0, 1]."""
    return p is not None and isinstance(p, (int, float)) and not isinstance(p, bool) \
        and math.isfinite(p) and 0.0 <= p <= 1.0


def is_fake(p: _ComparesToFloat[_R], threshold: float = DEFAULT_THRESHOLD) -> _R:
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


def crosses_threshold(low: float, high: float, threshold: float) -> bool:
    """Whether scores spread over [low, high] get both verdicts: low <= T < high."""
    return is_valid_probability(low) and is_valid_probability(high) and low <= threshold < high


def inconclusive_reasons(record: Reliability, threshold: float) -> list[str]:
    """Why DGS-Net's score of this image is not evidence either way, as "code: detail" texts.

    `record` is a scanned `ScanRecord` (or anything with its reliability fields): too few
    distinct patches or a padded side (the 49-patch mosaic is not the one the model was trained
    on), JPEG quality below MIN_JPEG_QUALITY, a likely upscale or blur, a score whose spread over other
    patch orders crosses the threshold, or provenance that contradicts the verdict.
    """
    p = record.fake_probability
    if not is_valid_probability(p):
        return []
    reasons = []
    distinct = record.distinct_patches
    if distinct is not None and distinct < FULL_PATCHES:
        reasons.append(f"{FEW_PATCHES}: {distinct} distinct of {FULL_PATCHES} patches")
    if record.padded:
        reasons.append(f"{PADDED}: a side under 32 px was padded")
    if record.jpeg_quality is not None and record.jpeg_quality < MIN_JPEG_QUALITY:
        reasons.append(f"{RECOMPRESSED}: JPEG quality ~{record.jpeg_quality} < {MIN_JPEG_QUALITY}")
    ratio = record.high_frequency_ratio
    if ratio is not None and ratio < MAX_RESAMPLED_RATIO:
        reasons.append(f"{RESAMPLED}: likely upscaled or blurred (high-frequency ratio {ratio:.4f} < "
                       f"{MAX_RESAMPLED_RATIO})")
    low, high = record.stability_low, record.stability_high
    if low is not None and high is not None and crosses_threshold(low, high, threshold):
        reasons.append(f"{UNSTABLE}: over {record.stability_orders} patch orders P(fake) spans "
                       f"{low:.4f}-{high:.4f} across the threshold {threshold:.4g}")
    claim, fake = record.provenance_claim, is_fake(p, threshold)
    if claim == CLAIM_AI and not fake:
        reasons.append(f"{PROVENANCE_CONFLICT}: provenance declares AI generation but P(fake) <= threshold")
    elif claim == CLAIM_CAMERA and fake:
        reasons.append(f"{PROVENANCE_CONFLICT}: a valid C2PA manifest declares a camera capture but "
                       f"P(fake) > threshold")
    return reasons


@dataclass(frozen=True)
class Assessment:
    verdict: str  # real, fake, inconclusive, or "" (no valid probability)
    reasons: tuple[str, ...] = ()


def assess(record: Reliability, threshold: float) -> Assessment:
    """The row's verdict: `inconclusive` when any reason applies, else the two-way rule."""
    if getattr(record, "status", "ok") != "ok":
        return Assessment("")
    base = verdict(record.fake_probability, threshold)
    if not base:
        return Assessment("")
    reasons = tuple(inconclusive_reasons(record, threshold))
    return Assessment(INCONCLUSIVE if reasons else base, reasons)
