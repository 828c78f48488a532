"""Calibration on the analyst's own real photos: a threshold with a known false-positive rate.

A detector's fixed 0.5 says nothing about how often *your* kind of real photo (night mode,
press photos, recompressed social-media copies) is called fake. Scoring a reference set of
real images with the same checkpoint gives:

- the threshold T: the smallest T with #(p > T) / n <= target false-positive rate;
- the exact (Clopper-Pearson, two-sided 95 %) upper bound of the false-positive rate at T;
- per scanned image, `reference_fpr`: the fraction of reference images scoring at least as
  high (an empirical p-value: "x % of your real photos score this high");
- with known fakes, the detection rate at T and its interval.

The calibration file is JSON: the checkpoint's sha256 (a calibration of another model is
refused), each reference image's sha256, n and the sorted scores. Torch-free.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from . import __version__
from .atomic import atomic_path
from .errors import InputError
from .verdict import is_fake, is_valid_probability

CALIBRATION_FORMAT = "dgs-desktop-calibration"
CALIBRATION_VERSION = 1
DEFAULT_TARGET_FPR = 0.01
CONFIDENCE = 0.95
FEW_REFERENCES = 100  # below this the bound on the false-positive rate is wide: say so
MAX_CALIBRATION_BYTES = 256 << 20


class CalibrationError(InputError):
    """A calibration file cannot be used; one line for the user."""


# ---------------------------------------------------------------------------- arithmetic
def _log_binomial_pmf(k: int, n: int, p: float) -> float:
    if p <= 0.0:
        return 0.0 if k == 0 else -math.inf
    if p >= 1.0:
        return 0.0 if k == n else -math.inf
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + k * math.log(p) + (n - k) * math.log1p(-p))


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in log space (stable for n in the millions)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    logs = [_log_binomial_pmf(i, n, p) for i in range(k + 1)]
    top = max(logs)
    if top == -math.inf:
        return 0.0
    return min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs))


def _bisect(f, lo: float = 0.0, hi: float = 1.0, iterations: int = 200) -> float:
    """The root of a decreasing f on [lo, hi] (f(lo) >= 0 >= f(hi)), to double precision."""
    for _ in range(iterations):
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        if f(mid) > 0:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def clopper_pearson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact two-sided interval for a binomial rate k/n (Clopper & Pearson, 1934):
    lower solves P(X >= k; p) = α/2, upper solves P(X <= k; p) = α/2, α = 1 - confidence."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    alpha = 1.0 - confidence
    upper = 1.0 if k == n else _bisect(lambda p: binomial_cdf(k, n, p) - alpha / 2)
    lower = 0.0 if k == 0 else _bisect(lambda p: alpha / 2 - (1.0 - binomial_cdf(k - 1, n, p)))
    return lower, upper


def allowed_false_positives(n: int, target_fpr: float) -> int:
    """The largest count m with m / n <= target, in exact arithmetic (0.29 * 100 is 29, not 28)."""
    return math.floor(Fraction(repr(float(target_fpr))) * n)


def calibrated_threshold(scores: Sequence[float], target_fpr: float) -> float:
    """The smallest T with #(p > T) / n <= target over the reference scores.

    With the scores sorted, s[n-1-m] (m the allowed count) is that T: above it lie at most m
    scores, and any smaller T has at least m + 1 above it. m >= n: every T qualifies, T = 0."""
    ordered = sorted(scores)
    n = len(ordered)
    if n == 0:
        raise ValueError("no reference scores")
    allowed = allowed_false_positives(n, target_fpr)
    return 0.0 if allowed >= n else float(ordered[n - 1 - allowed])


def count_above(sorted_scores: Sequence[float], threshold: float) -> int:
    """#(p > threshold): the images the one rule calls fake."""
    return len(sorted_scores) - bisect.bisect_right(sorted_scores, threshold)


def reference_rate(sorted_scores: Sequence[float], p: float) -> float:
    """The fraction of reference scores >= p (an empirical p-value)."""
    return (len(sorted_scores) - bisect.bisect_left(sorted_scores, p)) / len(sorted_scores)


