"""What the CPU forward batch costs: one image alone, and a folder, at forward sizes 1 and 8.

Every forward pass has exactly `batch_size` rows (a short batch is padded), so that an
image's score never depends on what it was batched with. On the CPU the default was 8: a lone
image then costs eight forwards. This measures, in one run with a real-size architecture
(random weights, the scan's own `load_scorer` and `ModelRunner`), per forward size
- the time for one image alone,
- the time per image for a folder of `--images` images,
and prints them as ratios to forward size 1, with the largest score difference between the
two sizes (the last bits a change of size moves).

    PYTHONPATH=$PWD .venv/bin/python bench/cpu_batch.py [--arch ViT-L-14] [--images 16]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def load(arch: str, folder: Path):
    from dgs_desktop.detector.checkpoint import save_checkpoint
    from dgs_desktop.detector.manifest import read_checkpoint
    from dgs_desktop.detector.model import build_detector
    from dgs_desktop.detector.scorer import load_scorer

    save_checkpoint(folder, build_detector(arch, None), architecture=arch, base_weights="random-init",
                    bundle_base=True)
    return load_scorer(read_checkpoint(folder), "cpu")


def timed_scores(runner, mosaics: list[np.ndarray]) -> tuple[float, list[float]]:
    start = time.perf_counter()
    scores = runner.score(mosaics)
    return time.perf_counter() - start, scores


def main() -> None:
    from dgs_desktop.scan.engine import ModelRunner

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="ViT-L-14")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--sizes", default="1,8")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    rng = np.random.default_rng(0)
    mosaics = [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(args.images)]
    with tempfile.TemporaryDirectory() as tmp:
        detector = load(args.arch, Path(tmp) / "ckpt")
    print(f"{args.arch}, CPU, {torch.get_num_threads()} threads, {args.images} images")
    rows = {}
    for size in sizes:
        runner = ModelRunner(detector, torch.device("cpu"), batch_size=size)
        runner.score(mosaics[:1])  # warm-up: first-call allocations out of the timing
        alone, _ = timed_scores(runner, mosaics[:1])
        folder, scores = timed_scores(runner, mosaics)
        rows[size] = (alone, folder / args.images, scores)
    base_alone, base_each, base_scores = rows[sizes[0]]
    print(f"{'forward size':>12} {'one image':>10} {'ratio':>6} {'per image in folder':>20} {'ratio':>6}"
          f" {'max |dp| vs size ' + str(sizes[0]):>20}")
    for size, (alone, each, scores) in rows.items():
        diff = max(abs(a - b) for a, b in zip(scores, base_scores))
        print(f"{size:>12} {alone:>9.2f}s {alone / base_alone:>6.2f} {each:>19.2f}s {each / base_each:>6.2f}"
              f" {diff:>20.2e}")


if __name__ == "__main__":
    main()
