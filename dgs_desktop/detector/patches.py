"""Patch selection (NS-Net, as used by DGS-Net Sec. 5.1): the 7x7 mosaic the detector sees.

Algorithm (the authors' `PatchSelectionTransform`):
1. trim the image to multiples of 32 px (the bottom/right remainder is dropped);
2. split it into non-overlapping 32x32 patches, row-major;
3. per patch, gray = (0.299 R + 0.587 G + 0.114 B) / 255, P = |FFT2(gray)|^2,
   p = P / (sum P + 1e-12), H = -sum p log2(p + 1e-12)  (spectral entropy);
4. keep the 24 lowest-H and the 25 highest-H patches;
5. shuffle them into a 7x7 mosaic (224x224); the shuffle is seeded from the image content, so
   the same picture always gives the same mosaic and the same score.

Fewer than 49 whole patches (the authors' rule, which produced their published numbers):
`order[:24]` and `order[-25:]` of the entropy order are taken anyway, so with 25-48 patches
the middle ones appear twice, and with n < 25 patches only 2n cells are filled; the filled
cells are shuffled and the remaining 49 - 2n cells, the last ones, stay black with the box
(0, 0, 0, 0). A side shorter than 32 px is padded to 32 by repeating its last row/column
(our choice: the authors' code gives an all-black mosaic there). Either case makes the score
less reliable and is flagged on the selection (`distinct_patches`, `padded`).
Boxes always stay inside the image.

Only numpy, Pillow and torch (for the batched FFT, imported when first needed, so the window
can use the constants and `mosaic_from_boxes` without loading torch) are used here: no model
code, no Qt.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch

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
BLACK_BOX: Box = (0, 0, 0, 0)  # the box of an empty (black) mosaic cell


@dataclass(frozen=True)
class PatchSelection:
    """`mosaic[r*32:(r+1)*32, c*32:(c+1)*32]` shows `boxes[r*7 + c]` of the original image."""

    mosaic: np.ndarray  # (224, 224, 3) uint8
    boxes: tuple[Box, ...]  # one per mosaic cell, row-major
    low_entropy: tuple[bool, ...]  # per cell: chosen among the lowest-entropy patches
    entropies: np.ndarray  # (49,) float32, spectral entropy of each cell's patch; NaN for a black cell
    image_size: tuple[int, int]  # (width, height) of the original image
    distinct_patches: int = CELLS  # different patches shown (< 49 for small images)
    filled_cells: int = CELLS  # cells [0, filled_cells) hold a patch; the rest are black, box (0, 0, 0, 0)
    padded: bool = False  # a side shorter than 32 px was padded by repeating its edge
    shuffle: tuple[int, ...] = ()  # cell i holds the shuffle[i]-th chosen patch (24 low, then 25 high)

    @property
    def reliability_notes(self) -> list[str]:
        """Why this selection makes a less reliable score, one short note per reason."""
        return reliability_notes(self.distinct_patches, self.padded)


def reliability_notes(distinct_patches: int | None, padded: bool) -> list[str]:
    """Why a mosaic of `distinct_patches` different patches (None: not known), padded or not,
    makes a less reliable score: one short note per reason. The scan's notes (CSV, case,
    report) and the window's warning (`record.reliability_warning`) all say it in these words."""
    notes = []
    if distinct_patches is not None and distinct_patches < CELLS:
        notes.append(f"fewer than {CELLS} distinct patches (n={distinct_patches}): less reliable")
    if padded:
        notes.append(f"padded to {PATCH_SIZE} px: less reliable")
    return notes