# --------------------------------------------------------------------------------- file
@dataclass(frozen=True)
class Rate:
    """k of n, with its exact 95 % interval."""

    k: int
    n: int
    low: float
    high: float

    @classmethod
    def of(cls, k: int, n: int) -> Rate:
        low, high = clopper_pearson(k, n)
        return cls(k, n, low, high)

    @property
    def value(self) -> float:
        return self.k / self.n

    def as_dict(self) -> dict:
        return {"k": self.k, "n": self.n, "rate": self.value, "ci95_low": self.low, "ci95_high": self.high}


@dataclass(frozen=True)
class Calibration:
    checkpoint_sha256: str
    target_fpr: float
    threshold: float
    scores: tuple[float, ...]  # sorted reference scores
    references: tuple[tuple[str, str], ...] = ()  # (path, sha256) per reference image
    precision: str = "fp32"
    false_positives: Rate | None = None
    detection: Rate | None = None  # with known fakes
    created: str = ""
    sha256: str = ""  # of the file it was read from / written to
    path: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def n(self) -> int:
        return len(self.scores)

    def reference_fpr(self, p: float | None) -> float | None:
        return reference_rate(self.scores, p) if is_valid_probability(p) else None

    def check_checkpoint(self, checkpoint_sha256: str) -> None:
        """Refuses a calibration made with another checkpoint: its scores say nothing about this one."""
        if checkpoint_sha256 != self.checkpoint_sha256:
            raise CalibrationError(
                f"calibration {self.path} was made with checkpoint {self.checkpoint_sha256[:12]}…, not with this "
                f"one ({checkpoint_sha256[:12]}…); calibrate this checkpoint on your real images first")

    def warning(self) -> str:
        """A one-line warning when the reference set is small, else ""."""
        if self.n >= FEW_REFERENCES or self.false_positives is None:
            return ""
        return (f"only {self.n} reference images (< {FEW_REFERENCES}): the false-positive rate at "
                f"T={self.threshold:.4g} is known only to be at most {self.false_positives.high:.1%} (95 %)")

    def summary(self) -> str:
        fp = self.false_positives
        text = (f"threshold {self.threshold:.4g} from {self.n} real reference images (target false-positive rate "
                f"{self.target_fpr:g}")
        if fp is not None:
            text += f"; observed {fp.k}/{fp.n}, at most {fp.high:.2%} with 95 % confidence"
        text += ")"
        if self.detection is not None:
            d = self.detection
            text += f"; detects {d.k}/{d.n} known fakes ({d.value:.1%}, 95 % CI {d.low:.1%}-{d.high:.1%})"
        return text

    def to_json(self) -> dict:
        data = {"format": CALIBRATION_FORMAT, "version": CALIBRATION_VERSION, "dgs_desktop_version": __version__,
                "created": self.created, "checkpoint_sha256": self.checkpoint_sha256, "precision": self.precision,
                "target_fpr": self.target_fpr, "threshold": self.threshold, "n": self.n,
                "false_positive_rate": None if self.false_positives is None else self.false_positives.as_dict(),
                "detection_rate": None if self.detection is None else self.detection.as_dict(),
                "reference_scores": list(self.scores),
                "references": [{"path": p, "sha256": s} for p, s in self.references]}
        data.update(self.extra)
        return data


def build_calibration(real: Sequence[tuple[str, str, float]], checkpoint_sha256: str,
                      target_fpr: float = DEFAULT_TARGET_FPR, fake_scores: Sequence[float] = (),
                      precision: str = "fp32", created: str = "", extra: dict | None = None) -> Calibration:
    """A calibration from the real reference images' (path, sha256, P(fake)).

    The same content listed twice (same sha256) counts once: a copy is no new evidence."""
    if not 0.0 <= target_fpr < 1.0 or not math.isfinite(target_fpr):
        raise ValueError(f"target false-positive rate {target_fpr!r} is not in [0, 1)")
    seen: dict[str, tuple[str, float]] = {}
    for path, sha256, p in real:
        if not is_valid_probability(p):
            raise ValueError(f"{path}: not a probability ({p!r})")
        seen.setdefault(sha256 or path, (path, float(p)))
    if not seen:
        raise CalibrationError("no real reference image could be scored; nothing to calibrate on")
    references = tuple(sorted((path, sha) for sha, (path, _) in seen.items()))
    scores = tuple(sorted(p for _, p in seen.values()))
    threshold = calibrated_threshold(scores, target_fpr)
    false_positives = Rate.of(count_above(scores, threshold), len(scores))
    detection = None
    if fake_scores:
        detection = Rate.of(sum(bool(is_fake(p, threshold)) for p in fake_scores), len(fake_scores))
    return Calibration(checkpoint_sha256=checkpoint_sha256, target_fpr=float(target_fpr), threshold=threshold,
                       scores=scores, references=references, precision=precision, false_positives=false_positives,
                       detection=detection, created=created, extra=dict(extra or {}))


