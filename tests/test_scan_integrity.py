"""No silent wrong answer and every name accounted for: non-finite scores, invalid EXIF
orientations, oversized PNG metadata, symbolic and hard links, the decode memory budget."""

from __future__ import annotations

import io
import os
import struct
import threading
import time
import zlib

import imagegen
import numpy as np
import pytest
import torch
from PIL import Image

from dgs_desktop.cli import main
from dgs_desktop.scan.csvio import COLUMNS, RunInfo, csv_text
from dgs_desktop.scan.decode import decode_bytes, strip_png_chunks
from dgs_desktop.scan.discover import expand_paths
from dgs_desktop.scan.engine import Scanner
from dgs_desktop.scan.memory import MemoryBudget, decoded_bytes_estimate
from dgs_desktop.verdict import NON_FINITE_SCORE

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def detector(tiny_checkpoint):
    from dgs_desktop.detector.scorer import load_scorer

    return load_scorer(tiny_checkpoint, "cpu")


# ------------------------------------------------------------------------ non-finite scores
class Logits(torch.nn.Module):
    """Returns fixed logits per row, whatever the images."""

    def __init__(self, values):
        super().__init__()
        self.values = values

    def forward(self, images):
        return torch.tensor(self.values[: images.shape[0]] + [0.0] * (images.shape[0] - len(self.values)))


def test_non_finite_logits_are_error_rows_never_a_verdict(tmp_path):
    paths = imagegen.good_images(4, tmp_path / "nan", size=256)  # 64 whole patches: a two-way verdict
    scanner = Scanner(Logits([float("nan"), float("inf"), float("-inf"), 0.0]), CPU, batch_size=4, workers=1)
    results = list(scanner.scan(paths))
    for result in results[:3]:
        assert result.status == "error" and result.error == NON_FINITE_SCORE
        assert result.fake_probability is None and result.verdict(0.5) == ""
    assert results[3].ok and results[3].fake_probability == 0.5
    rows = [dict(zip(COLUMNS, line.split(","))) for line in csv_text(results, RunInfo("c", "0" * 64, "cpu", 0.5))
            .splitlines()[1:]]
    assert [r["status"] for r in rows] == ["error"] * 3 + ["ok"]
    assert [r["verdict"] for r in rows] == ["", "", "", "real"]


def test_overflowing_head_weights_give_error_rows(detector, tmp_path):
    """Finite weights that overflow (a head of ±3e38) give inf/NaN logits."""
    import copy

    broken = copy.deepcopy(detector)
    with torch.no_grad():
        broken.head.weight.copy_(torch.where(torch.arange(broken.head.weight.numel()) % 2 == 0, 3e38, -3e38)
                                 .reshape(broken.head.weight.shape))
    results = list(Scanner(broken, CPU, workers=1).scan(imagegen.good_images(3, tmp_path / "overflow")))
    assert [r.error for r in results] == [NON_FINITE_SCORE] * 3
    assert all(r.verdict(0.5) == "" for r in results)


# ----------------------------------------------------------------------------- decoding
def test_an_invalid_exif_orientation_is_ignored_and_said_so():
    image = imagegen.noise_rgb(90, 60, seed=5)
    decoded = decode_bytes(imagegen.jpeg_with_orientation(image, 9))
    assert decoded.notes == ["invalid EXIF orientation 9 ignored"]
    assert (decoded.width, decoded.height) == (90, 60)
    assert decode_bytes(imagegen.jpeg_with_orientation(image, 6)).notes == ["EXIF orientation 6 applied"]


def with_huge_icc_profile(png: bytes) -> bytes:
    """An iCCP chunk whose profile inflates to 32 MB (over Pillow's 1 MB limit), after IHDR."""
    payload = b"evil profile\x00\x00" + zlib.compress(b"\x00" * (32 << 20), 9)
    chunk = struct.pack(">I", len(payload)) + b"iCCP" + payload + struct.pack(">I", zlib.crc32(b"iCCP" + payload))
    return png[:33] + chunk + png[33:]


def test_a_huge_icc_profile_cannot_dodge_a_verdict(detector, tmp_path):
    plain = imagegen.encode(imagegen.noise_rgb(96, 80, seed=8), "PNG")
    evil = with_huge_icc_profile(plain)
    with pytest.raises(ValueError):  # what Pillow does with it
        Image.open(io.BytesIO(evil)).load()
    stripped, dropped = strip_png_chunks(evil)
    assert stripped == plain and dropped == ["iCCP"]
    (tmp_path / "evil.png").write_bytes(evil)
    (tmp_path / "plain.png").write_bytes(plain)
    evil_result, plain_result = Scanner(detector, CPU, workers=1).scan([tmp_path / "evil.png", tmp_path / "plain.png"])
    assert evil_result.ok, evil_result.error
    assert any("iCCP" in note and "without it" in note for note in evil_result.notes)
    assert evil_result.fake_probability == plain_result.fake_probability  # the same pixels
    assert evil_result.sha256 != plain_result.sha256  # of the bytes on disk


# -------------------------------------------------------------------------------- links
@pytest.fixture
def linked(tmp_path):
    outside = tmp_path / "outside"
    imagegen.good_images(2, outside)
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0\n")
    case = tmp_path / "case"
    imagegen.good_images(2, case)
    os.symlink(secret, case / "shadow-link")
    os.symlink(outside, case / "outside-folder")
    os.symlink("img00000.png", case / "inside-link.png")
    os.link(case / "img00001.png", case / "zz-hardlink.png")
    return case, outside, secret


