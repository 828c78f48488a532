"""Issue 21: the size of each difference from the authors' arithmetic, measured in one run.

    PYTHONPATH=$PWD .venv/bin/python bench/paper_fidelity.py

1. Blur: Pillow's GaussianBlur (the default) against the authors' scipy gaussian_filter on uint8
   channels (`--blur-backend scipy`), mean and max absolute difference in gray levels.
2. EXIF orientation: of the 49 patches the analyst decoding (rotation applied) selects, how many
   the authors' decoding (no rotation) also selects, compared as pixel tiles in the viewer's frame.
3. 16-bit: the share of pixels of a full-range 16-bit gray image that the authors' conversion
   saturates at 255.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dgs_desktop.detector.patches import select_patches  # noqa: E402
from dgs_desktop.scan.decode import ANALYST, AUTHORS, decode_bytes  # noqa: E402
from tests.imagegen import jpeg_with_orientation, photo_like  # noqa: E402
from trainer.evaluate import gaussian_blur  # noqa: E402


def blur_gap() -> None:
    image = photo_like(np.random.default_rng(0), 512, 512)
    print("blur: Pillow vs scipy (gray levels, 512x512 photo-like)")
    for sigma in (0.5, 1.0, 2.0, 3.0):
        gap = np.abs(np.asarray(gaussian_blur(image, sigma, "pillow"), dtype=np.int16)
                     - np.asarray(gaussian_blur(image, sigma, "scipy"), dtype=np.int16))
        print(f"  sigma {sigma:3.1f}: mean {gap.mean():.3f}, max {gap.max()}, pixels differing {100 * (gap > 0).mean():.1f}%")


# how Pillow's exif_transpose turns a stored pixel grid into the viewer's frame, per orientation
TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
             5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
             8: Image.Transpose.ROTATE_90}


def shared_patches() -> None:
    image = photo_like(np.random.default_rng(1), 640, 480)
    print("EXIF orientation: patches the authors' decoding shares with the analyst's (of 49)")
    for orientation in range(1, 9):
        data = jpeg_with_orientation(image, orientation)
        seen = []
        for decoding in (ANALYST, AUTHORS):
            shown = decode_bytes(data, decoding=decoding).image
            selection = select_patches(shown)
            crops = [shown.crop((x, y, x + w, y + h)) for x, y, w, h in selection.boxes[:selection.filled_cells]]
            if decoding == AUTHORS and orientation in TRANSPOSE:  # into the viewer's frame
                crops = [crop.transpose(TRANSPOSE[orientation]) for crop in crops]
            seen.append({np.asarray(crop).tobytes() for crop in crops})
        print(f"  orientation {orientation}: {len(seen[0] & seen[1])} of {len(seen[0])} distinct patches shared")


def sixteen_bit() -> None:
    gray = (np.linspace(0, 65535, 256 * 256)).reshape(256, 256).astype(np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(gray).save(buffer, format="PNG")
    authors = np.asarray(decode_bytes(buffer.getvalue(), decoding=AUTHORS).image)
    print(f"16-bit full-range gray: {100 * (authors[..., 0] == 255).mean():.1f}% of pixels saturate at 255 "
          f"(authors' decoding); the analyst decoding scales by 255/65535")


if __name__ == "__main__":
    blur_gap()
    shared_patches()
    sixteen_bit()
