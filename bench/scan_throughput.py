"""Scan throughput on ~1 MP JPEGs, every figure measured against Pillow decoding in the same run.

Prints, with the test-tiny model on the CPU:
  (a) single-core Pillow decode (read + sha256 + decode + RGB), images/s and CPU s/image
  (b) patch selection alone, one core: host path (per image) and device path (batched torch)
  (c) in-process scan, host path and device path: images/s, CPU s/image, ratio to (a)
  (d) `dgs-desktop scan` command, steady state (two sizes, start-up cancels out): ratio to (a)
      target >= 1.0 on 2 cores
  (e) preparation (decode + selection) in 2 threads vs 2 processes: images/s
  (f) time to first result for one dropped image, model loaded (target < 0.5 s)

Run: python bench/scan_throughput.py [--small 40 --large 200]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # shared image generators
from imagegen import write_jpegs  # noqa: E402


def timed_scan(paths_root: Path, checkpoint: Path, out: Path, *extra: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dgs_desktop", "scan", str(paths_root), "--checkpoint", str(checkpoint),
                    "--csv", str(out), "--no-progress", *extra], check=True, capture_output=True)
    return time.perf_counter() - start


def measure(work, count: int) -> tuple[float, float]:
    """(images/s wall, CPU seconds per image) of `work()` over `count` images, all threads."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return count / (time.perf_counter() - wall), (time.process_time() - cpu) / count


def prepare_mosaic(path: Path):
    from dgs_desktop.scan.engine import prepare

    return prepare(path).selection.mosaic  # what a process pool would send back: 150 KB


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=40)
    parser.add_argument("--large", type=int, default=200)
    args = parser.parse_args()

    import torch

    from dgs_desktop.detector.checkpoint import load_detector
    from dgs_desktop.detector.demo import save_demo_checkpoint
    from dgs_desktop.detector.manifest import read_checkpoint
    from dgs_desktop.detector.patches import select_patches
    from dgs_desktop.scan.decode import decode_image
    from dgs_desktop.scan.device_select import select_batch
    from dgs_desktop.scan.engine import Scanner

    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = write_jpegs(tmp / "large", args.large)
        (tmp / "small").mkdir()
        for path in paths[: args.small]:
            (tmp / "small" / path.name).symlink_to(path)
        checkpoint = save_demo_checkpoint(tmp / "ckpt", seed=None)

        # (a) + (b): one thread, same files
        torch.set_num_threads(1)
        sample = paths[:60]
        for path in sample[:5]:
            decode_image(path)
        decoded = []
        decode_rate, decode_cpu = measure(lambda: decoded.extend(decode_image(p).image for p in sample), len(sample))
        host_sel_rate, _ = measure(lambda: [select_patches(image) for image in decoded], len(sample))
        device_sel_rate, _ = measure(lambda: [select_batch(decoded[i:i + 8]) for i in range(0, len(decoded), 8)],
                                     len(sample))
        decoded.clear()
        torch.set_num_threads(cores)

        # (c): in-process scans, model loaded, both paths
        detector = load_detector(read_checkpoint(checkpoint))
        in_process = {}
        for select_on in ("host", "device"):
            scanner = Scanner(detector, torch.device("cpu"), select_on=select_on)
            list(scanner.scan(paths[:16]))  # warm-up
            scanner.known.clear()  # score them again, not from the warm-up's memo
            in_process[select_on] = measure(lambda s=scanner: list(s.scan(paths)), len(paths))

        # (d): the real command, two sizes, host path (the CPU default) and device path
        command = {}
        for select_on in ("host", "device"):
            small_s = timed_scan(tmp / "small", checkpoint, tmp / "small.csv", "--select-on", select_on)
            large_s = timed_scan(tmp / "large", checkpoint, tmp / "large.csv", "--select-on", select_on)
            command[select_on] = (args.large - args.small) / (large_s - small_s)

        # (e): CPU preparation in threads vs processes (the GIL around Python-level work)
        torch.set_num_threads(1)
        prep = {}
        work = paths[:80]
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(prepare_mosaic, work[:4]))
            prep["2 threads"] = measure(lambda: list(pool.map(prepare_mosaic, work)), len(work))[0]
        with ProcessPoolExecutor(2) as pool:
            list(pool.map(prepare_mosaic, work[:4]))
            prep["2 processes"] = measure(lambda: list(pool.map(prepare_mosaic, work)), len(work))[0]
        torch.set_num_threads(cores)

        # (f): one dropped image, model loaded
        first = {}
        for select_on in ("host", "device"):
            scanner = Scanner(detector, torch.device("cpu"), select_on=select_on)
            list(scanner.scan(paths[-1:]))  # warm-up (first use of each kernel)
            start = time.perf_counter()
            (result,) = scanner.scan(paths[:1])
            first[select_on] = time.perf_counter() - start
            assert result.ok, result.error

    print(f"image size                           : 1024x1024 JPEG q90, {cores} cores, test-tiny, CPU")
    print(f"(a) Pillow decode, 1 core            : {decode_rate:7.1f} img/s  {decode_cpu * 1e3:6.2f} ms CPU/img")
    print(f"(b) selection, 1 core, host path     : {host_sel_rate:7.1f} img/s  ratio to (a) "
          f"{host_sel_rate / decode_rate:5.2f}")
    print(f"    selection, 1 core, device path   : {device_sel_rate:7.1f} img/s  ratio to (a) "
          f"{device_sel_rate / decode_rate:5.2f}")
    for select_on, (rate, cpu) in in_process.items():
        print(f"(c) in-process scan, {select_on:6s} path   : {rate:7.1f} img/s  {cpu * 1e3:6.2f} ms CPU/img  "
              f"ratio to (a) {rate / decode_rate:5.2f}  CPU ratio {cpu / decode_cpu:5.2f}")
    for select_on, rate in command.items():
        print(f"(d) dgs-desktop scan, {select_on:6s} path  : {rate:7.1f} img/s  ratio to (a) "
              f"{rate / decode_rate:5.2f}  (target >= 1.0)")
    for name, rate in prep.items():
        print(f"(e) prepare in {name:11s}          : {rate:7.1f} img/s  ratio to (a) {rate / decode_rate:5.2f}")
    for select_on, seconds in first.items():
        print(f"(f) first result, one image, {select_on:6s}: {seconds * 1e3:7.1f} ms (target < 500)")


if __name__ == "__main__":
    main()
