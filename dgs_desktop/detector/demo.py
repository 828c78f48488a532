"""A `test-tiny` checkpoint for tests, benchmarks and demos: no download, a few hundred KB.

Its LoRA updates and head are random (seeded), so scores vary from image to image and every
code path that handles scores is exercised; its verdicts say nothing about the images (the
window shows a banner saying so).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .backbone import TEST_TINY


def save_demo_checkpoint(path: str | Path, seed: int | None = 7, scale: float = 0.5,
                         provenance: dict[str, Any] | None = None) -> Path:
    """Writes a test-tiny checkpoint at `path`; `seed=None` keeps peft's zero LoRA update and
    the head's default initialisation (the model as built, before any training)."""
    import torch

    from .checkpoint import save_checkpoint
    from .model import build_detector

    detector = build_detector(TEST_TINY, None)
    if seed is not None:
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, param in detector.named_parameters():
                if "lora_B" in name or name.startswith("head."):
                    param.copy_(torch.randn(param.shape, generator=generator) * scale)
    return save_checkpoint(path, detector, architecture=TEST_TINY, base_weights="random-init",
                           provenance={"purpose": "tests and demos", **(provenance or {})})
