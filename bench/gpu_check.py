"""CUDA check for the scan: ViT-L-14 (random weights), host path vs device path.

Prints, in one run: model-only images/s per batch size in bf16 (and fp32 at the best one);
end-to-end images/s on 1 MP JPEGs for the host path (worker threads decode and select
patches) and the device path (nvJPEG + batched selection on the GPU) in bf16 and in the
default IEEE fp32, each as a ratio to model-only of the same precision (target >= 0.8), with
CPU cores used (CPU seconds per wall second) and peak GPU memory; how often the GPU's patch
choice equals the CPU's; and |p_cpu_fp32 - p_gpu| for both precisions on the same mosaics.
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
    parser.add_argument("--batch-sizes", default="32,64,128,256")
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()

    from dgs_desktop.detector.device import autocast_for, describe_device, resolve_device
    from dgs_desktop.detector.model import build_detector
    from dgs_desktop.detector.patches import mosaics_to_tensor, select_patches
    from dgs_desktop.scan.decode import decode_image
    from dgs_desktop.scan.device_select import select_batch
    from dgs_desktop.scan.engine import Scanner

    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    workers = args.workers or min(16, os.cpu_count() or 1)
    torch.manual_seed(0)
    detector = build_detector(args.arch, None)
    with torch.no_grad():  # non-trivial LoRA and head so the parity check means something
        for name, param in detector.named_parameters():
            if "lora_B" in name or name.startswith("head."):
                param.normal_(0, 0.02)
    detector = detector.to(device).eval()
    print(f"device {describe_device(device)}, arch {args.arch}, torch {torch.__version__}, "
          f"{os.cpu_count()} CPU cores, {workers} prepare threads", flush=True)

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    def model_rate(batch_size: int, precision: str) -> float:
        batch = torch.randn(batch_size, 3, 224, 224, device=device)
        with torch.inference_mode(), autocast_for(device, precision):
            for _ in range(3):
                detector(batch)
            sync()
            steps, start = max(3, 1024 // batch_size), time.perf_counter()
            for _ in range(steps):
                detector(batch)
            sync()
        return steps * batch_size / (time.perf_counter() - start)

    rates = {}
    for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
        rates[batch_size] = model_rate(batch_size, "bf16")
        print(f"model only, bf16, batch {batch_size:4d}   : {rates[batch_size]:8.1f} img/s", flush=True)
    best = max(rates, key=rates.get)
    model_only = {"bf16": rates[best], "fp32": model_rate(best, "fp32")}
    print(f"model only, fp32 (IEEE), batch {best:4d}: {model_only['fp32']:8.1f} img/s", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_jpegs(Path(tmp), args.images)
        results = {}
        for precision in ("bf16", "fp32"):
            for select_on in ("host", "device"):
                scanner = Scanner(detector, device, batch_size=best, workers=workers, select_on=select_on,
                                  precision=precision)
                list(scanner.scan(paths[: best * 2]))  # warm-up
                scanner.known.clear()  # score them again, not from the warm-up's memo
                if cuda:
                    torch.cuda.reset_peak_memory_stats(device)
                wall, cpu = time.perf_counter(), time.process_time()
                results[precision, select_on] = list(scanner.scan(paths, keep_selection=True))
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                rate = len(paths) / wall
                peak = f"  peak GPU {torch.cuda.max_memory_allocated(device) / 2**20:6.0f} MiB" if cuda else ""
                errors = sum(not r.ok for r in results[precision, select_on])
                print(f"end to end, {precision}, {select_on:6s} path: {rate:8.1f} img/s  ratio to model-only "
                      f"{rate / model_only[precision]:5.2f}  CPU cores used {cpu / wall:5.1f}{peak}  "
                      f"(decoder {scanner.jpeg_decoder}, {errors} errors)", flush=True)

        sample = paths[:64]
        images = [decode_image(p).image for p in sample]
        _, on_device = select_batch(images, device)
        same = sum(a.boxes == select_patches(image).boxes for a, image in zip(on_device, images))
        print(f"device vs host patch choice: {same}/{len(sample)} images identical (same decoded pixels)")
        for precision in ("bf16", "fp32"):
            diffs = [abs(a.fake_probability - b.fake_probability)
                     for a, b in zip(results[precision, "host"], results[precision, "device"]) if a.ok and b.ok]
            print(f"|p_host - p_device| max, {precision}: {max(diffs):.6f} over {len(diffs)} files "
                  f"(decoder bits differ: nvJPEG vs libjpeg)")

        host = results["bf16", "host"][:16]
        mosaics = [r.selection.mosaic for r in host]
        scored = {p: [r.fake_probability for r in results[p, "host"][:16]] for p in ("bf16", "fp32")}
        with torch.inference_mode():
            reference = torch.sigmoid(detector.float().cpu()(mosaics_to_tensor(mosaics))).tolist()
        for precision, values in scored.items():
            diff = max(abs(a - b) for a, b in zip(values, reference))
            print(f"|p_cpu_fp32 - p_{device.type}_{precision}| max : {diff:.2e} over {len(mosaics)} images")


if __name__ == "__main__":
    main()
