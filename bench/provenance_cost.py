"""What reading provenance adds to preparing one image for the scan, measured in one run.

Per ~1 MP JPEG (camera EXIF + XMP) and per C2PA-signed JPEG, on one core:
  (a) the scan's prepare without provenance: read + sha256 + decode + patch selection
  (b) provenance from the bytes already read: metadata + fingerprints + C2PA
  ratio (b)/(a)   target <= 0.1 for files without C2PA (signed files pay c2pa's validation)

Run: PYTHONPATH=. python bench/provenance_cost.py [--count 30]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from imagegen import photo_like  # noqa: E402


def best_of(function, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    import numpy as np
    import torch
    from provenance_samples import camera_exif, sign_c2pa, xmp_packet

    from dgs_desktop.detector.patches import select_patches
    from dgs_desktop.provenance.summary import provenance_line
    from dgs_desktop.scan.decode import decode_image

    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        plain, signed = [], []
        for i in range(args.count):
            buffer = io.BytesIO()
            photo_like(rng).save(buffer, "JPEG", quality=90, exif=camera_exif(software="Adobe Photoshop 25.1"),
                                 xmp=xmp_packet({"xmp:CreatorTool": "Adobe Photoshop 25.1"}))
            path = Path(tmp) / f"{i}.jpg"
            path.write_bytes(buffer.getvalue())
            plain.append(path)
            if i < max(3, args.count // 5):
                signed_path = Path(tmp) / f"signed_{i}.jpg"
                signed_path.write_bytes(sign_c2pa(buffer.getvalue()))
                signed.append(signed_path)

        for label, paths in (("camera JPEG", plain), ("C2PA-signed JPEG", signed)):
            decoded = [decode_image(p) for p in paths]

            def prepare(paths=paths):
                for path in paths:
                    select_patches(decode_image(path).image)

            def provenance(decoded=decoded):
                for item in decoded:
                    provenance_line(item.data)

            prepare_s, provenance_s = best_of(prepare), best_of(provenance)
            n = len(paths)
            print(f"{label:18s} n={n:3d}  (a) prepare {1000 * prepare_s / n:6.1f} ms/img  "
                  f"(b) provenance {1000 * provenance_s / n:6.2f} ms/img  ratio (b)/(a) {provenance_s / prepare_s:.3f}")


if __name__ == "__main__":
    main()