def test_links_out_of_the_roots_are_not_followed_and_get_a_row(linked, detector):
    case, outside, secret = linked
    results = {os.path.basename(r.path): r for r in Scanner(detector, CPU, workers=1).scan(expand_paths([case]))}
    assert sorted(results) == ["img00000.png", "img00001.png", "inside-link.png", "outside-folder", "shadow-link",
                               "zz-hardlink.png"]
    for name, target in (("shadow-link", secret), ("outside-folder", outside)):
        row = results[name]
        assert row.status == "error" and row.sha256 == ""  # not even read
        assert "outside the scanned folders" in row.error and str(target) in row.error and "--follow-links" in row.error
    # every name of a file has its own row, the later ones say which file they are
    assert results["inside-link.png"].ok and f"same file as {case / 'img00000.png'}" in results["inside-link.png"].notes
    hard = results["zz-hardlink.png"]
    assert hard.ok and f"same file as {case / 'img00001.png'}" in hard.notes
    assert hard.fake_probability == results["img00001.png"].fake_probability
    assert hard.sha256 == results["img00001.png"].sha256


def test_follow_links_reads_them(linked, tiny_checkpoint, tmp_path):
    case, outside, _ = linked
    out = tmp_path / "followed.csv"
    assert main(["scan", str(case), "--checkpoint", str(tiny_checkpoint.directory), "--csv", str(out),
                 "--no-progress", "--follow-links"]) == 0
    import csv

    with open(out, newline="", encoding="utf-8") as handle:
        rows = {os.path.relpath(r["path"], case): r for r in csv.DictReader(handle)}
    assert rows["shadow-link"]["status"] == "error" and "not an image" in rows["shadow-link"]["error"]
    assert len(rows["shadow-link"]["sha256"]) == 64  # followed and read
    assert rows["outside-folder/img00000.png"]["status"] == "ok"


def test_a_given_path_that_is_a_link_is_followed(linked, detector):
    case, outside, _ = linked
    (result,) = Scanner(detector, CPU, workers=1).scan(expand_paths([case / "outside-folder" / "img00000.png"]))
    assert result.ok  # the user named it


# ------------------------------------------------------------------------- memory budget
def test_the_budget_never_holds_more_than_its_limit_except_one_image_alone():
    budget = MemoryBudget(100)
    held_at_once = []
    lock = threading.Lock()
    current = [0]

    def work(size):
        with budget.claim() as claim:
            claim.reserve(size)
            with lock:
                current[0] += size
                held_at_once.append(current[0])
            time.sleep(0.002)
            with lock:
                current[0] -= size

    sizes = [30, 60, 45, 10, 90, 250, 20, 70] * 4
    threads = [threading.Thread(target=work, args=(size,)) for size in sizes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert budget.held == 0 and len(held_at_once) == len(sizes)
    assert all(total <= 100 or total == 250 for total in held_at_once)  # 250 > limit: it ran alone
    assert budget.peak == max(held_at_once)


def test_the_scan_decodes_within_its_budget_and_scores_the_same(detector, tmp_path):
    paths = imagegen.good_images(12, tmp_path / "budget", size=200)
    each = decoded_bytes_estimate(200, 200, "RGB")
    free = list(Scanner(detector, CPU, workers=4).scan(paths))
    tight = Scanner(detector, CPU, workers=4, memory_budget=int(each * 2.5))
    budgeted = list(tight.scan(paths))
    assert tight.budget.peak <= each * 2 and tight.budget.held == 0
    assert [r.fake_probability for r in budgeted] == [r.fake_probability for r in free]


def test_patch_entropies_in_bands_equal_one_pass():
    """Large images are processed in bands of patch rows (no full-size gray copy or FFT
    buffer); each patch's entropy is the same to float32 precision."""
    import dgs_desktop.detector.patches as patches

    image = Image.fromarray(np.random.default_rng(2).integers(0, 256, (640, 1024, 3), dtype=np.uint8))
    whole = patches.patch_entropies(image)  # 640 patches: one band
    saved = patches._BAND_PATCHES
    try:
        patches._BAND_PATCHES = 100  # bands of 3 patch rows
        banded = patches.patch_entropies(image)
    finally:
        patches._BAND_PATCHES = saved
    assert banded.shape == whole.shape == (20, 32)
    assert np.allclose(banded, whole, rtol=0, atol=1e-5)
    assert saved < (12000 // 32) ** 2  # a 12000x12000 image is split into bands


def test_the_device_path_applies_the_same_link_rules_and_budget(linked, detector, tmp_path, monkeypatch):
    """select_on="device" (the CUDA default, runnable on the CPU): refusals and same-file notes as
    on the host path; images over DEVICE_HOLD_MAX_PIXELS are selected in their worker within the
    budget, and a batch mixing both kinds scores as the host path does."""
    import dgs_desktop.scan.engine as engine

    case, _, _ = linked
    host = {r.path: r for r in Scanner(detector, CPU, workers=2).scan(expand_paths([case]))}
    monkeypatch.setattr(engine, "DEVICE_HOLD_MAX_PIXELS", 63 * 64)  # 64x64 images go to the worker
    (case / "small.png").write_bytes(imagegen.encode(imagegen.noise_rgb(40, 40, seed=3), "PNG"))
    scanner = Scanner(detector, CPU, workers=2, select_on="device", jpeg_decoder="pillow")
    device = {r.path: r for r in scanner.scan(expand_paths([case]))}
    assert set(device) == set(host) | {str(case / "small.png")}
    for path, result in host.items():
        assert (device[path].status, device[path].error) == (result.status, result.error), path
        assert device[path].fake_probability == result.fake_probability, path
        assert [n for n in device[path].notes if "same file" in n] == [n for n in result.notes if "same file" in n]
    assert device[str(case / "small.png")].ok
    assert scanner.budget.peak > 0 and scanner.budget.held == 0
