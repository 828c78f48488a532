"""The trainer and the scan end to end on one device, test-tiny (no downloads): train with
`--amp auto`, evaluate and scan on that device and on the CPU, and print how far apart the
two devices' default (fp32) scores are; then ask torchrun for more processes than there are
GPUs and print the first line of its error.

Run: python bench/gpu_trainer_smoke.py [--device cuda]      (CPU smoke: --device cpu)
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # shared image generators
from test_trainer_support import make_tree  # noqa: E402

TINY = ["--arch", "test-tiny", "--captioner", "test-tiny", "--batch-size", "8", "--workers", "2", "--no-progress"]


def run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=240)
    print(f"  [{time.perf_counter() - start:5.1f} s, rc {proc.returncode}] {' '.join(args[:4])} ...", flush=True)
    return proc


def scores(path: Path) -> dict[str, float]:
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["path"]: float(row["fake_probability"]) for row in csv.DictReader(handle)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    device = parser.parse_args().device
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train = make_tree(tmp / "train", per_class=16, seed=0)
        test = make_tree(tmp / "test", per_class=8, seed=5)
        ckpt = tmp / "ckpt"
        proc = run("-m", "trainer", "--data", str(train), "--out", str(ckpt), "--epochs", "2", "--probe-epochs", "1",
                   "--device", device, *TINY)
        if proc.returncode:
            print(proc.stderr[-3000:])
            return
        from dgs_desktop.detector.manifest import read_checkpoint

        provenance = read_checkpoint(ckpt).manifest["provenance"]
        print(f"trained on {device}: amp {provenance['hyperparameters']['amp']}, "
              f"final {provenance.get('final_metrics')}")
        for where in dict.fromkeys((device, "cpu")):
            proc = run("-m", "trainer", "evaluate", "--checkpoint", str(ckpt), "--data", str(test), "--no-progress",
                       "--device", where, "--csv", str(tmp / f"eval_{where}.csv"))
            mean = [line for line in proc.stdout.splitlines() if "Mean" in line]
            print(f"evaluate on {where}: {mean[:1] or proc.stderr[-1500:]}")
            proc = run("-m", "dgs_desktop", "scan", str(test), "--checkpoint", str(ckpt), "--device", where,
                       "--no-progress", "--csv", str(tmp / f"scan_{where}.csv"))
            if proc.returncode:
                print(proc.stderr[-1500:])
        if device != "cpu" and (tmp / f"scan_{device}.csv").exists() and (tmp / "scan_cpu.csv").exists():
            ours, cpu = scores(tmp / f"scan_{device}.csv"), scores(tmp / "scan_cpu.csv")
            diff = max(abs(ours[p] - cpu[p]) for p in cpu)
            print(f"scan fp32 |p_{device} - p_cpu| max: {diff:.2e} over {len(cpu)} files")
        if device.startswith("cuda"):
            proc = run("-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "trainer",
                       "--data", str(train), "--out", str(tmp / "ddp"), "--max-steps", "2", "--probe-epochs", "1",
                       "--device", device, *TINY)
            import torch

            lines = [line for line in proc.stderr.splitlines() if "GPU" in line or "Error" in line]
            print(f"torchrun 2 processes on {torch.cuda.device_count()} GPU(s): rc {proc.returncode}; "
                  f"{lines[:2]}")


if __name__ == "__main__":
    main()
