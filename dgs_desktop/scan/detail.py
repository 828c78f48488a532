"""What the window's detail pane shows of one scanned file, loaded without Qt: the preview,
the mosaic the score came from, the spectral entropy of each of its patches, and the facts.

The file is read once, through the scan's safe reader; the preview, the mosaic and the
metadata all come from those bytes, and the sha256 is checked against the scan's. An older
row's mosaic (the scan's own is kept only for recent rows) is re-cut from the image at the
scan's boxes: the same pixels. Images are PIL / numpy; the window converts them for painting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..detector.patches import PATCH_SIZE, Box, PatchSelection, mosaic_from_boxes
from .decode import decode_bytes, read_file, suffix_note

PREVIEW_MAX_SIDE = 2048
CHANGED_WARNING = "The file changed after it was scanned; the outlines show the scanned version's patches."


@dataclass
class DetailData:
    path: str
    preview: Image.Image | None = None  # at most PREVIEW_MAX_SIDE on its longest side
    scale: float = 1.0  # preview pixels per original pixel
    full_image: Image.Image | None = None  # the decoded image, for the viewer's full-resolution zoom
    size: tuple[int, int] = (0, 0)
    mosaic: np.ndarray | None = None  # (224, 224, 3) uint8
    boxes: tuple[Box, ...] = ()
    low_entropy: tuple[bool, ...] = ()
    entropies: tuple[float, ...] = ()
    facts: list[tuple[str, str]] = field(default_factory=list)
    warning: str = ""


def box_entropies(image: Image.Image, boxes: Sequence[Box]) -> tuple[float, ...]:
    """Spectral entropy of each box's patch, recomputed (rows restored from a case keep theirs)."""
    from ..detector.patches import patch_entropies  # imports torch: only when needed

    if image.width < PATCH_SIZE or image.height < PATCH_SIZE:
        return ()
    grid = patch_entropies(image)
    return tuple(float(grid[y // PATCH_SIZE, x // PATCH_SIZE]) if w > 0 and h > 0 else float("nan")
                 for x, y, w, h in boxes)


def key_facts(data: bytes) -> list[tuple[str, str]]:
    """The few facts a reviewer looks at first (camera, software, date, ICC profile, JPEG
    quality, PNG text such as generator prompts), from the provenance metadata reader on the
    bytes the safe reader already read: the file is not opened again. The Provenance tab
    shows everything."""
    from ..provenance.metadata import read_metadata

    meta = read_metadata(data)
    facts = [(name, value) for name, value in (
        ("Camera", meta.camera), ("Lens", meta.lens), ("Software", meta.software), ("Date taken", meta.date_taken),
        ("ICC profile", meta.icc_profile),
        ("JPEG quality", "" if meta.jpeg_quality is None else f"about {meta.jpeg_quality} (estimated)")) if value]
    for key, value in meta.png_text.items():
        text = " ".join(value.split())
        facts.append((key, text[:160] + ("…" if len(text) > 160 else "")))
    return facts[:12]


def preview_of(image: Image.Image) -> tuple[Image.Image, float]:
    """The image scaled to at most PREVIEW_MAX_SIDE on its longest side, and that scale."""
    longest = max(image.width, image.height)
    if longest <= PREVIEW_MAX_SIDE:
        return image, 1.0
    scale = PREVIEW_MAX_SIDE / longest
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR), scale


def load_detail(path: str, sha256: str, boxes: Sequence[Box] | None, low_entropy: Sequence[bool] | None,
                entropies: Sequence[float] | None, selection: PatchSelection | None) -> DetailData:
    """Read once (safe reader), decode like the scan did, cut the preview and mosaic (the
    scan's `selection` when it is still cached, else re-cut at `boxes`), parse the metadata
    from the same bytes. Runs off the GUI thread."""
    data_bytes = read_file(Path(path))
    decoded = decode_bytes(data_bytes)
    note = suffix_note(Path(path), decoded.format)
    if note:
        decoded.notes.append(note)
    data = DetailData(path=path, boxes=tuple(boxes or ()), low_entropy=tuple(low_entropy or ()),
                      size=(decoded.width, decoded.height))
    if sha256 and decoded.sha256 != sha256:
        data.warning = CHANGED_WARNING
    image = decoded.image
    if selection is not None:
        data.mosaic = selection.mosaic
        data.entropies = tuple(float(e) for e in selection.entropies)
    elif data.boxes:
        data.mosaic = mosaic_from_boxes(image, data.boxes)
    if not data.entropies:
        data.entropies = tuple(entropies) if entropies is not None and len(entropies) else box_entropies(image, data.boxes)
    data.full_image = image
    data.preview, data.scale = preview_of(image)
    data.facts = [("Size", f"{decoded.width} × {decoded.height} px, {len(data_bytes) / 1024:,.0f} KB"),
                  ("Format", f"{decoded.format}, {decoded.mode}")]
    if decoded.notes:
        data.facts.append(("Notes", "; ".join(decoded.notes)))
    data.facts += key_facts(data_bytes)
    return data
