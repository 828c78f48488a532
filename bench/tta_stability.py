"""How much `--tta K` steadies P(fake) against the patch order, and what it costs.

Each image's 49 patches are scored in 1 + 63 orders (the content-seeded one and seeds 1..63).
For K = 1, 4, 8 the order spread is the standard deviation, over disjoint groups of K orders,
of the group's mean score, averaged over images; its ratio to K = 1 is printed (1/sqrt(K) if
orders were independent). The cost is the scan's wall time with `tta_orders=K` over K = 1, in
one run. The model has random weights with non-trivial LoRA and head (no downloads).
Run: python bench/tta_stability.py [--arch test-tiny] [--images 24]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # shared image generators
from imagegen import write_jpegs  # noqa: E402

ORDERS = 64


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="test-tiny")
    parser.add_argument("--images", type=int, default=24)
    args = parser.parse_args()

    from dgs_desktop.detector.model import build_detector
    from dgs_desktop.detector.patches import other_orders, select_patches
    from dgs_desktop.scan.decode import decode_image
    from dgs_desktop.scan.engine import ModelRunner, Scanner

    torch.manual_seed(0)
    detector = build_detector(args.arch, None).eval()
    with torch.no_grad():
        for name, param in detector.named_parameters():
            if "lora_B" in name or name.startswith("head."):
                param.normal_(0, 0.05)
    runner = ModelRunner(detector, torch.device("cpu"), batch_size=32)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_jpegs(Path(tmp), args.images, size=512)
        spreads: dict[int, list[float]] = {1: [], 4: [], 8: []}
        for path in paths:
            selection = select_patches(decode_image(path).image)
            scores = np.array(runner.score([selection.mosaic, *other_orders(selection, ORDERS - 1)]))
            for k in spreads:
                spreads[k].append(float(scores.reshape(-1, k).mean(axis=1).std()))
        base = np.mean(spreads[1])
        print(f"{args.arch}, {len(paths)} images of 512x512, {ORDERS} orders each")
        for k, values in spreads.items():
            print(f"--tta {k}: order spread (sd of P(fake)) {np.mean(values):.4f}, ratio to one order "
                  f"{np.mean(values) / base:.2f} (1/sqrt(K) = {k ** -0.5:.2f})")

        timings = {}
        for k in (1, 4, 8):
            scanner = Scanner(detector, torch.device("cpu"), batch_size=32, workers=2, tta_orders=k)
            list(scanner.scan(paths[:4]))  # warm-up
            scanner.known.clear()  # score them again, not from the warm-up's memo
            start = time.perf_counter()
            list(scanner.scan(paths))
            timings[k] = time.perf_counter() - start
            print(f"--tta {k}: scan {len(paths) / timings[k]:6.1f} images/s, cost {timings[k] / timings[1]:.2f}x "
                  f"of --tta 1")


if __name__ == "__main__":
    main()
