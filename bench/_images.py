"""Generated test images for the benchmarks (photo-like: gradients, shapes, texture, noise)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def photo_like(rng: np.random.Generator, width: int = 1024, height: int = 1024) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = []
    for _ in range(3):
        fx, fy, phase = rng.uniform(0.002, 0.02, 2).tolist() + [rng.uniform(0, 6)]
        channels.append(110 + 70 * np.sin(x * fx + phase) * np.cos(y * fy))
    base = np.stack(channels, axis=2) + rng.normal(0, 6, (height, width, 3))
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(25):
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        x1, y1 = x0 + rng.integers(20, 300), y0 + rng.integers(20, 300)
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=color)
    return image.filter(ImageFilter.GaussianBlur(0.8))


def write_jpegs(folder: Path, count: int, seed: int = 0, size: int = 1024) -> list[Path]:
    """`count` distinct ~1 MP JPEGs (a few base images re-encoded with a varying crop)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    bases = [photo_like(rng, size + 32, size + 32) for _ in range(min(count, 8))]
    paths = []
    for index in range(count):
        offset = index % 32
        image = bases[index % len(bases)].crop((offset, offset, offset + size, offset + size))
        path = folder / f"img{index:05d}.jpg"
        image.save(path, quality=90)
        paths.append(path)
    return paths
