"""Time to the first score: `dgs-desktop scan` of ONE image with a real-size bundled checkpoint.

Builds a checkpoint of a real open_clip architecture with random weights and the backbone
bundled (ViT-B-32; `--full`: ViT-L-14, ~1.2 GB), then measures in fresh subprocesses each part
of the scan (heavy imports by `-X importtime`, the sha256 pass cold and warm, building the
network, loading the weights, the first forward) and the whole scan cold (empty verify cache)
and warm, each as a ratio to `python -c "import torch"` measured in the same run.
Goal (issue 20): warm scan of one image with ViT-B-32 <= 3x import torch.

    PYTHONPATH=$PWD .venv/bin/python bench/startup.py [--full] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PARTS = r"""
import json, sys, time
t0 = time.perf_counter()
import torch  # noqa
from dgs_desktop.detector.manifest import read_checkpoint
from dgs_desktop.detector.scorer import load_scorer
t1 = time.perf_counter()
checkpoint = read_checkpoint(sys.argv[1])
t2 = time.perf_counter()
marks = {}
detector = load_scorer(checkpoint, "cpu", on_stage=lambda name, f: marks.setdefault((name, f), time.perf_counter()))
t3 = time.perf_counter()
with torch.no_grad():
    detector(torch.zeros(1, 3, 224, 224))
t4 = time.perf_counter()
build = marks[("building the network", 1.0)] - t2
print(json.dumps({"imports": t1 - t0, "verify": t2 - t1, "build": build, "load": t3 - t2 - build,
                  "first forward": t4 - t3}))
"""


# what a scan imports: torch and the torch-only scoring path (no open_clip, peft, torchvision)
SCAN_IMPORTS = "import torch; import dgs_desktop.detector.scorer; import dgs_desktop.scan.engine"


def timed(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def make_checkpoint(arch: str, folder: Path) -> None:
    from dgs_desktop.detector.checkpoint import save_checkpoint
    from dgs_desktop.detector.model import build_detector

    save_checkpoint(folder, build_detector(arch, None), architecture=arch, base_weights="random-init",
                    bundle_base=True)


def import_summary(env: dict) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", SCAN_IMPORTS],
                          env=env, capture_output=True, text=True)
    top = {}
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip() in ("torch", "open_clip", "peft", "transformers", "torchvision",
                                                     "dgs_desktop.detector.scorer", "dgs_desktop.scan.engine"):
            top[parts[2].strip()] = int(parts[1]) / 1e6
    return top


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="ViT-L-14 instead of ViT-B-32")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    arch = "ViT-L-14" if args.full else "ViT-B-32"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, HF_HUB_OFFLINE="1", DGS_DESKTOP_CACHE=str(tmp / "cache"))
        start = time.perf_counter()
        make_checkpoint(arch, tmp / "ckpt")
        print(f"{arch} bundled checkpoint written in {time.perf_counter() - start:.1f} s")
        from PIL import Image

        Image.new("RGB", (400, 300), (120, 80, 40)).save(tmp / "one.png")
        time.sleep(3.5)  # older than the verify cache's racy window
        torch_s = min(timed([sys.executable, "-c", "import torch"], env) for _ in range(args.repeat))
        print(f"python -c 'import torch': {torch_s:.2f} s (best of {args.repeat}) = 1.00x")
        for name, seconds in import_summary(env).items():
            print(f"  import {name:13s} {seconds:5.2f} s  {seconds / torch_s:4.2f}x (cumulative, -X importtime)")
        scan = [sys.executable, "-m", "dgs_desktop", "scan", str(tmp / "one.png"), "-c", str(tmp / "ckpt"),
                "--csv", str(tmp / "out.csv"), "--no-progress", "--device", "cpu"]
        for label in ("cold", "warm"):
            if label == "cold":
                subprocess.run(["rm", "-rf", str(tmp / "cache")], check=True)
            parts = json.loads(subprocess.run([sys.executable, "-c", PARTS, str(tmp / "ckpt")], env=env, check=True,
                                              capture_output=True, text=True).stdout.splitlines()[-1])
            print(f"{label}: " + ", ".join(f"{k} {v:.2f} s ({v / torch_s:.2f}x)" for k, v in parts.items()))
        subprocess.run(["rm", "-rf", str(tmp / "cache")], check=True)
        cold = timed(scan, env)
        warm = min(timed(scan, env) for _ in range(args.repeat))
        print(f"dgs-desktop scan of one image, cold (empty verify cache): {cold:.2f} s = {cold / torch_s:.2f}x")
        print(f"dgs-desktop scan of one image, warm (best of {args.repeat}):        {warm:.2f} s = "
              f"{warm / torch_s:.2f}x  (goal <= 3x: {'met' if warm <= 3 * torch_s else 'NOT met'})")


if __name__ == "__main__":
    main()
