"""The device path (batched torch ops) chooses the same patches as the host path for the same
decoded pixels, on a few hundred varied images from 1 px to 4000 px, small-image rules included."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dgs_desktop.detector.patches import patch_entropies, select_patches
from dgs_desktop.scan.device_select import batch_entropies, gray, pad_to_patch, select_batch


def varied_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Noise, smooth gradients, flat areas and hard edges, so entropies spread and some tie."""
    kind = rng.integers(0, 4)
    if kind == 0:
        return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 128 + 100 * np.sin(x / rng.uniform(2, 60) + rng.uniform(0, 6)) * np.cos(y / rng.uniform(2, 60))
    if kind == 2:  # flat blocks: many exactly equal entropies (ties)
        base = np.round(base / 64) * 64
    rgb = np.stack([base, base * rng.uniform(0.5, 1), 255 - base], axis=2)
    if kind == 3:
        rgb += rng.normal(0, rng.uniform(1, 30), rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def sizes(rng: np.random.Generator, count: int) -> list[tuple[int, int]]:
    """Mostly small (fast), every small-image regime, and a few large ones up to 4000 px."""
    fixed = [(1, 1), (31, 31), (32, 32), (20, 300), (300, 20), (64, 96), (128, 128), (160, 160), (224, 224),
             (225, 250), (96, 512), (4000, 40), (37, 4000), (1200, 1700), (2000, 2000)]
    drawn = [(int(rng.integers(1, 400)), int(rng.integers(1, 400))) for _ in range(count - len(fixed))]
    return fixed + drawn


def test_gray_is_pillows_conversion_bit_for_bit():
    rgb = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(rgb).convert("F"))
    assert np.array_equal(gray(torch.from_numpy(rgb)).numpy(), expected)


def test_device_path_chooses_the_same_patches_as_the_host_path():
    rng = np.random.default_rng(12)
    images = [varied_image(rng, h, w) for h, w in sizes(rng, 300)]
    for start in range(0, len(images), 32):  # batches mixing every size
        chunk = images[start:start + 32]
        mosaics, selections = select_batch(chunk)
        assert mosaics.shape == (len(chunk), 224, 224, 3) and mosaics.dtype == torch.uint8
        for rgb, device_side, mosaic in zip(chunk, selections, mosaics):
            host = select_patches(rgb)
            assert device_side.boxes == host.boxes, rgb.shape
            assert device_side.low_entropy == host.low_entropy
            assert (device_side.distinct_patches, device_side.filled_cells, device_side.padded) == (
                host.distinct_patches, host.filled_cells, host.padded)
            # the entropies agree to float32 rounding (FFT libraries differ in the last bits, e.g. 3e-8 on
            # AMD); the chosen patches are equal because ranking rounds to patches.ENTROPY_RANK_STEP
            np.testing.assert_allclose(device_side.entropies, host.entropies, rtol=0, atol=1e-5)
            np.testing.assert_array_equal(device_side.mosaic, host.mosaic)
            np.testing.assert_array_equal(mosaic.numpy(), host.mosaic)


def test_a_patch_entropy_does_not_depend_on_its_batch():
    rng = np.random.default_rng(3)
    images = [torch.from_numpy(varied_image(rng, 200 + 17 * i, 150 + 9 * i)) for i in range(6)]
    together = batch_entropies(images)
    for image, entropies in zip(images, together):
        (alone,) = batch_entropies([image])
        np.testing.assert_allclose(alone, entropies, rtol=0, atol=1e-5)  # bit-equal on one library, not across
        np.testing.assert_allclose(alone, patch_entropies(image.numpy()), rtol=0, atol=1e-5)


def test_explicit_seeds_and_padding_match_the_host():
    rgb = np.random.default_rng(4).integers(0, 256, (300, 260, 3), dtype=np.uint8)
    _, selections = select_batch([rgb, rgb], seeds=[1, 2])
    assert [s.boxes for s in selections] == [select_patches(rgb, seed=1).boxes, select_patches(rgb, seed=2).boxes]
    padded, was_padded = pad_to_patch(torch.from_numpy(rgb[:5, :7]))
    assert was_padded and padded.shape == (32, 32, 3)
    assert (padded[5:, :7] == padded[4:5, :7]).all() and (padded[:, 7:] == padded[:, 6:7]).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_mosaics_equal_the_host_mosaics():
    rng = np.random.default_rng(5)
    images = [varied_image(rng, h, w) for h, w in sizes(rng, 40)]
    mosaics, selections = select_batch(images, device="cuda")
    same = sum(s.boxes == select_patches(rgb).boxes for rgb, s in zip(images, selections))
    assert mosaics.device.type == "cuda" and same >= len(images) - 2  # FFT bits may flip a near tie
