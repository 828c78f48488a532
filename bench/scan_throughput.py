"""Scan throughput on ~1 MP JPEGs, measured against Pillow decoding in the same run.

Prints:
  (a) single-core Pillow decode rate (read + decode + RGB), images/s
  (b) steady-state `dgs-desktop scan` rate with the test-tiny model (two sizes, start-up
      cancels out), images/s, and the ratio (b)/(a)           target >= 1.0 on 2 cores
  (c) patch-selection time per image / decode time per image  target <= 0.5
  (d) time to first result of an in-process scan (model already loaded)

Run: python bench/scan_throughput.py [--small 40 --large 200]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _images import write_jpegs  # noqa: E402


def timed_scan(paths_root: Path, checkpoint: Path, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dgs_desktop", "scan", str(paths_root), "--checkpoint", str(checkpoint),
                    "--csv", str(out), "--no-progress"], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=40)
    parser.add_argument("--large", type=int, default=200)
    args = parser.parse_args()

    import torch

    from dgs_desktop.detector.checkpoint import load_detector, read_checkpoint, save_checkpoint
    from dgs_desktop.detector.model import build_detector
    from dgs_desktop.detector.patches import select_patches
    from dgs_desktop.scan.decode import decode_image
    from dgs_desktop.scan.engine import Scanner

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = write_jpegs(tmp / "large", args.large)
        (tmp / "small").mkdir()
        for path in paths[: args.small]:
            (tmp / "small" / path.name).symlink_to(path)
        checkpoint = save_checkpoint(tmp / "ckpt", build_detector("test-tiny", None), architecture="test-tiny",
                                     base_weights="random-init")

        # (a) + (c): one thread, same files
        torch.set_num_threads(1)
        sample = paths[:60]
        for path in sample[:5]:
            decode_image(path)
        start = time.perf_counter()
        decoded = [decode_image(path).image for path in sample]
        decode_s = (time.perf_counter() - start) / len(sample)
        start = time.perf_counter()
        for image in decoded:
            select_patches(image)
        select_s = (time.perf_counter() - start) / len(sample)
        del decoded
        torch.set_num_threads(torch.get_num_threads())

        # (b): the real command, two sizes
        small_s = timed_scan(tmp / "small", checkpoint, tmp / "small.csv")
        large_s = timed_scan(tmp / "large", checkpoint, tmp / "large.csv")
        scan_rate = (args.large - args.small) / (large_s - small_s)

        # (d): in-process, model loaded
        import os
        torch.set_num_threads(os.cpu_count() or 1)
        scanner = Scanner(load_detector(read_checkpoint(checkpoint)), torch.device("cpu"))
        start = time.perf_counter()
        first = next(iter(scanner.scan(paths[:20])))
        first_s = time.perf_counter() - start
        assert first.ok, first.error

    decode_rate = 1.0 / decode_s
    print(f"image size                         : 1024x1024 JPEG q90, {os.cpu_count()} cores")
    print(f"(a) Pillow decode, 1 core          : {decode_rate:7.1f} img/s ({decode_s * 1e3:.2f} ms/img)")
    print(f"(b) dgs-desktop scan, steady state : {scan_rate:7.1f} img/s "
          f"({args.small} imgs {small_s:.1f} s, {args.large} imgs {large_s:.1f} s)")
    print(f"    ratio scan / decode            : {scan_rate / decode_rate:7.2f}   (target >= 1.0)")
    print(f"(c) patch selection / decode time  : {select_s / decode_s:7.2f}   "
          f"({select_s * 1e3:.2f} ms/img; target <= 0.5)")
    print(f"(d) time to first result           : {first_s * 1e3:7.1f} ms (model loaded)")


if __name__ == "__main__":
    main()
