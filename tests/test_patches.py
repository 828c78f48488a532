"""Patch selection against a direct per-patch float64 computation (the DESIGN.md recipe)."""

import numpy as np
import pytest
from PIL import Image

from dgs_desktop.detector.patches import (
    CELLS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    N_LOW,
    PATCH_SIZE,
    mosaics_to_tensor,
    patch_entropies,
    select_patches,
)


def direct_entropies(rgb: np.ndarray) -> np.ndarray:
    """The recipe written out literally, one patch at a time, in float64 with a full FFT."""
    rows, cols = rgb.shape[0] // PATCH_SIZE, rgb.shape[1] // PATCH_SIZE
    out = np.zeros((rows, cols))
    for r in range(rows):
        for c in range(cols):
            patch = rgb[r * 32:(r + 1) * 32, c * 32:(c + 1) * 32].astype(np.float64)
            gray = (0.299 * patch[..., 0] + 0.587 * patch[..., 1] + 0.114 * patch[..., 2]) / 255.0
            power = np.abs(np.fft.fft2(gray)) ** 2
            p = power / (power.sum() + 1e-12)
            out[r, c] = -(p * np.log2(p + 1e-12)).sum()
    return out


def structured_image(rng, height, width):
    """Random images with a spread of entropies: smooth gradients, noise and stripes."""
    y, x = np.mgrid[0:height, 0:width]
    base = (np.sin(x / rng.uniform(3, 40)) + np.cos(y / rng.uniform(3, 40))) * 60 + 128
    noise = rng.normal(0, 1, (height, width)) * rng.uniform(0, 60, (height // 32 + 1, width // 32 + 1)
                                                           ).repeat(32, 0).repeat(32, 1)[:height, :width]
    gray = base + noise
    rgb = np.stack([gray, gray * 0.8 + 20, 255 - gray], axis=2)
    return np.clip(rgb, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("size", [(224, 224), (256, 320), (300, 417), (513, 260)])
def test_entropies_match_direct_computation(size):
    rng = np.random.default_rng(sum(size))
    rgb = structured_image(rng, *size)
    expected = direct_entropies(rgb)
    actual = patch_entropies(rgb)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, atol=2e-4)


@pytest.mark.parametrize("size", [(224, 224), (256, 320), (300, 417), (700, 500)])
def test_selection_is_lowest_24_and_highest_25(size):
    rng = np.random.default_rng(size[0])
    rgb = structured_image(rng, *size)
    expected = direct_entropies(rgb).ravel()
    selection = select_patches(rgb)
    cols = rgb.shape[1] // 32
    chosen = [(y // 32) * cols + x // 32 for x, y, _, _ in selection.boxes]
    assert len(set(chosen)) == CELLS
    low = [i for i, is_low in zip(chosen, selection.low_entropy) if is_low]
    high = [i for i, is_low in zip(chosen, selection.low_entropy) if not is_low]
    assert len(low) == N_LOW and len(high) == CELLS - N_LOW
    rest = np.setdiff1d(np.arange(expected.size), chosen)
    tol = 2e-4  # float32 vs float64: only near-ties may swap
    assert expected[low].max() <= expected[high].min() + tol
    if rest.size:  # exactly 49 patches (224x224): everything is chosen
        assert expected[low].max() <= expected[rest].min() + tol
        assert expected[high].min() >= expected[rest].max() - tol


@pytest.mark.parametrize("size", [(224, 224), (300, 417), (64, 900), (1, 1), (31, 31), (40, 90), (96, 96)])
def test_mosaic_cells_equal_box_pixels(size):
    rng = np.random.default_rng(size[1])
    rgb = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    selection = select_patches(rgb)
    assert selection.mosaic.shape == (224, 224, 3) and selection.mosaic.dtype == np.uint8
    assert len(selection.boxes) == CELLS
    for cell, (x, y, w, h) in enumerate(selection.boxes):
        r, c = divmod(cell, 7)
        tile = selection.mosaic[r * 32:(r + 1) * 32, c * 32:(c + 1) * 32]
        if cell >= selection.filled_cells:
            assert (x, y, w, h) == (0, 0, 0, 0) and not tile.any()
            continue
        assert 0 <= x and 0 <= y and w >= 1 and h >= 1
        assert x + w <= size[1] and y + h <= size[0]
        np.testing.assert_array_equal(tile[:h, :w], rgb[y:y + h, x:x + w])


def authors_rule_multiset(rgb: np.ndarray) -> list[tuple[int, int]]:
    """The authors' selection restated from their description: row-major whole patches,
    entropy order, then `order[:24]` followed by `order[-25:]` whatever the patch count.
    Returns the (x, y) corners of the chosen patches, repeats included."""
    entropies = direct_entropies(rgb).ravel()
    cols = rgb.shape[1] // PATCH_SIZE
    order = sorted(range(entropies.size), key=lambda i: entropies[i])
    picked = order[:24] + order[-25:]
    return sorted(((i % cols) * 32, (i // cols) * 32) for i in picked)


@pytest.mark.parametrize("size", [(32, 32), (64, 96), (128, 128), (160, 160), (192, 224), (224, 224), (64, 800),
                                  (150, 170), (256, 288)])
def test_small_images_follow_the_authors_rule(size):
    """Same multiset of patches as the authors; filled cells first, black cells last."""
    rgb = structured_image(np.random.default_rng(size[0] * 7 + size[1]), *size)
    n = (size[0] // 32) * (size[1] // 32)
    selection = select_patches(rgb)
    expected = authors_rule_multiset(rgb)
    filled = min(CELLS, 2 * n)
    assert selection.filled_cells == filled == len(expected)
    assert sorted((x, y) for x, y, _, _ in selection.boxes[:filled]) == expected
    assert selection.boxes[filled:] == ((0, 0, 0, 0),) * (CELLS - filled)
    assert selection.distinct_patches == min(n, CELLS) and not selection.padded
    assert np.isnan(selection.entropies[filled:]).all() and np.isfinite(selection.entropies[:filled]).all()
    # a repeated patch is chosen once among the low and once among the high ones
    assert sum(selection.low_entropy) == min(N_LOW, n)
    notes = selection.reliability_notes
    assert notes == ([] if n >= CELLS else [f"fewer than 49 distinct patches (n={n}): less reliable"])


def test_short_sides_are_edge_padded_then_follow_the_rule():
    """Our documented difference: a side < 32 px is padded (the authors' mosaic is all black)."""
    one = select_patches(np.full((1, 1, 3), 200, np.uint8))
    assert one.padded and one.distinct_patches == 1 and one.filled_cells == 2
    assert one.boxes == ((0, 0, 1, 1),) * 2 + ((0, 0, 0, 0),) * 47
    assert (one.mosaic[:32, :64] == 200).all() and not one.mosaic[32:].any()
    assert one.reliability_notes == ["fewer than 49 distinct patches (n=1): less reliable",
                                     "padded to 32 px: less reliable"]
    strip = select_patches(np.random.default_rng(0).integers(0, 256, (20, 500, 3), dtype=np.uint8))
    assert strip.padded and strip.filled_cells == 30 and all(h == 20 for _, _, _, h in strip.boxes[:30])
    big = select_patches(np.random.default_rng(0).integers(0, 256, (40, 2000, 3), dtype=np.uint8))
    assert not big.padded and big.filled_cells == CELLS and big.reliability_notes == []


def test_shuffle_is_content_seeded_and_explicit_seed_varies_it():
    rgb = np.random.default_rng(5).integers(0, 256, (320, 320, 3), dtype=np.uint8)
    first, second = select_patches(rgb), select_patches(rgb.copy())
    assert first.boxes == second.boxes
    np.testing.assert_array_equal(first.mosaic, second.mosaic)
    seeded = [select_patches(rgb, seed=s).boxes for s in range(3)]
    assert len(set(seeded)) == 3 and all(set(b) == set(first.boxes) for b in seeded)


def test_pil_and_array_inputs_agree_and_gray_is_broadcast():
    rgb = np.random.default_rng(1).integers(0, 256, (100, 130, 3), dtype=np.uint8)
    assert select_patches(Image.fromarray(rgb)).boxes == select_patches(rgb).boxes
    gray = rgb[..., 0]
    assert select_patches(Image.fromarray(gray)).boxes == select_patches(gray).boxes


def test_empty_or_wrong_input_is_a_clear_error():
    with pytest.raises(ValueError, match="empty"):
        select_patches(np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        select_patches(np.zeros((40, 40, 3), np.float32))


def test_normalisation_uses_imagenet_statistics():
    mosaic = np.zeros((224, 224, 3), np.uint8)
    mosaic[..., 1] = 255
    tensor = mosaics_to_tensor([mosaic])
    assert tensor.shape == (1, 3, 224, 224)
    np.testing.assert_allclose(tensor[0, :, 0, 0].numpy(),
                               [(0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], (1 - IMAGENET_MEAN[1]) / IMAGENET_STD[1],
                                (0 - IMAGENET_MEAN[2]) / IMAGENET_STD[2]], rtol=1e-6)
