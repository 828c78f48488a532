"""A torchrun scan on this machine's GPUs: 2 ranks (sharing the GPU when there is only one),
test-tiny, 64 JPEGs. Prints the rows per rank and whether the CSV matches a one-process scan.

Run: python bench/gpu_dist_smoke.py
"""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # shared image generators
from imagegen import write_jpegs  # noqa: E402


def rows(path: Path) -> dict[str, dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["path"]: row for row in csv.DictReader(handle)}


def main() -> None:
    from dgs_desktop.detector.demo import save_demo_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_jpegs(tmp / "images", 64, size=512)
        checkpoint = save_demo_checkpoint(tmp / "ckpt", seed=None)
        scan = ["-m", "dgs_desktop", "scan", str(tmp / "images"), "--checkpoint", str(checkpoint), "--no-progress"]
        subprocess.run([sys.executable, *scan, "--csv", str(tmp / "one.csv")], check=True)
        subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *scan,
                        "--csv", str(tmp / "dist.csv")], check=True)
        one, dist = rows(tmp / "one.csv"), rows(tmp / "dist.csv")
        same = sum({**dist[p], "device": ""} == {**one[p], "device": ""} for p in one if p in dist)
        print(f"torchrun scan: {len(dist)} rows for {len(one)} files; per rank "
              f"{dict(Counter(' '.join(r['device'].split()[-3:-1]) for r in dist.values()))}; "
              f"{same}/{len(one)} rows identical to the one-process scan apart from `device`")


if __name__ == "__main__":
    main()
