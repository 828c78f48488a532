"""The one `Sample` every source gives, the `SampleSet` of a source, and the options for reading one."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dgs_desktop.scan.decode import ANALYST, DEFAULT_MAX_PIXELS, DecodedImage, DecodeError, decode_bytes, read_file

from .cells import RowRef, read_cell


@dataclass(frozen=True)
class Sample:
    label: int  # 0 real, 1 fake
    subset: str
    category: str
    rel: str  # stable id: path relative to the root, or "<shard relative path>#<row>"
    path: Path | None = None  # an image file ...
    cell: RowRef | None = None  # ... or a parquet cell

    @property
    def name(self) -> str:
        """What the user sees for this image (a file path, or shard#row)."""
        return str(self.path) if self.path is not None else self.rel

    def read_bytes(self) -> bytes:
        """The encoded image, read once; raises DecodeError with a plain reason."""
        if self.path is not None:
            return read_file(self.path)
        if self.cell is None:
            raise DecodeError("this sample has neither a file nor a dataset cell")
        return read_cell(self.cell)

    def decode(self, max_pixels: int = DEFAULT_MAX_PIXELS, decoding: str = ANALYST) -> DecodedImage:
        """The app's decoder on this image (the scan's `decode_image` for files)."""
        if self.path is not None:
            from dgs_desktop.scan.decode import decode_image

            return decode_image(self.path, max_pixels=max_pixels, decoding=decoding)
        return decode_bytes(self.read_bytes(), max_pixels=max_pixels, decoding=decoding)


@dataclass
class SampleSet:
    """The samples of one source, in a fixed order, and what was left out while listing them."""

    root: Path  # the folder (for a hub dataset: its snapshot in the hub cache)
    description: str  # the folder, or hf-dataset:org/name@commit split=...
    samples: list[Sample]
    # (name, reason): rows without label/image, and images the trainer could not decode
    skipped: list[tuple[str, str]] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)  # what the data is, for the checkpoint's record

    def counts(self, by: str = "subset") -> dict[str, dict[str, int]]:
        """Real and fake images per subset (or per category with `by="category"`)."""
        return count_labels(self.samples, by)

    @property
    def labels(self) -> np.ndarray:
        return np.array([s.label for s in self.samples], dtype=np.int64)


@dataclass(frozen=True)
class DataOptions:
    """How to read a source (the command-line options shared by train and evaluate)."""

    classes: tuple[str, ...] = ()
    split: str | None = None
    image_column: str | None = None
    label_column: str | None = None
    subset_column: str | None = None
    category_column: str | None = None


def count_labels(samples: list[Sample], by: str = "subset") -> dict[str, dict[str, int]]:
    """Real and fake images per subset (or per category with `by="category"`)."""
    out: dict[str, dict[str, int]] = {}
    for s in samples:
        entry = out.setdefault(getattr(s, by), {"real": 0, "fake": 0})
        entry["fake" if s.label else "real"] += 1
    return dict(sorted(out.items()))


def parse_classes(text: str | None) -> tuple[str, ...]:
    """`car,cat, chair` -> ('car', 'cat', 'chair')."""
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())
