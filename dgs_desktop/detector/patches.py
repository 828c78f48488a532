"""Patch selection (NS-Net, as used by DGS-Net Sec. 5.1): the 7x7 mosaic the detector sees.

Algorithm (the authors' `PatchSelectionTransform`):
1. trim the image to multiples of 32 px (the bottom/right remainder is dropped);
2. split it into non-overlapping 32x32 patches, row-major;
3. per patch, gray = (0.299 R + 0.587 G + 0.114 B) / 255, P = |FFT2(gray)|^2,
   p = P / (sum P + 1e-12), H = -sum p log2(p + 1e-12)  (spectral entropy);
4. keep the 24 lowest-H and the 25 highest-H patches;
5. shuffle them into a 7x7 mosaic (224x224); the shuffle is seeded from the image content, so
   the same picture always gives the same mosaic and the same score.

Small images (documented behaviour): a side shorter than 32 px is padded to 32 by repeating
its last row/column; an image with fewer than 49 patches uses all of them, ordered by
entropy and repeated cyclically to fill the 49 cells. Boxes always stay inside the image.

Only numpy and torch (for the batched FFT) are used here: no model code, no Qt.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

PATCH_SIZE = 32
GRID = 7
CELLS = GRID * GRID
N_LOW = 24
N_HIGH = CELLS - N_LOW
MOSAIC_SIZE = GRID * PATCH_SIZE
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_EPS = 1e-12
_BAND_PATCHES = 8192  # patches per band in patch_entropies (8 MP): bounds its working memory

Box = tuple[int, int, int, int]  # (x, y, w, h) in original-image pixels


@dataclass(frozen=True)
class PatchSelection:
    """`mosaic[r*32:(r+1)*32, c*32:(c+1)*32]` shows `boxes[r*7 + c]` of the original image."""

    mosaic: np.ndarray  # (224, 224, 3) uint8
    boxes: tuple[Box, ...]  # one per mosaic cell, row-major
    low_entropy: tuple[bool, ...]  # per cell: chosen among the lowest-entropy patches
    entropies: np.ndarray  # (49,) float32, spectral entropy of each cell's patch
    image_size: tuple[int, int]  # (width, height) of the original image


def as_rgb_image(image) -> Image.Image:
    """An RGB PIL image from a PIL image or an (H, W, 3) / (H, W) uint8 array."""
    if isinstance(image, np.ndarray):
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError("the image is empty (0 pixels)")
        return Image.fromarray(np.ascontiguousarray(image))
    if image.width == 0 or image.height == 0:
        raise ValueError("the image is empty (0 pixels)")
    return image if image.mode == "RGB" else image.convert("RGB")


def spectral_entropy(gray_patches: torch.Tensor, gray_scale: float = 1.0) -> torch.Tensor:
    """H = -sum p log2(p + 1e-12) with p = P / (sum P + 1e-12), P = |FFT2(gray)|^2, per patch.

    `gray = gray_patches * gray_scale`; the scale is folded into the 1e-12 guard instead of
    multiplying every pixel (p is otherwise scale-free), which is the same p exactly.
    Uses the real FFT: for real input the full spectrum is Hermitian, so every column of the
    half spectrum counts twice except the first and (even width) the last one. Exact, and
    much faster than a full complex FFT. Input (N, h, w) float32, output (N,) float32.
    """
    width = gray_patches.shape[-1]
    # numpy's complex abs is several times faster than torch's on CPU.
    magnitude = torch.from_numpy(np.abs(torch.fft.rfft2(gray_patches).numpy()))
    power = magnitude.mul_(magnitude)
    weights = torch.full((power.shape[-1],), 2.0, dtype=power.dtype)
    weights[0] = 1.0
    if width % 2 == 0:
        weights[-1] = 1.0
    total = power.sum(dim=-2) @ weights
    p = power.div_((total + _EPS / gray_scale**2)[:, None, None])
    plogp = torch.log2(p + _EPS).mul_(p)
    return -(plogp.sum(dim=-2) @ weights)


def _pad_to_patch(image: Image.Image) -> Image.Image:
    """Sides shorter than one patch are padded by repeating the last row/column."""
    if image.width >= PATCH_SIZE and image.height >= PATCH_SIZE:
        return image
    rgb = np.asarray(image)
    pad_h, pad_w = max(0, PATCH_SIZE - rgb.shape[0]), max(0, PATCH_SIZE - rgb.shape[1])
    return Image.fromarray(np.pad(rgb, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge"))


def patch_entropies(image) -> np.ndarray:
    """Spectral entropy of every 32x32 patch of an image at least 32 px high and wide.

    Returns a (rows, cols) float32 array, row-major like the patches.
    """
    image = as_rgb_image(image)
    rows, cols = image.height // PATCH_SIZE, image.width // PATCH_SIZE
    # Bands of whole patch rows: a large image never gets a full-size gray copy or FFT buffer
    # (a 12000x12000 image would need ~3 GB at once); each patch's entropy is computed alike.
    band_rows = max(1, _BAND_PATCHES // cols)
    entropies = np.empty((rows, cols), dtype=np.float32)
    for top in range(0, rows, band_rows):
        bottom = min(rows, top + band_rows)
        band = image.crop((0, top * PATCH_SIZE, cols * PATCH_SIZE, bottom * PATCH_SIZE))
        # Pillow's RGB->F conversion computes (299 R + 587 G + 114 B) / 1000 in float, in C.
        gray = np.asarray(band.convert("F"))
        patches = np.require(gray.reshape(bottom - top, PATCH_SIZE, cols, PATCH_SIZE).swapaxes(1, 2),
                             requirements="CW")
        patches = torch.from_numpy(patches).reshape((bottom - top) * cols, PATCH_SIZE, PATCH_SIZE)
        entropies[top:bottom] = spectral_entropy(patches, gray_scale=1.0 / 255.0).reshape(bottom - top, cols).numpy()
    return entropies


def content_seed(shape: tuple[int, ...], chosen: np.ndarray) -> int:
    """A shuffle seed derived from the image content (its size and which patches were chosen).

    Integers, not floats, are hashed, so the seed is stable across FFT implementations.
    """
    digest = hashlib.blake2b(np.asarray(shape, dtype=np.int64).tobytes()
                             + np.asarray(chosen, dtype=np.int64).tobytes(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _choose(entropies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat patch indices for the 49 cells (before shuffling) and whether each is 'low'."""
    flat = entropies.ravel()
    order = np.argsort(flat, kind="stable")
    if flat.size >= CELLS:
        chosen = np.concatenate([order[:N_LOW], order[-N_HIGH:]])
        low = np.arange(CELLS) < N_LOW
    else:
        ranks = np.arange(CELLS) % flat.size
        chosen = order[ranks]
        low = ranks < -(-flat.size * N_LOW // CELLS)  # ceil(n * 24/49) lowest count as 'low'
    return chosen, low


def select_patches(image, seed: int | None = None) -> PatchSelection:
    """Builds the 7x7 mosaic of the 24 lowest- and 25 highest-entropy 32x32 patches.

    `seed=None` derives the shuffle from the image content (see `content_seed`); the trainer
    passes its own seeds to vary the shuffle between epochs.
    """
    image = as_rgb_image(image)
    width, height = image.size
    padded = _pad_to_patch(image)
    entropies = patch_entropies(padded)
    cols = entropies.shape[1]
    chosen, low = _choose(entropies)
    if seed is None:
        seed = content_seed((height, width, 3), chosen)
    permutation = np.random.default_rng(seed).permutation(CELLS)
    chosen, low = chosen[permutation], low[permutation]

    rows_idx, cols_idx = np.divmod(chosen, cols)
    mosaic = Image.new("RGB", (MOSAIC_SIZE, MOSAIC_SIZE))
    for cell, (r, c) in enumerate(zip(rows_idx.tolist(), cols_idx.tolist())):
        x, y = c * PATCH_SIZE, r * PATCH_SIZE
        tile = padded.crop((x, y, x + PATCH_SIZE, y + PATCH_SIZE))
        mosaic.paste(tile, ((cell % GRID) * PATCH_SIZE, (cell // GRID) * PATCH_SIZE))
    boxes = tuple(
        (int(c * PATCH_SIZE), int(r * PATCH_SIZE),
         int(min(PATCH_SIZE, width - c * PATCH_SIZE)), int(min(PATCH_SIZE, height - r * PATCH_SIZE)))
        for r, c in zip(rows_idx, cols_idx)
    )
    return PatchSelection(
        mosaic=np.array(mosaic),
        boxes=boxes,
        low_entropy=tuple(bool(x) for x in low),
        entropies=entropies.ravel()[chosen].astype(np.float32),
        image_size=(width, height),
    )


def mosaics_to_tensor(mosaics, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """(B, 224, 224, 3) uint8 mosaics -> normalised (B, 3, 224, 224) float32 model input."""
    batch = torch.from_numpy(np.ascontiguousarray(np.stack(list(mosaics)) if not isinstance(mosaics, np.ndarray) else mosaics))
    batch = batch.permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (batch - mean_t) / std_t


def preprocessing_manifest() -> dict:
    """What a checkpoint records about the preprocessing it was trained with."""
    return {"name": "ns-net-patch-selection", "patch_size": PATCH_SIZE, "grid": GRID,
            "n_low": N_LOW, "n_high": N_HIGH, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
            "shuffle": "content-seeded"}
