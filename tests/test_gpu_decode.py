"""The device path of the scan on CPU: the same rows as the host path, and JPEGs decoded by
torchvision (the nvJPEG code path, run with its CPU decoder) behave as on the Pillow path for
EXIF orientation, grayscale, CMYK, the pixel limit and damaged files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dgs_desktop.detector.scorer import load_scorer
from dgs_desktop.scan.decode import decode_image
from dgs_desktop.scan.engine import Scanner
from dgs_desktop.scan.gpu_decode import PendingJpeg, apply_orientation, decode_jpegs, plan_decode

CPU = torch.device("cpu")


def photo(rng, height, width):
    y, x = np.mgrid[0:height, 0:width]
    base = 128 + 90 * np.sin(x / 9.0) * np.cos(y / 13.0)
    rgb = np.stack([base, np.roll(base, 7, 1), 255 - base], axis=2) + rng.normal(0, 12, (height, width, 3))
    return np.clip(rgb, 0, 255).astype(np.uint8)


def save_jpeg(path, rgb, orientation=1, mode="RGB", **options):
    image = Image.fromarray(rgb).convert(mode)
    if orientation != 1:
        exif = Image.Exif()
        exif[0x0112] = orientation
        options["exif"] = exif.tobytes()
    image.save(path, "JPEG", quality=90, **options)
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("device_path")
    rng = np.random.default_rng(9)
    for orientation in range(1, 9):
        save_jpeg(root / f"orient{orientation}.jpg", photo(rng, 200, 290), orientation)
    save_jpeg(root / "gray.jpg", photo(rng, 170, 230), mode="L")
    save_jpeg(root / "cmyk.jpg", photo(rng, 180, 240), mode="CMYK")
    save_jpeg(root / "progressive.jpg", photo(rng, 260, 250), progressive=True)
    save_jpeg(root / "small.jpg", photo(rng, 70, 90))
    save_jpeg(root / "sliver.jpg", photo(rng, 20, 500))
    Image.fromarray(photo(rng, 300, 200)).save(root / "photo.png")
    save_jpeg(root / "named.png", photo(rng, 120, 160))  # suffix note
    huge = save_jpeg(root / "huge.jpg", photo(rng, 400, 400))
    data = huge.read_bytes()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (root / "no_eoi.jpg").write_bytes(data[:-2])
    (root / "empty.jpg").write_bytes(b"")
    return root


def scan_folder(checkpoint, folder, **options):
    scanner = Scanner(load_scorer(checkpoint, "cpu"), CPU, batch_size=4, workers=2, max_pixels=150_000,
                      precision="fp32", **options)
    return {r.path.rsplit("/", 1)[-1]: r for r in scanner.scan(sorted(folder.iterdir()), keep_selection=True)}


def test_device_path_gives_the_host_paths_rows(tiny_checkpoint, folder):
    host = scan_folder(tiny_checkpoint, folder, select_on="host")
    device = scan_folder(tiny_checkpoint, folder, select_on="device")
    assert sorted(host) == sorted(device)
    for name, expected in host.items():
        got = device[name]
        assert (got.status, got.error, got.sha256, got.fake_probability, got.width, got.height, got.format,
                got.notes) == (expected.status, expected.error, expected.sha256, expected.fake_probability,
                               expected.width, expected.height, expected.format, expected.notes), name
        if expected.ok:
            assert got.selection.boxes == expected.selection.boxes
    assert host["huge.jpg"].status == "error" and "limit" in host["huge.jpg"].error
    assert "fewer than 49 distinct patches (n=4)" in " ".join(host["small.jpg"].notes)


def test_torchvision_jpeg_decoding_behaves_as_pillow(tiny_checkpoint, folder):
    pillow = scan_folder(tiny_checkpoint, folder, select_on="host")
    tv = scan_folder(tiny_checkpoint, folder, select_on="device", jpeg_decoder="torchvision")
    via_torchvision = {name for name, r in tv.items() if "decoded with torchvision" in r.notes}
    # CMYK, damaged, over-limit and non-JPEG files take the Pillow path
    assert via_torchvision == {f"orient{k}.jpg" for k in range(1, 9)} | {
        "gray.jpg", "progressive.jpg", "small.jpg", "sliver.jpg", "named.png"}
    for name, expected in pillow.items():
        got = tv[name]
        notes = [note for note in got.notes if note != "decoded with torchvision"]
        assert (got.status, got.error, got.sha256, got.width, got.height, got.format, notes) == (
            expected.status, expected.error, expected.sha256, expected.width, expected.height, expected.format,
            expected.notes), name
        # libjpeg-turbo on both sides: the very same pixels, so the very same score
        assert got.fake_probability == expected.fake_probability, name
    assert "EXIF orientation 6 applied" in tv["orient6.jpg"].notes and tv["orient6.jpg"].width == 200
    assert "does not match its JPEG content" in " ".join(tv["named.png"].notes)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillows_exif_transpose(tmp_path, orientation):
    rgb = photo(np.random.default_rng(orientation), 40, 70)
    path = save_jpeg(tmp_path / "x.jpg", rgb, orientation)
    pending = plan_decode(path)
    assert isinstance(pending, PendingJpeg) and pending.orientation == orientation
    (tensor,) = decode_jpegs([pending], CPU)
    expected = np.asarray(decode_image(path).image)
    assert np.array_equal(tensor.numpy(), expected)
    assert np.array_equal(apply_orientation(torch.from_numpy(np.asarray(Image.open(path).convert("RGB"))),
                                            orientation).numpy(), expected)


def test_pixel_limit_and_modes_are_decided_like_pillow(tmp_path):
    rng = np.random.default_rng(1)
    big = save_jpeg(tmp_path / "big.jpg", photo(rng, 100, 100))
    with pytest.raises(Exception, match="over the limit of 9,999"):
        plan_decode(big, max_pixels=9_999)
    assert isinstance(plan_decode(big, max_pixels=10_000), PendingJpeg)
    cmyk = plan_decode(save_jpeg(tmp_path / "c.jpg", photo(rng, 50, 50), mode="CMYK"))
    assert not isinstance(cmyk, PendingJpeg) and cmyk.mode == "CMYK"
    gray = plan_decode(save_jpeg(tmp_path / "g.jpg", photo(rng, 50, 50), mode="L"))
    (tensor,) = decode_jpegs([gray], CPU)
    assert np.array_equal(tensor.numpy(), np.asarray(decode_image(tmp_path / "g.jpg").image))


def test_a_file_the_device_decoder_rejects_falls_back_to_pillow(tmp_path):
    good = save_jpeg(tmp_path / "a.jpg", photo(np.random.default_rng(2), 64, 64))
    pending = plan_decode(good)
    broken = PendingJpeg(data=pending.data[:300] + pending.data[-2:], sha256="x", width=64, height=64,
                         mode="RGB", orientation=1)
    out = decode_jpegs([pending, broken], CPU)
    assert out[0] is not None and out[1] is None


@pytest.mark.parametrize("select_on", ["host", "device"])
def test_copies_take_the_first_files_score_on_both_paths(tiny_checkpoint, tmp_path, select_on, monkeypatch):
    """Identical bytes are scored once per scan, decided after each file's own read and hash:
    a copy in the same batch or a later one gets the first file's score (with --stability
    spread), equal to the score it would get alone, and the model sees each content once."""
    from dgs_desktop.scan import engine

    rng = np.random.default_rng(7)
    names = ["a.png", "b.png", "a-copy1.png", "c.png", "d.png", "e.png", "a-copy2.png", "b-copy.png"]
    originals = {name: photo(rng, 96 + 8 * i, 80) for i, name in enumerate(("a.png", "b.png", "c.png", "d.png",
                                                                             "e.png"))}
    for name, pixels in originals.items():
        Image.fromarray(pixels).save(tmp_path / name)
    for copy, source in (("a-copy1.png", "a.png"), ("a-copy2.png", "a.png"), ("b-copy.png", "b.png")):
        (tmp_path / copy).write_bytes((tmp_path / source).read_bytes())
    scored = []
    real_score = engine.ModelRunner.score
    monkeypatch.setattr(engine.ModelRunner, "score",
                        lambda self, mosaics: scored.extend(range(len(mosaics))) or real_score(self, mosaics))
    scanner = Scanner(load_scorer(tiny_checkpoint, "cpu"), CPU, batch_size=2, workers=2, precision="fp32",
                      select_on=select_on, stability_orders=2)
    rows = {r.path.rsplit("/", 1)[-1]: r for r in scanner.scan([tmp_path / n for n in names], keep_selection=True)}
    assert list(rows) == names and all(r.ok for r in rows.values())
    assert len(scored) == 5 * 3  # five contents, each in its own order and 2 others; no copy scored
    for copy, source in (("a-copy1.png", "a.png"), ("a-copy2.png", "a.png"), ("b-copy.png", "b.png")):
        got, first = rows[copy], rows[source]
        assert (got.fake_probability, got.stability_low, got.stability_high, got.stability_orders) == \
            (first.fake_probability, first.stability_low, first.stability_high, first.stability_orders)
        assert got.selection is not None and got.boxes == first.boxes  # its own evidence, from its own read
    alone = Scanner(load_scorer(tiny_checkpoint, "cpu"), CPU, batch_size=2, workers=1, precision="fp32",
                    select_on=select_on, stability_orders=2)
    (single,) = alone.scan([tmp_path / "a-copy2.png"])
    assert single.fake_probability == rows["a-copy2.png"].fake_probability


def test_a_later_scan_takes_the_score_this_scanner_gave_the_same_bytes(tiny_checkpoint, tmp_path, monkeypatch):
    """The window scans each drop on its own: a copy dropped later takes the score its bytes
    already got from this scanner (no forward pass, the same probability); a content whose
    scoring failed is scored again by the next scan, never handed the failure."""
    from dgs_desktop.scan import engine

    rng = np.random.default_rng(11)
    for name in ("a.png", "b.png"):
        Image.fromarray(photo(rng, 72, 64)).save(tmp_path / name)
    for copy, source in (("a-later.png", "a.png"), ("b-later.png", "b.png")):
        (tmp_path / copy).write_bytes((tmp_path / source).read_bytes())
    scored: list[int] = []
    fail = {"now": False}
    real_score = engine.ModelRunner.score

    def counting_score(self, mosaics):
        if fail["now"]:
            raise RuntimeError("device lost")
        scored.append(len(mosaics))
        return real_score(self, mosaics)

    monkeypatch.setattr(engine.ModelRunner, "score", counting_score)
    scanner = Scanner(load_scorer(tiny_checkpoint, "cpu"), CPU, batch_size=2, workers=1, precision="fp32")
    (first,) = scanner.scan([tmp_path / "a.png"])
    (later,) = scanner.scan([tmp_path / "a-later.png"])
    assert first.ok and later.ok and len(scored) == 1  # the later copy: no forward pass
    assert later.fake_probability == first.fake_probability and later.sha256 == first.sha256
    fail["now"] = True
    (failed,) = scanner.scan([tmp_path / "b.png"])
    assert not failed.ok and "device lost" in failed.error
    fail["now"] = False
    (retried,) = scanner.scan([tmp_path / "b-later.png"])
    assert retried.ok and len(scored) == 2  # scored again
    fresh = Scanner(load_scorer(tiny_checkpoint, "cpu"), CPU, batch_size=2, workers=1, precision="fp32")
    (alone,) = fresh.scan([tmp_path / "b.png"])
    assert alone.fake_probability == retried.fake_probability


def test_a_lone_image_on_the_cpu_costs_one_forward_row(tiny_checkpoint, tmp_path):
    """The CPU's default forward size is 1: a dropped image is not padded to a batch of eight
    (ViT-L/14: 1.1 s instead of 8.1 s, bench/cpu_batch.py), and a folder's scores equal the
    lone scores exactly, since every forward pass has the same shape."""
    import torch

    detector = load_scorer(tiny_checkpoint, "cpu")
    rows: list[int] = []
    detector.register_forward_pre_hook(lambda module, args: rows.append(args[0].shape[0]))
    rng = np.random.default_rng(5)
    paths = []
    for i in range(3):
        Image.fromarray(photo(rng, 64 + 8 * i, 64)).save(tmp_path / f"{i}.png")
        paths.append(tmp_path / f"{i}.png")
    (alone,) = Scanner(detector, torch.device("cpu"), workers=1).scan(paths[1:2])
    assert rows == [1]
    together = list(Scanner(detector, torch.device("cpu"), workers=2).scan(paths))
    assert rows == [1] * 4 and together[1].fake_probability == alone.fake_probability
