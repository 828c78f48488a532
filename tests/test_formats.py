"""Phone and modern formats: HEIC/HEIF (pillow-heif), AVIF (Pillow), JPEG XL (clear error row).

Each is decoded by the scan's one decoder, so orientation, colour conversion and the pixel
limit behave as for JPEG/PNG. Test images are encoded here."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image
from provenance_samples import camera_exif, encoded

from dgs_desktop.scan.decode import DecodeError, decode_bytes, decode_image, sniff_format

LOSSY = dict(quality=95)


def quadrants(width: int = 96, height: int = 64) -> Image.Image:
    """Four flat colours, so orientation and colour survive lossy coding recognisably."""
    array = np.zeros((height, width, 3), np.uint8)
    array[: height // 2, : width // 2] = (220, 30, 30)
    array[: height // 2, width // 2:] = (30, 200, 40)
    array[height // 2:, : width // 2] = (40, 40, 220)
    array[height // 2:, width // 2:] = (235, 235, 235)
    return Image.fromarray(array)


def corner_colours(image: Image.Image) -> list[tuple[int, ...]]:
    array = np.asarray(image.convert("RGB"), dtype=np.int16)
    h, w = array.shape[:2]
    return [tuple(array[y, x]) for y, x in ((h // 8, w // 8), (h // 8, w - w // 8), (h - h // 8, w // 8),
                                             (h - h // 8, w - w // 8))]


def close(a, b, tolerance=24):
    return all(abs(int(x) - int(y)) <= tolerance for pa, pb in zip(a, b) for x, y in zip(pa, pb))


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_decoded_like_the_png_reference(fmt):
    image = quadrants()
    decoded = decode_bytes(encoded(image, fmt, **LOSSY))
    reference = decode_bytes(encoded(image, "PNG"))
    assert decoded.format == fmt and decoded.image.mode == "RGB"
    assert decoded.image.size == reference.image.size == (96, 64)
    assert close(corner_colours(decoded.image), corner_colours(reference.image))


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_orientation_is_applied_exactly_once(fmt):
    """EXIF orientation 6 (rotate 90° clockwise to display): the result matches the PNG
    carrying the same orientation, whether libheif (HEIF) or our exif_transpose (AVIF) turns it."""
    image = quadrants()
    exif = camera_exif(orientation=6)
    decoded = decode_bytes(encoded(image, fmt, exif=exif.tobytes(), **LOSSY))
    reference = decode_bytes(encoded(image, "PNG", exif=exif.tobytes()))
    assert reference.image.size == (64, 96)
    assert decoded.image.size == (64, 96)
    assert close(corner_colours(decoded.image), corner_colours(reference.image))


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_pixel_limit_applies(fmt):
    data = encoded(quadrants(), fmt, **LOSSY)
    with pytest.raises(DecodeError, match="image too large"):
        decode_bytes(data, max_pixels=96 * 64 - 1)


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_alpha_is_dropped_with_a_note(fmt):
    rgba = quadrants().convert("RGBA")
    rgba.putalpha(128)
    decoded = decode_bytes(encoded(rgba, fmt, **LOSSY))
    assert decoded.image.mode == "RGB"
    assert "alpha channel ignored" in decoded.notes


def test_heic_metadata_reaches_provenance():
    from dgs_desktop.provenance.summary import analyze

    decoded = decode_bytes(encoded(quadrants(), "HEIF", exif=camera_exif().tobytes(), **LOSSY))
    assert decoded.data  # the bytes as read, for provenance
    line = analyze(decoded.data).summary
    assert "camera Apple iPhone 15 Pro" in line and "GPS" in line


@pytest.mark.parametrize("data", [b"\xff\x0a" + bytes(40), b"\x00\x00\x00\x0cJXL \r\n\x87\n" + bytes(40)])
def test_jpeg_xl_is_a_clear_error(data):
    assert sniff_format(data) == "JPEG XL"
    with pytest.raises(DecodeError, match="JPEG XL image: not supported by this installation"):
        decode_bytes(data)


def test_heif_and_avif_are_told_apart_when_undecodable():
    assert sniff_format(b"\x00\x00\x00\x18ftypheic" + bytes(8)) == "HEIF"
    assert sniff_format(b"\x00\x00\x00\x18ftypavif" + bytes(8)) == "AVIF"
    with pytest.raises(DecodeError, match="HEIF/HEIC image that this installation cannot decode"):
        decode_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(64))


def test_suffix_mismatch_note(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(encoded(quadrants(), "HEIF", **LOSSY))
    assert "file suffix .jpg does not match its HEIF content" in decode_image(path).notes


def test_scan_rows_for_each_format(tiny_checkpoint, tmp_path):
    from dgs_desktop.cli import main

    folder = tmp_path / "phone"
    folder.mkdir()
    for name, fmt in (("a.heic", "HEIF"), ("b.heif", "HEIF"), ("c.avif", "AVIF")):
        (folder / name).write_bytes(encoded(quadrants(), fmt, **LOSSY))
    (folder / "d.jxl").write_bytes(b"\xff\x0a" + bytes(40))
    out = tmp_path / "scan.csv"
    assert main(["scan", str(folder), "--checkpoint", str(tiny_checkpoint.directory), "--csv", str(out),
                 "--no-progress", "--device", "cpu"]) == 0
    with open(out, newline="", encoding="utf-8") as handle:
        rows = {row["path"].rsplit("/", 1)[-1]: row for row in csv.DictReader(handle)}
    assert sorted(rows) == ["a.heic", "b.heif", "c.avif", "d.jxl"]
    for name in ("a.heic", "b.heif", "c.avif"):
        row = rows[name]
        assert row["status"] == "ok" and row["verdict"] in ("fake", "real", "inconclusive"), row
        assert (row["width"], row["height"]) == ("96", "64")
    assert rows["d.jxl"]["status"] == "error" and "JPEG XL" in rows["d.jxl"]["error"]