def score_references(scanner, paths, report=None, cancelled=None) -> tuple[list, list]:
    """(path, sha256, P(fake)) of every image the scan engine scores, and the records it could
    not score. `report(done, total)` after each file; `cancelled()` stops with InterruptedError.
    The CLI and the window calibrate through this, with the scan's reading rules."""
    paths = list(paths)
    scored, failed = [], []
    cancel = threading.Event()
    for done, record in enumerate(scanner.scan(paths, cancel=cancel), start=1):
        if record.ok:
            scored.append((record.path, record.sha256, record.fake_probability))
        else:
            failed.append(record)
        if report is not None:
            report(done, len(paths))
        if cancelled is not None and cancelled():
            cancel.set()
            raise InterruptedError("cancelled")
    return scored, failed


def write_calibration(path: str | os.PathLike, calibration: Calibration) -> Calibration:
    """Writes the file in one step (an existing file is replaced only if it is a calibration)."""
    path = Path(path)
    if path.exists():
        try:
            load_calibration(path)
        except CalibrationError:
            raise CalibrationError(f"{path} exists and is not a DGS Desktop calibration; it is not overwritten") \
                from None
    data = (json.dumps(calibration.to_json(), indent=1) + "\n").encode("utf-8")
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    return _with_source(calibration, path, data)


def _with_source(calibration: Calibration, path: Path, data: bytes) -> Calibration:
    from dataclasses import replace

    return replace(calibration, sha256=hashlib.sha256(data).hexdigest(), path=str(path))


def _rate(data) -> Rate | None:
    if not isinstance(data, dict):
        return None
    k, n = data.get("k"), data.get("n")
    if not isinstance(k, int) or not isinstance(n, int) or not 0 <= k <= n or n == 0:
        raise ValueError("a rate is not k of n")
    return Rate.of(k, n)


def load_calibration(path: str | os.PathLike) -> Calibration:
    """Reads and checks a calibration file; CalibrationError (one line) when it is not one."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_CALIBRATION_BYTES + 1)
    except OSError as exc:
        raise CalibrationError(f"cannot read calibration {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_CALIBRATION_BYTES:
        raise CalibrationError(f"{path} is too large to be a calibration file")
    try:
        raw = json.loads(data)
        if not isinstance(raw, dict) or raw.get("format") != CALIBRATION_FORMAT:
            raise ValueError("not a calibration")
        if int(raw.get("version", 0)) > CALIBRATION_VERSION:
            raise CalibrationError(f"{path} was written by a newer DGS Desktop; update to use it")
        scores = tuple(float(p) for p in raw["reference_scores"])
        if not scores or any(not is_valid_probability(p) for p in scores) or list(scores) != sorted(scores):
            raise ValueError("reference scores are not sorted probabilities")
        if int(raw["n"]) != len(scores):
            raise ValueError("n does not match the scores")
        target = float(raw["target_fpr"])
        threshold = float(raw["threshold"])
        if threshold != calibrated_threshold(scores, target):
            raise ValueError("the threshold does not follow from the scores")
        references = tuple((str(r["path"]), str(r["sha256"])) for r in raw.get("references", []))
        checkpoint = str(raw["checkpoint_sha256"])
        detection = _rate(raw.get("detection_rate"))
    except CalibrationError:
        raise
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        raise CalibrationError(f"{path} is not a valid DGS Desktop calibration file ({exc})") from None
    calibration = Calibration(checkpoint_sha256=checkpoint, target_fpr=target, threshold=threshold, scores=scores,
                              references=references, precision=str(raw.get("precision", "")),
                              false_positives=Rate.of(count_above(scores, threshold), len(scores)),
                              detection=detection, created=str(raw.get("created", "")))
    return _with_source(calibration, path, data)
