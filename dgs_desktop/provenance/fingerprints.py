"""Generator fingerprints that need no model: what generators and editors write into files.

- PNG text chunks: Stable Diffusion WebUI (A1111/Forge) `parameters`, ComfyUI `prompt` and
  `workflow` (JSON graphs), NovelAI (`Software: NovelAI`, `Comment` JSON), InvokeAI
  (`invokeai_metadata`, `invokeai_graph`, older `sd-metadata` / `Dream`), Fooocus;
- the same WebUI parameters in a JPEG/WebP EXIF UserComment;
- EXIF `Software` / XMP `CreatorTool` naming a known generator or editor;
- IPTC `DigitalSourceType` (XMP `Iptc4xmpExt:DigitalSourceType`), e.g. trainedAlgorithmicMedia.

Absence proves nothing (metadata is easily stripped), presence is easily forged: these are
leads for the analyst, shown beside the detector's probability and never mixed into it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from .metadata import Metadata

GENERATOR, EDITOR, DECLARED_AI, CAMERA = "generator", "editor", "declared-ai", "camera"

IPTC_SOURCE_PREFIX = "http://cv.iptc.org/newscodes/digitalsourcetype/"
# IPTC Digital Source Type codes that declare the content (partly) made by generative AI.
AI_SOURCE_TYPES = frozenset({"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia"})
CAPTURE_SOURCE_TYPES = frozenset({"digitalCapture", "computationalCapture"})  # a camera took it
SYNTHETIC_SOURCE_TYPES = frozenset({"algorithmicMedia", "compositeSynthetic"})


@dataclass(frozen=True)
class Signal:
    kind: str  # generator, editor, declared-ai, camera
    name: str  # e.g. "Stable Diffusion WebUI"
    evidence: str  # where it was found, e.g. "PNG text chunk 'parameters'"

    def line(self) -> str:
        return f"{self.name} ({self.evidence})"


# Lower-case substrings of Software / CreatorTool values, most specific first.
KNOWN_GENERATORS = (
    ("stable diffusion", "Stable Diffusion"), ("automatic1111", "Stable Diffusion WebUI"),
    ("comfyui", "ComfyUI"), ("novelai", "NovelAI"), ("invokeai", "InvokeAI"), ("fooocus", "Fooocus"),
    ("midjourney", "Midjourney"), ("dall-e", "DALL·E"), ("dall·e", "DALL·E"), ("openai", "OpenAI"),
    ("adobe firefly", "Adobe Firefly"), ("firefly", "Adobe Firefly"), ("imagen", "Google Imagen"),
    ("gemini", "Google Gemini"), ("bing image creator", "Bing Image Creator"), ("leonardo", "Leonardo.Ai"),
    ("ideogram", "Ideogram"), ("flux", "FLUX"), ("diffusers", "Diffusers"), ("dreamstudio", "DreamStudio"),
    ("nightcafe", "NightCafe"), ("runway", "Runway"), ("craiyon", "Craiyon"), ("playground", "Playground AI"),
)
KNOWN_EDITORS = (
    ("photoshop", "Adobe Photoshop"), ("lightroom", "Adobe Lightroom"), ("gimp", "GIMP"),
    ("affinity", "Affinity Photo"), ("pixelmator", "Pixelmator"), ("snapseed", "Snapseed"),
    ("paint.net", "Paint.NET"), ("canva", "Canva"), ("photopea", "Photopea"), ("darktable", "darktable"),
    ("rawtherapee", "RawTherapee"), ("capture one", "Capture One"), ("krita", "Krita"),
    ("imagemagick", "ImageMagick"), ("facetune", "Facetune"), ("picsart", "Picsart"), ("luminar", "Luminar"),
)

_WEBUI_PARAMETERS = re.compile(r"\bSteps: *\d+.*\bSampler: ", re.S)


def _json_object(text: str) -> dict | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _png_signals(text: dict[str, str]) -> list[Signal]:
    found: list[Signal] = []
    keys = {key.lower(): key for key in text}
    parameters = text.get(keys.get("parameters", ""), "")
    if parameters:
        kind = "Stable Diffusion WebUI" if _WEBUI_PARAMETERS.search(parameters) else "Stable Diffusion (parameters)"
        found.append(Signal(GENERATOR, kind, "PNG text chunk 'parameters'"))
    for key in ("prompt", "workflow"):
        if key in keys and _json_object(text[keys[key]]) is not None:
            found.append(Signal(GENERATOR, "ComfyUI", f"PNG text chunk '{keys[key]}' (node graph JSON)"))
            break
    software = text.get(keys.get("software", ""), "")
    source = text.get(keys.get("source", ""), "")
    if "novelai" in software.lower() or "novelai" in source.lower():
        found.append(Signal(GENERATOR, "NovelAI", "PNG text chunk 'Software'/'Source'"))
    elif "comment" in keys and {"steps", "sampler"} <= set(_json_object(text[keys["comment"]]) or {}):
        found.append(Signal(GENERATOR, "NovelAI (or compatible)", "PNG text chunk 'Comment' (generation JSON)"))
    for key in ("invokeai_metadata", "invokeai_graph", "sd-metadata", "dream"):
        if key in keys:
            found.append(Signal(GENERATOR, "InvokeAI", f"PNG text chunk '{keys[key]}'"))
            break
    if "fooocus_scheme" in keys or "fooocus" in parameters.lower()[:20000]:
        found.append(Signal(GENERATOR, "Fooocus", "PNG text chunk"))
    return found


def classify_software(value: str) -> Signal | None:
    """A known generator or editor named in a Software/CreatorTool value."""
    lowered = value.lower()
    for kind, known in ((GENERATOR, KNOWN_GENERATORS), (EDITOR, KNOWN_EDITORS)):
        for needle, name in known:
            if re.search(rf"(?<![a-z]){re.escape(needle)}(?![a-z])", lowered):  # whole words: not "imagenet"
                return Signal(kind, name, f"software tag '{value[:80]}'")
    return None


def source_type_code(value: str) -> str:
    """`trainedAlgorithmicMedia` from the IPTC URI (or a bare code)."""
    value = value.strip()
    return value[len(IPTC_SOURCE_PREFIX):] if value.startswith(IPTC_SOURCE_PREFIX) else value.rsplit("/", 1)[-1]


def generator_signals(meta: Metadata) -> list[Signal]:
    """Every generator/editor/declared-AI signal in the file's metadata, without duplicates."""
    signals = _png_signals(meta.png_text)
    if meta.exif_user_comment and _WEBUI_PARAMETERS.search(meta.exif_user_comment):
        signals.append(Signal(GENERATOR, "Stable Diffusion WebUI", "EXIF UserComment (generation parameters)"))
    for group, name in (("EXIF", "Software"), ("XMP", "xmp:CreatorTool"), ("EXIF", "Artist"),
                        ("PNG", "Software"), ("IPTC", "OriginatingProgram")):
        value = meta.get(group, name)
        signal = classify_software(value) if value else None
        if signal is not None:
            signals.append(Signal(signal.kind, signal.name, f"{group} {name.split(':')[-1]} '{value[:80]}'"))
    for key in ("Iptc4xmpExt:DigitalSourceType", "plus:DigitalSourceType"):
        if key in meta.xmp:
            code = source_type_code(meta.xmp[key])
            if code in AI_SOURCE_TYPES:
                signals.append(Signal(DECLARED_AI, f"IPTC DigitalSourceType {code}", "XMP"))
            elif code in SYNTHETIC_SOURCE_TYPES:
                signals.append(Signal(DECLARED_AI, f"IPTC DigitalSourceType {code} (synthetic)", "XMP"))
            elif code:
                signals.append(Signal(CAMERA if code == "digitalCapture" else EDITOR,
                                      f"IPTC DigitalSourceType {code}", "XMP"))
    unique: list[Signal] = []
    seen: set[tuple[str, str]] = set()
    for signal in signals:
        if (signal.kind, signal.name) not in seen:
            seen.add((signal.kind, signal.name))
            unique.append(signal)
    return unique
