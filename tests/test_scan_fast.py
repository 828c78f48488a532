"""Scan-side effects of patch selection, precision and distributed scans (CPU, test-tiny)."""

import csv

import numpy as np
from PIL import Image

from dgs_desktop.cli import main


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def scan(paths, checkpoint, out, *extra):
    code = main(["scan", *map(str, paths), "--checkpoint", str(checkpoint.directory), "--csv", str(out),
                 "--no-progress", *extra])
    assert code == 0
    return {row["path"].rsplit("/", 1)[-1]: row for row in read_rows(out)}


def test_small_images_are_flagged_in_the_csv_notes(tiny_checkpoint, tmp_path):
    rng = np.random.default_rng(3)
    for name, size in [("big.png", (256, 256)), ("biggan.png", (128, 128)), ("sliver.png", (20, 300))]:
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(tmp_path / name)
    rows = scan([tmp_path / n for n in ("big.png", "biggan.png", "sliver.png")], tiny_checkpoint,
                tmp_path / "out.csv")
    assert rows["big.png"]["notes"] == ""
    assert rows["biggan.png"]["notes"] == "fewer than 49 distinct patches (n=16): less reliable"
    assert rows["sliver.png"]["notes"] == ("fewer than 49 distinct patches (n=9): less reliable; "
                                           "padded to 32 px: less reliable")
    assert all(row["status"] == "ok" for row in rows.values())