def as_rgb_image(image: Image.Image | np.ndarray) -> Image.Image:
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
    much faster than a full complex FFT. Input (N, h, w) float32 on any device, output (N,).
    Every reduction runs along the last axis of one patch, so a patch's entropy does not
    depend on how many patches share the call (the host and device paths rely on it).
    """
    import torch

    width = gray_patches.shape[-1]
    parts = torch.view_as_real(torch.fft.rfft2(gray_patches)).square()
    power = torch.add(parts[..., 0], parts[..., 1])  # |X|^2 = re^2 + im^2, no square root
    weights = torch.full((power.shape[-1],), 2.0, dtype=power.dtype, device=power.device)
    weights[0] = 1.0
    if width % 2 == 0:
        weights[-1] = 1.0
    total = power.sum(dim=-2).mul_(weights).sum(dim=-1)
    p = power.div_((total + _EPS / gray_scale**2)[:, None, None])
    plogp = torch.log2(p + _EPS).mul_(p)
    return plogp.sum(dim=-2).mul_(weights).sum(dim=-1).neg_()


def _pad_to_patch(image: Image.Image) -> Image.Image:
    """Sides shorter than one patch are padded by repeating the last row/column."""
    if image.width >= PATCH_SIZE and image.height >= PATCH_SIZE:
        return image
    rgb = np.asarray(image)
    pad_h, pad_w = max(0, PATCH_SIZE - rgb.shape[0]), max(0, PATCH_SIZE - rgb.shape[1])
    return Image.fromarray(np.pad(rgb, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge"))


def patch_entropies(image: Image.Image | np.ndarray) -> np.ndarray:
    """Spectral entropy of every 32x32 patch of an image at least 32 px high and wide.

    Returns a (rows, cols) float32 array, row-major like the patches.
    """
    import torch

    rgb = as_rgb_image(image)
    rows, cols = rgb.height // PATCH_SIZE, rgb.width // PATCH_SIZE
    # Bands of whole patch rows: a large image never gets a full-size gray copy or FFT buffer
    # (a 12000x12000 image would need ~3 GB at once); each patch's entropy is computed alike.
    band_rows = max(1, _BAND_PATCHES // cols)
    entropies = np.empty((rows, cols), dtype=np.float32)
    for top in range(0, rows, band_rows):
        bottom = min(rows, top + band_rows)
        band = rgb.crop((0, top * PATCH_SIZE, cols * PATCH_SIZE, bottom * PATCH_SIZE))
        # Pillow's RGB->F conversion computes (299 R + 587 G + 114 B) / 1000 in float, in C.
        gray = np.asarray(band.convert("F"))
        patches = np.require(gray.reshape(bottom - top, PATCH_SIZE, cols, PATCH_SIZE).swapaxes(1, 2),
                             requirements=("C", "W"))
        gray_patches = torch.from_numpy(patches).reshape((bottom - top) * cols, PATCH_SIZE, PATCH_SIZE)
        entropies[top:bottom] = spectral_entropy(gray_patches, gray_scale=1.0 / 255.0).reshape(bottom - top, cols).numpy()
    return entropies


def content_seed(shape: tuple[int, ...], chosen: np.ndarray) -> int:
    """A shuffle seed derived from the image content (its size and which patches were chosen).

    Integers, not floats, are hashed, so the seed is stable across FFT implementations.
    """
    digest = hashlib.blake2b(np.asarray(shape, dtype=np.int64).tobytes()
                             + np.asarray(chosen, dtype=np.int64).tobytes(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


# Entropies are ranked after rounding to 1/4096 bit: FFT and BLAS libraries (Intel, AMD, CUDA)
# differ in the last bits (~3e-8 measured), which must not change which patches are chosen.
ENTROPY_RANK_STEP = 1.0 / 4096


def entropy_order(entropies: np.ndarray) -> np.ndarray:
    """Flat patch indices from lowest to highest entropy: by entropy rounded to a multiple of
    ENTROPY_RANK_STEP, then by patch index (row-major) among equals. Two entropies closer than
    the step rank by position unless they straddle a rounding boundary, so the host and device
    paths (and two machines) choose the same patches. The authors rank exact float32 values
    with numpy's unstable quicksort; exactly tied patches (flat areas) are then in no defined order."""
    keys = np.rint(np.asarray(entropies, dtype=np.float64).ravel() / ENTROPY_RANK_STEP)
    return np.argsort(keys, kind="stable")


