"""Patch selection for a batch of decoded images as torch ops on the model's device.

The device path of the scan: CPU workers only read, hash and decode; the gray conversion,
the spectral entropies of every 32x32 patch of every image (one batched FFT), and the mosaic
assembly (one gather per image) run where the model runs (CUDA when present). The 24 + 25
choice and the content-seeded shuffle are the host path's own functions
(`patches.arrange_cells`), applied to the entropies, so both paths choose the same patches
for the same decoded pixels: the gray values are Pillow's RGB->F conversion bit for bit, and
the entropy of a patch does not depend on its batch. On CUDA the FFT's last bits may differ
from the CPU's, like the model's own device differences.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from ..detector.patches import (
    CELLS,
    GRID,
    PATCH_SIZE,
    PatchSelection,
    arrange_cells,
    build_selection,
    spectral_entropy,
)


def image_tensor(image: Image.Image | np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """An (H, W, 3) uint8 tensor on `device` from an RGB PIL image or array (no copy on CPU)."""
    if isinstance(image, Image.Image):
        image = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    if isinstance(image, np.ndarray):
        with warnings.catch_warnings():  # a read-only array from Pillow: only ever read here
            warnings.simplefilter("ignore", UserWarning)
            image = torch.from_numpy(np.ascontiguousarray(image))
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != torch.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {tuple(image.shape)} {image.dtype}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError("the image is empty (0 pixels)")
    return image.to(device, non_blocking=True)


def pad_to_patch(rgb: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Sides shorter than one patch are padded by repeating the last row/column (as the host)."""
    height, width = rgb.shape[:2]
    if height >= PATCH_SIZE and width >= PATCH_SIZE:
        return rgb, False
    rows = torch.arange(max(height, PATCH_SIZE), device=rgb.device).clamp_(max=height - 1)
    cols = torch.arange(max(width, PATCH_SIZE), device=rgb.device).clamp_(max=width - 1)
    return rgb[rows][:, cols], True


# Pillow's RGB->F weights. Every partial sum is an integer below 2**24, exact in float32 in
# any order, so only the final division rounds: the same bits as Pillow.
_GRAY_WEIGHTS = (299.0, 587.0, 114.0)


def gray(rgb: torch.Tensor) -> torch.Tensor:
    """Pillow's RGB->F conversion bit for bit: (299 R + 587 G + 114 B) / 1000 in float32."""
    # One uint8->float pass first: mixed-dtype strided ops are ~10x slower on a CPU.
    channels = rgb.to(torch.float32)
    out = channels[..., 0].mul(_GRAY_WEIGHTS[0])
    out.add_(channels[..., 1], alpha=_GRAY_WEIGHTS[1]).add_(channels[..., 2], alpha=_GRAY_WEIGHTS[2])
    return out.div_(1000.0)


def _patch_grid(rgb: torch.Tensor) -> tuple[int, int]:
    return rgb.shape[0] // PATCH_SIZE, rgb.shape[1] // PATCH_SIZE


def _patch_view(rgb: torch.Tensor) -> torch.Tensor:
    """(rows, cols, 32, 32, 3) view of the whole patches of an (H, W, 3) image (no copy)."""
    rows, cols = _patch_grid(rgb)
    return rgb[: rows * PATCH_SIZE, : cols * PATCH_SIZE].view(rows, PATCH_SIZE, cols, PATCH_SIZE, 3).transpose(1, 2)


def batch_entropies(images: list[torch.Tensor]) -> list[np.ndarray]:
    """(rows, cols) spectral entropies of each (already padded) image, from one batched FFT,
    brought to the host in one copy (the 24 + 25 choice is a few thousand numbers)."""
    grids = [_patch_grid(rgb) for rgb in images]
    counts = [rows * cols for rows, cols in grids]
    patches = torch.empty((sum(counts), PATCH_SIZE, PATCH_SIZE), dtype=torch.float32, device=images[0].device)
    start = 0
    for rgb, (rows, cols), count in zip(images, grids, counts):
        # Gray over the whole image reads memory in order; strided reads of a patch view of
        # interleaved RGB were 10x slower on a CPU (power-of-two strides alias in the cache).
        plane = gray(rgb)[: rows * PATCH_SIZE, : cols * PATCH_SIZE]
        patches[start:start + count].view(rows, cols, PATCH_SIZE, PATCH_SIZE).copy_(
            plane.view(rows, PATCH_SIZE, cols, PATCH_SIZE).transpose(1, 2))
        start += count
    flat = spectral_entropy(patches, gray_scale=1.0 / 255.0).cpu().numpy()
    bounds = np.cumsum(counts)[:-1]
    return [part.reshape(grid) for part, grid in zip(np.split(flat, bounds), grids)]


def _gather_mosaic(rgb: torch.Tensor, chosen: np.ndarray) -> torch.Tensor:
    """The (224, 224, 3) mosaic: the chosen patches in cell order, then black cells."""
    cols = _patch_grid(rgb)[1]
    index = torch.from_numpy(chosen).to(rgb.device)
    cells = _patch_view(rgb)[index // cols, index % cols]  # (filled, 32, 32, 3)
    if cells.shape[0] < CELLS:
        cells = torch.cat([cells, cells.new_zeros((CELLS - cells.shape[0], PATCH_SIZE, PATCH_SIZE, 3))])
    return cells.view(GRID, GRID, PATCH_SIZE, PATCH_SIZE, 3).transpose(1, 2).reshape(
        GRID * PATCH_SIZE, GRID * PATCH_SIZE, 3)


def select_batch(images: Sequence[Image.Image | np.ndarray | torch.Tensor], device: torch.device | str = "cpu",
                 seeds: list[int | None] | None = None) -> tuple[torch.Tensor, list[PatchSelection]]:
    """Patch selection for a batch of decoded images on `device`.

    Returns the (B, 224, 224, 3) uint8 mosaics on `device` (ready for the model) and one
    PatchSelection per image (its `.mosaic` a host copy), equal to `select_patches`.
    """
    if not images:
        return torch.empty((0, GRID * PATCH_SIZE, GRID * PATCH_SIZE, 3), dtype=torch.uint8, device=device), []
    tensors = [image_tensor(image, device) for image in images]
    sizes = [(int(t.shape[1]), int(t.shape[0])) for t in tensors]  # (width, height) before padding
    padded = [pad_to_patch(t) for t in tensors]
    entropies = batch_entropies([rgb for rgb, _ in padded])
    seeds = seeds or [None] * len(images)
    arranged = [arrange_cells(e, size, seed) for e, size, seed in zip(entropies, sizes, seeds)]
    mosaics = torch.stack([_gather_mosaic(rgb, chosen) for (rgb, _), (chosen, _, _) in zip(padded, arranged)])
    host = mosaics.cpu().numpy()
    selections = [build_selection(host[i].copy(), chosen, low, entropies[i], sizes[i], padded[i][1], shuffle)
                  for i, (chosen, low, shuffle) in enumerate(arranged)]
    return mosaics, selections
