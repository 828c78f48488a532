"""Scan-side effects of patch selection, precision and distributed scans (CPU, test-tiny)."""

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from dgs_desktop.cli import main
from dgs_desktop.detector import device as dev
from dgs_desktop.record import record_from_csv, reliability_warning


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
    for row in rows.values():  # the window's warning says what the CSV notes say, from the structured fields
        assert reliability_warning(record_from_csv(row)) == row["notes"]


def test_native_bf16_is_read_from_cpu_flags(tmp_path):
    for flags, expected in [("fpu sse avx2 avx512f amx_tile amx_bf16", True), ("fpu avx512f avx512_bf16", True),
                            ("fpu sse avx2 avx512f avx512_vnni", False)]:
        cpuinfo = tmp_path / f"cpuinfo{len(flags)}"
        cpuinfo.write_text(f"processor\t: 0\nmodel name\t: X\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
        assert dev.cpu_has_native_bf16(str(cpuinfo)) is expected


def test_auto_precision_is_fp32_on_every_machine(monkeypatch):
    cpu = torch.device("cpu")
    for native in (True, False):  # a bf16 CPU and one without: the same precision, the same score
        monkeypatch.setattr(dev, "cpu_has_native_bf16", lambda native=native: native)
        assert dev.resolve_precision(cpu, "auto") == "fp32" and dev.precision_options(cpu)[0][0] == "auto"
        assert "fp32" in dev.precision_options(cpu)[0][1]
    assert dev.resolve_precision(cpu, "BF16") == "bf16"
    assert isinstance(dev.autocast_for(cpu, "bf16"), torch.autocast)
    with pytest.raises(dev.DeviceError, match="unknown precision"):
        dev.resolve_precision(cpu, "fp16")
    with pytest.raises(dev.DeviceError, match="not supported on mps"):
        dev.resolve_precision(torch.device("mps"), "bf16")


def test_fp32_on_cuda_turns_tf32_off_for_the_block_and_restores_it():
    # cuDNN convolutions default to TF32 on Ampere and later: not the fp32 the score claims.
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        with dev.autocast_for(torch.device("cuda"), "auto"):
            assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (False, False)
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (True, True)
        with dev.autocast_for(torch.device("cpu"), "fp32"):  # nothing to change on a CPU
            assert torch.backends.cudnn.allow_tf32 is True
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_precision_column_and_bit_identical_scores_per_precision(tiny_checkpoint, tmp_path):
    rng = np.random.default_rng(8)
    paths = []
    for index in range(5):
        paths.append(tmp_path / f"img{index}.png")
        Image.fromarray(rng.integers(0, 256, (int(rng.integers(64, 260)), 230, 3), dtype=np.uint8)).save(paths[-1])
    runs = {}
    for precision in ("fp32", "bf16"):
        alone = scan(paths[:1], tiny_checkpoint, tmp_path / f"{precision}_alone.csv", "--precision", precision,
                     "--batch-size", "4")
        together = scan(paths[::-1], tiny_checkpoint, tmp_path / f"{precision}_all.csv", "--precision", precision,
                        "--batch-size", "4")
        assert {row["precision"] for row in [*alone.values(), *together.values()]} == {precision}
        # same device type, precision and batch size: the same bits, alone or in company
        assert alone["img0.png"]["fake_probability"] == together["img0.png"]["fake_probability"]
        runs[precision] = {name: float(row["fake_probability"]) for name, row in together.items()}
    differences = [abs(runs["fp32"][name] - runs["bf16"][name]) for name in runs["fp32"]]
    assert max(differences) < 0.05 and max(differences) > 0  # bf16 really ran, and stays close
    auto = scan(paths[:1], tiny_checkpoint, tmp_path / "auto.csv", "--batch-size", "4")
    assert auto["img0.png"]["precision"] == "fp32" == dev.resolve_precision(torch.device("cpu"), "auto")
    # the default gives the fp32 score (same machine, same batch size: the same digits)
    assert auto["img0.png"]["fake_probability"] == f"{runs['fp32']['img0.png']:.8f}"


def test_window_rebuilds_small_image_mosaics_with_black_cells():
    pytest.importorskip("PySide6")
    from dgs_desktop.detector.patches import mosaic_from_boxes, select_patches

    for shape in [(20, 24, 3), (64, 96, 3), (150, 170, 3), (300, 300, 3)]:
        rgb = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
        selection = select_patches(rgb)
        assert np.array_equal(mosaic_from_boxes(rgb, selection.boxes), selection.mosaic), shape