def choose_cells(entropies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat patch indices of the filled cells (before shuffling) and whether each is 'low'.

    The authors' rule for any patch count n: `order[:24]` then `order[-25:]` of the entropy
    order (`entropy_order`). n >= 49 gives 49 different patches; 25 <= n < 49 gives 49 cells
    with the middle patches twice; n < 25 gives 2n cells (every patch once as low, once as high).
    """
    order = entropy_order(entropies)
    low, high = order[:N_LOW], order[-N_HIGH:]
    chosen = np.concatenate([low, high])
    return chosen, np.arange(chosen.size) < low.size


def cell_permutation(count: int, seed: int) -> np.ndarray:
    """The mosaic shuffle: cell i shows the permutation[i]-th of the `count` chosen patches."""
    return np.random.default_rng(seed).permutation(count)


def arrange_cells(entropies: np.ndarray, image_size: tuple[int, int],
                  seed: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chosen flat patch indices in mosaic order (filled cells only), their 'low' flags, and
    the shuffle that put them there.

    `seed=None` derives the shuffle from the image content (see `content_seed`).
    """
    width, height = image_size
    chosen, low = choose_cells(entropies)
    if seed is None:
        seed = content_seed((height, width, 3), chosen)
    # Only the filled cells are shuffled: black cells stay last, as in the authors' mosaic.
    permutation = cell_permutation(chosen.size, seed)
    return chosen[permutation], low[permutation], permutation


def cell_boxes(chosen: np.ndarray, entropies: np.ndarray, image_size: tuple[int, int]) -> tuple[Box, ...]:
    """The image box of every mosaic cell for cells arranged by `arrange_cells` (clipped to the
    image; black cells, after the filled ones, get BLACK_BOX)."""
    width, height = image_size
    rows_idx, cols_idx = np.divmod(chosen, entropies.shape[1])
    return tuple(
        (int(c * PATCH_SIZE), int(r * PATCH_SIZE),
         int(min(PATCH_SIZE, width - c * PATCH_SIZE)), int(min(PATCH_SIZE, height - r * PATCH_SIZE)))
        for r, c in zip(rows_idx, cols_idx)
    ) + (BLACK_BOX,) * (CELLS - chosen.size)


def build_selection(mosaic: np.ndarray, chosen: np.ndarray, low: np.ndarray, entropies: np.ndarray,
                    image_size: tuple[int, int], padded: bool, shuffle: np.ndarray | None = None) -> PatchSelection:
    """The PatchSelection for cells arranged by `arrange_cells` (boxes clipped to the image)."""
    width, height = image_size
    black = CELLS - chosen.size
    boxes = cell_boxes(chosen, entropies, image_size)
    cell_entropies = np.full(CELLS, np.nan, dtype=np.float32)
    cell_entropies[: chosen.size] = entropies.ravel()[chosen]
    return PatchSelection(
        mosaic=mosaic,
        boxes=boxes,
        low_entropy=tuple(bool(x) for x in low) + (False,) * black,
        entropies=cell_entropies,
        image_size=(width, height),
        distinct_patches=int(np.unique(chosen).size),
        filled_cells=int(chosen.size),
        padded=padded,
        shuffle=() if shuffle is None else tuple(int(i) for i in shuffle),
    )


def select_patches(image: Image.Image | np.ndarray, seed: int | None = None) -> PatchSelection:
    """Builds the 7x7 mosaic of the 24 lowest- and 25 highest-entropy 32x32 patches.

    Small images follow the authors' rule (see `choose_cells`): black cells come last.
    `seed=None` derives the shuffle from the image content (see `content_seed`); the trainer
    passes its own seeds to vary the shuffle between epochs. This is the host path; the
    batched device path (`dgs_desktop.scan.device_select`) chooses the same patches.
    """
    rgb = as_rgb_image(image)
    padded = _pad_to_patch(rgb)
    entropies = patch_entropies(padded)
    chosen, low, shuffle = arrange_cells(entropies, rgb.size, seed)
    mosaic = mosaic_from_boxes(rgb, cell_boxes(chosen, entropies, rgb.size))
    return build_selection(mosaic, chosen, low, entropies, rgb.size, padded is not rgb, shuffle)


def reordered_mosaic(selection: PatchSelection, seed: int) -> np.ndarray:
    """The mosaic `select_patches(image, seed=seed)` would build, from this selection's mosaic
    alone: the same 49 patches in the order of another seed (no new entropies, no image)."""
    if len(selection.shuffle) != selection.filled_cells:
        raise ValueError("this selection does not record its shuffle")
    position = np.empty(selection.filled_cells, dtype=np.int64)
    position[np.asarray(selection.shuffle, dtype=np.int64)] = np.arange(selection.filled_cells)
    cells = selection.mosaic.reshape(GRID, PATCH_SIZE, GRID, PATCH_SIZE, 3).swapaxes(1, 2).reshape(
        CELLS, PATCH_SIZE, PATCH_SIZE, 3)
    out = np.zeros_like(cells)
    out[: selection.filled_cells] = cells[position[cell_permutation(selection.filled_cells, seed)]]
    return np.ascontiguousarray(out.reshape(GRID, GRID, PATCH_SIZE, PATCH_SIZE, 3).swapaxes(1, 2).reshape(
        MOSAIC_SIZE, MOSAIC_SIZE, 3))


def other_orders(selection: PatchSelection, k: int) -> list[np.ndarray]:
    """The selection's patches in the orders of seeds 1..K (the stability check's and --tta's)."""
    return [reordered_mosaic(selection, seed) for seed in range(1, k + 1)]


def mosaic_from_boxes(image: Image.Image | np.ndarray, boxes: Iterable[Sequence[int]]) -> np.ndarray:
    """The (224, 224, 3) uint8 mosaic: cell i (row-major 7x7) shows `boxes[i]` of the image.

    A box smaller than a patch (a side under 32 px) is padded by repeating its last row or
    column; an empty box (0, 0, 0, 0) is a black cell. `image` is an RGB PIL image (only the
    boxes are cropped, no full-size copy) or an (H, W, 3) array. The scan and the window
    (which rebuilds mosaics from stored boxes) both assemble mosaics here.
    """
    mosaic = np.zeros((MOSAIC_SIZE, MOSAIC_SIZE, 3), dtype=np.uint8)
    for cell, (x, y, w, h) in enumerate(boxes):
        if w <= 0 or h <= 0:
            continue
        patch = image[y:y + h, x:x + w] if isinstance(image, np.ndarray) else np.asarray(image.crop((x, y, x + w, y + h)))
        if patch.shape[:2] != (PATCH_SIZE, PATCH_SIZE):
            patch = np.pad(patch, ((0, PATCH_SIZE - patch.shape[0]), (0, PATCH_SIZE - patch.shape[1]), (0, 0)),
                           mode="edge")
        row, col = divmod(cell, GRID)
        mosaic[row * PATCH_SIZE:(row + 1) * PATCH_SIZE, col * PATCH_SIZE:(col + 1) * PATCH_SIZE] = patch
    return mosaic


def high_frequency_ratio(selection: PatchSelection) -> float | None:
    """How much of the detail of the most detailed patches sits in the upper half of the
    spectrum: the median, over the high-entropy cells, of E(max(|fx|, |fy|) > 1/4 cycle/px) /
    E(0 < max(|fx|, |fy|) <= 1/4) of the Hann-windowed gray patch, mean removed.

    An upscale by 2x or more (or a blur) leaves almost nothing above the source's Nyquist
    frequency, so the ratio falls far below a camera image's (verdict.MAX_RESAMPLED_RATIO).
    Computed from the mosaic, which the host and device paths build identically."""
    cells = [i for i in range(selection.filled_cells) if not selection.low_entropy[i]]
    if not cells or selection.mosaic is None:
        return None
    gray = selection.mosaic.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    patches = gray.reshape(GRID, PATCH_SIZE, GRID, PATCH_SIZE).swapaxes(1, 2).reshape(CELLS, PATCH_SIZE, PATCH_SIZE)
    patches = patches[cells]
    window = np.hanning(PATCH_SIZE)
    windowed = (patches - patches.mean(axis=(1, 2), keepdims=True)) * np.outer(window, window)
    power = np.abs(np.fft.fft2(windowed)) ** 2
    frequency = np.abs(np.fft.fftfreq(PATCH_SIZE))
    band = np.maximum(frequency[:, None], frequency[None, :])
    upper = power[:, band > 0.25].sum(axis=1)
    lower = power[:, (band > 0) & (band <= 0.25)].sum(axis=1)
    ratios = np.where(lower > 0, upper / np.maximum(lower, 1e-300), np.inf)  # a flat patch: no evidence
    median = float(np.median(ratios))
    return round(median, 6) if math.isfinite(median) else None


def mosaics_to_tensor(mosaics: torch.Tensor | np.ndarray | Iterable[np.ndarray],
                      mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                      device: str | torch.device | None = None) -> torch.Tensor:
    """(B, 224, 224, 3) uint8 mosaics (arrays or a tensor) -> normalised (B, 3, 224, 224) float32.

    With `device`, the uint8 pixels travel there first (4x less to copy) and are normalised
    there; every step is a correctly rounded float op, so the result is the same on any device.
    """
    import torch

    if isinstance(mosaics, torch.Tensor):
        batch = mosaics
    else:
        batch = torch.from_numpy(np.ascontiguousarray(
            mosaics if isinstance(mosaics, np.ndarray) else np.stack(list(mosaics))))
    if device is not None:
        batch = batch.to(device, non_blocking=True)
    batch = batch.permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
    mean_t = torch.tensor(mean, dtype=torch.float32, device=batch.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=batch.device).view(1, 3, 1, 1)
    return (batch - mean_t) / std_t


def preprocessing_manifest() -> dict[str, Any]:
    """What a checkpoint records about the preprocessing it was trained with."""
    return {"name": "ns-net-patch-selection", "patch_size": PATCH_SIZE, "grid": GRID,
            "n_low": N_LOW, "n_high": N_HIGH, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
            "shuffle": "content-seeded"}
