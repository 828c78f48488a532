"""Generated image trees for the trainer tests (no downloads; no tests in this module)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def smooth_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """A 'real' image: smooth colour gradients and blobs (low spatial frequency)."""
    y, x = np.mgrid[0:size, 0:size] / size
    channels = []
    for _ in range(3):
        a, b, c, d = rng.uniform(0, 2 * np.pi, 4)
        channels.append(0.5 + 0.25 * np.sin(2 * np.pi * (rng.uniform(0.3, 1.5) * x) + a)
                        + 0.2 * np.cos(2 * np.pi * (rng.uniform(0.3, 1.5) * y) + b) * np.sin(c + d * x))
    return np.clip(np.stack(channels, -1) * 255, 0, 255).astype(np.uint8)


def fake_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """A 'fake' image: the same kind of content plus a high-frequency checkerboard and noise."""
    base = smooth_image(rng, size).astype(np.float32)
    y, x = np.mgrid[0:size, 0:size]
    checker = ((x + y) % 2 * 2 - 1)[..., None] * rng.uniform(60, 80)
    noise = rng.normal(0, 20, base.shape)
    return np.clip(base + checker + noise, 0, 255).astype(np.uint8)


def make_tree(root: Path, subsets=("cats", "gan/sd"), per_class: int = 8, size: int = 256, seed: int = 0,
              fmt: str = "png") -> Path:
    rng = np.random.default_rng(seed)
    for subset in subsets:
        for cls, maker in (("0_real", smooth_image), ("1_fake", fake_image)):
            folder = root / subset / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                Image.fromarray(maker(rng, size)).save(folder / f"img_{i:03d}.{fmt}")
    return root
