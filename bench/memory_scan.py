"""Peak memory of a headless scan: (a) 500 vs 5,000 small generated images, (b) 8 images of
12000x12000 px vs 8 tiny ones, with the default memory budget and with the budget lifted.

Each scan runs in a fresh subprocess (`python -m dgs_desktop scan … --no-progress`) with a
test-tiny checkpoint at the default worker count; its peak RSS is read with
resource.getrusage(RUSAGE_CHILDREN) (ru_maxrss of the waited-for child, in KiB on Linux).
(a) Results stream to the CSV and decoded images are dropped after patch selection, so the
ratio should stay near 1. (b) The large images are compressible PNGs (~1 MB on disk,
432 MB of pixels each); the figure that matters is the peak above the tiny-image baseline
(target: under 2.5 GB).

    python bench/memory_scan.py [--small 500] [--large 5000] [--size 64] [--big 8] [--skip-count]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # shared image generators
import numpy as np
from gui_helpers import make_images  # noqa: E402
from PIL import Image


def make_checkpoint(path: Path) -> None:
    from dgs_desktop.detector.demo import save_demo_checkpoint

    save_demo_checkpoint(path, seed=None)


def make_big_images(folder: Path, count: int, side: int) -> None:
    """`count` different compressible side x side RGB PNGs (gradients with a per-image step)."""
    folder.mkdir(parents=True)
    rows = np.arange(side, dtype=np.uint32)[:, None]
    cols = np.arange(side, dtype=np.uint32)[None, :]
    for i in range(count):
        plane = ((rows * (7 + i) + cols * (3 + i)) % 251).astype(np.uint8)
        rgb = np.stack([plane, plane[::-1], plane[:, ::-1]], axis=2)
        Image.fromarray(rgb).save(folder / f"big{i:02d}.png", compress_level=6)
        del plane, rgb


def peak_rss_of_scan(folder: Path, checkpoint: Path, out: Path, *extra: str) -> tuple[float, float, int]:
    """Runs one scan in a fresh process; returns (peak RSS MiB, seconds, rows)."""
    command = [sys.executable, "-c",
               "import resource, sys, subprocess;"
               "rc = subprocess.call(sys.argv[1:]);"
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)",
               sys.executable, "-m", "dgs_desktop", "scan", str(folder), "--checkpoint", str(checkpoint),
               "--csv", str(out), "--no-progress", *extra]
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
    parser.add_argument("--big", type=int, default=8, help="number of 12000x12000 images (0: skip)")
    parser.add_argument("--big-side", type=int, default=12000)
    parser.add_argument("--skip-count", action="store_true", help="skip the 500 vs 5,000 comparison")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dgs-membench-") as tmp:
        tmp = Path(tmp)
        make_checkpoint(tmp / "ckpt")
        if args.big:
            big_images(tmp, args)
        if args.skip_count:
            return
        results = {}
        for count in (args.small, args.large):
            folder = tmp / f"images-{count}"
            make_images(folder, count, size=(args.size, args.size), seed=count)
            rss, seconds, rows = peak_rss_of_scan(folder, tmp / "ckpt", tmp / f"scan-{count}.csv")
            assert rows == count, (rows, count)
            results[count] = rss
            print(f"{count:>6} images ({args.size}x{args.size} PNG): peak RSS {rss:7.1f} MiB, "
                  f"{seconds:5.1f} s wall (incl. start-up), {rows} rows")
        ratio = results[args.large] / results[args.small]
        print(f"peak RSS ratio {args.large}/{args.small}: {ratio:.3f} (target: near 1)")


def big_images(tmp: Path, args) -> None:
    tiny, big = tmp / "tiny", tmp / "big"
    make_images(tiny, args.big, size=(args.size, args.size), seed=args.big)
    make_big_images(big, args.big, args.big_side)
    baseline, _, _ = peak_rss_of_scan(tiny, tmp / "ckpt", tmp / "tiny.csv")
    print(f"{args.big} tiny images: peak RSS {baseline:7.1f} MiB (baseline: libraries + model)")
    for label, extra in (("default --memory-budget", ()), ("budget lifted (--memory-budget 1000000)",
                                                           ("--memory-budget", "1000000"))):
        rss, seconds, rows = peak_rss_of_scan(big, tmp / "ckpt", tmp / "big.csv", *extra)
        assert rows == args.big, (rows, args.big)
        above = rss - baseline
        print(f"{args.big} x {args.big_side}^2 PNG, {label}: peak RSS {rss:7.1f} MiB, {above:7.1f} MiB "
              f"({above * 2**20 / 1e9:.2f} GB) above baseline, {seconds:5.1f} s "
              f"(target < 2.5 GB above baseline: {'met' if above * 2**20 < 2.5e9 else 'MISSED'})")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
