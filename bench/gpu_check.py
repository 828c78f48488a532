"""CUDA check for the scan path: ViT-L-14 (random weights) in bf16.

Prints model-only and end-to-end images/s, peak GPU memory, and the largest difference
between CPU-fp32 and GPU-bf16 probabilities on a few images (same weights).
Smoke-test anywhere: python bench/gpu_check.py --arch test-tiny --device cpu --images 16
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _images import write_jpegs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="ViT-L-14")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()

    from dgs_desktop.detector.device import autocast_for, describe_device, resolve_device
    from dgs_desktop.detector.model import build_detector
    from dgs_desktop.detector.patches import mosaics_to_tensor
    from dgs_desktop.scan.engine import Scanner

    device = resolve_device(args.device)
    torch.manual_seed(0)
    detector = build_detector(args.arch, None)
    with torch.no_grad():  # non-trivial LoRA and head so the parity check means something
        for name, param in detector.named_parameters():
            if "lora_B" in name or name.startswith("head."):
                param.normal_(0, 0.02)
    detector = detector.to(device).eval()
    print(f"device {describe_device(device)}, arch {args.arch}, batch {args.batch_size}")

    # model only
    batch = torch.randn(args.batch_size, 3, 224, 224, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with torch.inference_mode(), autocast_for(device):
        for _ in range(3):
            detector(batch)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        steps = 10
        start = time.perf_counter()
        for _ in range(steps):
            detector(batch)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    model_rate = steps * args.batch_size / (time.perf_counter() - start)
    print(f"model only        : {model_rate:8.1f} img/s")

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_jpegs(Path(tmp), args.images)
        scanner = Scanner(detector, device, batch_size=args.batch_size, workers=args.workers)
        list(scanner.scan(paths[: args.batch_size]))  # warm-up
        start = time.perf_counter()
        results = list(scanner.scan(paths, keep_selection=True))
        e2e_rate = len(results) / (time.perf_counter() - start)
        print(f"end to end (scan) : {e2e_rate:8.1f} img/s over {len(results)} 1 MP JPEGs "
              f"({scanner.workers} prepare threads)")
        if device.type == "cuda":
            print(f"peak GPU memory   : {torch.cuda.max_memory_allocated(device) / 2**20:8.0f} MiB")

        mosaics = [r.selection.mosaic for r in results[:8]]
        with torch.inference_mode():
            gpu = [r.fake_probability for r in results[:8]]
            cpu_detector = detector.float().cpu()
            cpu = torch.sigmoid(cpu_detector(mosaics_to_tensor(mosaics))).tolist()
        diff = max(abs(a - b) for a, b in zip(gpu, cpu))
        print(f"|p_cpu_fp32 - p_{device.type}| max : {diff:.5f} over {len(mosaics)} images")


if __name__ == "__main__":
    main()
