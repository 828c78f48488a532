"""All provenance signals of one file, and the one line the CSV and the table show.

The line is built from the strongest evidence down: C2PA first (signed claims), then
declared AI (IPTC DigitalSourceType), generator traces, editors, then camera facts. It is
shown beside the probability; nothing here feeds the detector.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from PIL import Image

from ..verdict import CLAIM_AI, CLAIM_CAMERA
from .c2pa import C2paInfo, read_c2pa
from .fingerprints import CAMERA, DECLARED_AI, EDITOR, GENERATOR, Signal, generator_signals
from .metadata import Metadata, read_metadata

log = logging.getLogger(__name__)

MAX_LINE_CHARS = 400
NO_SIGNALS = "no metadata"


@dataclass
class ProvenanceReport:
    metadata: Metadata = field(default_factory=Metadata)
    signals: list[Signal] = field(default_factory=list)
    c2pa: C2paInfo = field(default_factory=C2paInfo)

    @property
    def summary(self) -> str:
        return summary_line(self)

    def of_kind(self, kind: str) -> list[Signal]:
        return [s for s in self.signals if s.kind == kind]


def analyze(data: bytes, image: Image.Image | None = None) -> ProvenanceReport:
    """Metadata, fingerprints and C2PA of the file whose bytes are `data` (`image`: Pillow's
    opened image of those bytes, when the caller has it). Never raises."""
    metadata = read_metadata(data, image)
    try:
        signals = generator_signals(metadata)
    except Exception as exc:  # noqa: BLE001 - a fingerprint bug must not cost the scan a row
        log.debug("fingerprints failed", exc_info=True)
        metadata.problems.append(f"fingerprints failed: {type(exc).__name__}")
        signals = []
    return ProvenanceReport(metadata=metadata, signals=signals, c2pa=read_c2pa(data, metadata.format))


def _c2pa_part(info: C2paInfo) -> str:
    if info.error:
        return f"C2PA present but unreadable ({info.error})"
    parts = [f"C2PA {info.state_text}"]
    if info.signer or info.issuer:
        parts.append(f"signed by {info.signer or '?'}" + (f" ({info.issuer})" if info.issuer else ""))
    if info.claim_generator:
        parts.append(f"claim generator {info.claim_generator}")
    if info.declares_ai:
        parts.append(f"declares AI generation ({', '.join(info.ai_source_types)})")
    return ", ".join(parts)


def summary_line(report: ProvenanceReport) -> str:
    """One line, most telling first, e.g. 'C2PA valid, signer not on a trust list, signed by
    X, claim generator Y, declares AI generation (trainedAlgorithmicMedia); generator:
    ComfyUI (PNG text chunk 'prompt'); camera Apple iPhone 15'."""
    meta = report.metadata
    parts: list[str] = []
    if report.c2pa.present:
        parts.append(_c2pa_part(report.c2pa))
    for kind, label in ((DECLARED_AI, "declared AI"), (GENERATOR, "generator"), (EDITOR, "edited with")):
        signals = report.of_kind(kind)
        if signals:
            parts.append(f"{label}: " + ", ".join(s.line() for s in signals))
    facts = []
    if meta.camera:
        facts.append(f"camera {meta.camera}")
    elif report.of_kind(CAMERA):
        facts.append("digital capture declared")
    if meta.software and not any(meta.software[:80] in s.evidence for s in report.signals):
        facts.append(f"software {meta.software}")
    if meta.date_taken:
        facts.append(f"taken {meta.date_taken}")
    if meta.gps:
        facts.append("GPS")
    if meta.jpeg_quality is not None:
        facts.append(f"JPEG q~{meta.jpeg_quality}")
    if facts:
        parts.append(", ".join(facts))
    if not parts:
        parts.append(NO_SIGNALS if not meta.problems else meta.problems[0])
    line = "; ".join(parts)
    line = " ".join(line.split())  # one physical line whatever the metadata held
    return line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS - 1] + "…"


def provenance_claim(report: ProvenanceReport) -> str:
    """What the file says it is, when that can contradict the detector: `ai` for a valid C2PA
    manifest, a generator fingerprint or an IPTC DigitalSourceType that declares AI generation;
    `camera` for a valid C2PA manifest that declares a camera capture; else ""."""
    c2pa = report.c2pa
    if (c2pa.is_valid and c2pa.declares_ai) or report.of_kind(GENERATOR) or report.of_kind(DECLARED_AI):
        return CLAIM_AI
    if c2pa.is_valid and c2pa.declares_capture:
        return CLAIM_CAMERA
    return ""


@dataclass(frozen=True)
class ProvenanceFacts:
    """What the scan keeps of a file's provenance: the line, and the facts a verdict weighs."""

    line: str = ""
    jpeg_quality: int | None = None
    claim: str = ""


def provenance_facts(data: bytes, image: Image.Image | None = None) -> ProvenanceFacts:
    """The scan's entry point: the one-line summary, the JPEG quality and the claim; never raises."""
    try:
        report = analyze(data, image)
        return ProvenanceFacts(report.summary, report.metadata.jpeg_quality, provenance_claim(report))
    except Exception as exc:  # noqa: BLE001 - provenance is beside the score, never in its way
        log.debug("provenance failed", exc_info=True)
        return ProvenanceFacts(f"provenance unreadable: {type(exc).__name__}")


def provenance_line(data: bytes, image: Image.Image | None = None) -> str:
    """The one-line summary alone, never raising."""
    return provenance_facts(data, image).line
