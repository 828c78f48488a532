"""Peak memory of a headless scan: 500 vs 5,000 small generated images.

Each scan runs in a fresh subprocess (`python -m dgs_desktop scan … --no-progress`) with a
test-tiny checkpoint; its peak RSS is read with resource.getrusage(RUSAGE_CHILDREN) (ru_maxrss
of the waited-for child, in KiB on Linux). Results stream to the CSV and decoded images are
dropped after patch selection, so the ratio should stay near 1.

    python bench/memory_scan.py [--small 500] [--large 5000] [--size 64]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_images(folder: Path, count: int, size: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(count)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"img{i:05d}.png")


def make_checkpoint(path: Path) -> None:
    from dgs_desktop.detector.checkpoint import save_checkpoint
    from dgs_desktop.detector.model import build_detector

    save_checkpoint(path, build_detector("test-tiny", None), architecture="test-tiny", base_weights="random-init")


def peak_rss_of_scan(folder: Path, checkpoint: Path, out: Path) -> tuple[float, float, int]:
    """Runs one scan in a fresh process; returns (peak RSS MiB, seconds, rows)."""
    command = [sys.executable, "-c",
               "import resource, sys, subprocess;"
               "rc = subprocess.call(sys.argv[1:]);"
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)",
               sys.executable, "-m", "dgs_desktop", "scan", str(folder), "--checkpoint", str(checkpoint),
               "--csv", str(out), "--no-progress"]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"scan failed:\n{proc.stderr}")
    rows = out.read_bytes().count(b"\n") - 1
    return int(proc.stdout.strip().splitlines()[-1]) / 1024, elapsed, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=500)
    parser.add_argument("--large", type=int, default=5000)
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dgs-membench-") as tmp:
        tmp = Path(tmp)
        make_checkpoint(tmp / "ckpt")
        results = {}
        for count in (args.small, args.large):
            folder = tmp / f"images-{count}"
            make_images(folder, count, args.size)
            rss, seconds, rows = peak_rss_of_scan(folder, tmp / "ckpt", tmp / f"scan-{count}.csv")
            assert rows == count, (rows, count)
            results[count] = rss
            print(f"{count:>6} images ({args.size}x{args.size} PNG): peak RSS {rss:7.1f} MiB, "
                  f"{seconds:5.1f} s wall (incl. start-up), {rows} rows")
        ratio = results[args.large] / results[args.small]
        print(f"peak RSS ratio {args.large}/{args.small}: {ratio:.3f} (target: near 1)")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
