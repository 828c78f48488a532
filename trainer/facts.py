"""What a score depends on besides the model and the image: recorded with every evaluation.

The same checkpoint on the same images gives different numbers in bf16 and fp32, with EXIF
orientation applied or not, with Pillow's or scipy's blur, and (in the last bits) with other
library versions. `evaluate` writes these facts beside its table (CSV columns FACT_COLUMNS),
prints them under it, and `publish` puts them in the model card.
"""

from __future__ import annotations

import sys
from importlib import metadata

from dgs_desktop.detector.modelcard import SCORING_SETTINGS, scoring_line

# distribution name on PyPI -> the fact's name (a column of the evaluate table)
VERSIONED = {"dgs-desktop": "dgs_desktop", "torch": "torch", "open_clip_torch": "open_clip", "peft": "peft",
             "transformers": "transformers", "pillow": "pillow", "numpy": "numpy", "scipy": "scipy"}
FACT_COLUMNS = (*SCORING_SETTINGS, *VERSIONED.values(), "python")

__all__ = ["FACT_COLUMNS", "library_versions", "scoring_facts", "scoring_line"]


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a score goes through ('' when not installed)."""
    versions = {}
    for distribution, name in VERSIONED.items():
        try:
            versions[name] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            versions[name] = ""
    versions["python"] = sys.version.split()[0]
    return versions


def scoring_facts(scanner, blur_backend: str = "") -> dict[str, str]:
    """The facts of one evaluation run by `scanner` (a dgs_desktop.scan.engine.Scanner)."""
    from dgs_desktop.detector.device import describe_device

    return {"precision": scanner.precision, "device": describe_device(scanner.device),
            "jpeg_decoder": scanner.jpeg_decoder, "decoding": scanner.decoding, "blur_backend": blur_backend,
            **library_versions()}
