"""CUDA check for the scan: ViT-L-14 (random weights) in bf16, host path vs device path.

Prints model-only images/s, end-to-end images/s on 1 MP JPEGs with the host path (worker
threads select patches) and the device path (nvJPEG + batched selection on the GPU), the
ratio of each to model-only (target on an H100 with 16 cores: >= 0.8 for the device path),
CPU cores used (CPU seconds per wall second), peak GPU memory, how often the GPU's patch
choice equals the CPU's, and the largest |p_cpu_fp32 - p_gpu_bf16| on a few images.
Smoke-test anywhere: python bench/gpu_check.py --arch test-tiny --device cpu --images 16
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # shared image generators
from imagegen import write_jpegs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="ViT-L-14")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()

    from dgs_desktop.detector.device import autocast_for, describe_device, resolve_device, resolve_precision
    from dgs_desktop.detector.model import build_detector
    from dgs_desktop.detector.patches import mosaics_to_tensor, select_patches
    from dgs_desktop.scan.decode import decode_image
    from dgs_desktop.scan.device_select import select_batch
    from dgs_desktop.scan.engine import Scanner

    device = resolve_device(args.device)
    workers = args.workers or min(16, os.cpu_count() or 1)
    torch.manual_seed(0)
    detector = build_detector(args.arch, None)
    with torch.no_grad():  # non-trivial LoRA and head so the parity check means something
        for name, param in detector.named_parameters():
            if "lora_B" in name or name.startswith("head."):
                param.normal_(0, 0.02)
    detector = detector.to(device).eval()
    precision = resolve_precision(device, "auto")
    print(f"device {describe_device(device)}, arch {args.arch}, batch {args.batch_size}, {precision}, "
          f"{os.cpu_count()} CPU cores, {workers} prepare threads")

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    batch = torch.randn(args.batch_size, 3, 224, 224, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with torch.inference_mode(), autocast_for(device, precision):
        for _ in range(3):
            detector(batch)
        sync()
        steps = 10
        start = time.perf_counter()
        for _ in range(steps):
            detector(batch)
        sync()
    model_rate = steps * args.batch_size / (time.perf_counter() - start)
    print(f"model only                 : {model_rate:8.1f} img/s")

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_jpegs(Path(tmp), args.images)
        results = {}
        for select_on in ("host", "device"):
            scanner = Scanner(detector, device, batch_size=args.batch_size, workers=workers, select_on=select_on)
            list(scanner.scan(paths[: args.batch_size * 2]))  # warm-up
            wall, cpu = time.perf_counter(), time.process_time()
            results[select_on] = list(scanner.scan(paths, keep_selection=True))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            rate = len(paths) / wall
            print(f"end to end, {select_on:6s} path   : {rate:8.1f} img/s  ratio to model-only "
                  f"{rate / model_rate:5.2f}  CPU cores used {cpu / wall:5.1f}  (decoder {scanner.jpeg_decoder})")
        if device.type == "cuda":
            print(f"peak GPU memory            : {torch.cuda.max_memory_allocated(device) / 2**20:8.0f} MiB")

        sample = paths[:64]
        images = [decode_image(p).image for p in sample]
        _, on_device = select_batch(images, device)
        same = sum(a.boxes == select_patches(image).boxes for a, image in zip(on_device, images))
        print(f"device vs host patch choice: {same}/{len(sample)} images identical (same decoded pixels)")
        diffs = [abs(a.fake_probability - b.fake_probability)
                 for a, b in zip(results["host"], results["device"]) if a.ok and b.ok]
        print(f"|p_host - p_device| max    : {max(diffs):.6f} (decoder and FFT bits differ on CUDA)")

        mosaics = [r.selection.mosaic for r in results["host"][:8]]
        with torch.inference_mode():
            scored = [r.fake_probability for r in results["host"][:8]]
            cpu_detector = detector.float().cpu()
            reference = torch.sigmoid(cpu_detector(mosaics_to_tensor(mosaics))).tolist()
        diff = max(abs(a - b) for a, b in zip(scored, reference))
        print(f"|p_cpu_fp32 - p_{device.type}_{precision}| max : {diff:.5f} over {len(mosaics)} images")


if __name__ == "__main__":
    main()
