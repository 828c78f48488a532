"""Provenance signals: metadata, generator fingerprints, C2PA, the one-line summary and the
CSV column. Every input is generated here (C2PA manifests are signed with a self-made
certificate chain); nothing touches the network."""

from __future__ import annotations

import csv
import io
import random
import struct

import pytest
from PIL import Image, ImageCms
from provenance_samples import (
    CLAIM_GENERATOR,
    IPTC,
    SIGNER_NAME,
    camera_exif,
    encoded,
    picture,
    png_with_text,
    png_with_xmp,
    sample_files,
    sign_c2pa,
    xmp_packet,
)

from dgs_desktop.provenance import c2pa as c2pa_module
from dgs_desktop.provenance.fingerprints import DECLARED_AI, EDITOR, GENERATOR, classify_software
from dgs_desktop.provenance.metadata import estimate_jpeg_quality, icc_profile_name, parse_xmp, read_metadata
from dgs_desktop.provenance.summary import MAX_LINE_CHARS, analyze, provenance_line


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    folder = tmp_path_factory.mktemp("provenance")
    return folder, sample_files(folder)


@pytest.mark.parametrize("name", ["webui.png", "comfyui.png", "novelai.png", "invokeai.png", "photo.jpg",
                                  "iptc_ai.jpg", "c2pa_ai.jpg", "plain.png"])
def test_each_signal_reaches_the_summary(samples, name):
    _, cases = samples
    data, expected = cases[name]
    line = analyze(data).summary
    for fragment in expected:
        assert fragment in line, (name, line)
    assert "\n" not in line and "\r" not in line and len(line) <= MAX_LINE_CHARS


def test_generator_kinds_are_told_apart(samples):
    _, cases = samples
    webui = analyze(cases["webui.png"][0])
    assert [(s.kind, s.name) for s in webui.signals] == [(GENERATOR, "Stable Diffusion WebUI")]
    photo = analyze(cases["photo.jpg"][0])
    assert [(s.kind, s.name) for s in photo.signals] == [(EDITOR, "Adobe Photoshop")]
    declared = analyze(cases["iptc_ai.jpg"][0])
    assert (DECLARED_AI, "IPTC DigitalSourceType trainedAlgorithmicMedia") in [(s.kind, s.name) for s in declared.signals]
    assert analyze(cases["plain.png"][0]).signals == []


def test_webui_parameters_in_jpeg_user_comment():
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + "cat\nSteps: 20, Sampler: Euler a, CFG scale: 7".encode("utf-16-be")
    report = analyze(encoded(picture(), "JPEG", exif=exif))
    assert any(s.name == "Stable Diffusion WebUI" and "UserComment" in s.evidence for s in report.signals)


def test_a_png_parameters_chunk_that_is_not_webui_is_still_reported_but_named_carefully():
    report = analyze(png_with_text({"parameters": "just some text"}))
    assert [s.name for s in report.signals] == ["Stable Diffusion (parameters)"]


@pytest.mark.parametrize(("software", "kind", "name"), [
    ("Adobe Photoshop 25.1 (Macintosh)", EDITOR, "Adobe Photoshop"), ("GIMP 2.10.36", EDITOR, "GIMP"),
    ("Midjourney", GENERATOR, "Midjourney"), ("Adobe Firefly", GENERATOR, "Adobe Firefly"),
    ("ImageNet exporter", None, None), ("Ver.1.00", None, None)])
def test_software_tags(software, kind, name):
    signal = classify_software(software)
    assert (signal.kind, signal.name) == (kind, name) if kind else signal is None


def test_camera_metadata_in_full():
    exif = camera_exif(software="Snapseed 2.0")
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    meta = read_metadata(encoded(picture(), "JPEG", quality=80, exif=exif, icc_profile=icc))
    assert meta.camera == "Apple iPhone 15 Pro"
    assert meta.lens.startswith("iPhone 15 Pro back triple camera")
    assert meta.date_taken == "2024:05:01 10:20:30"
    assert meta.gps == pytest.approx((-33.865, 151.21), abs=1e-6)  # S and E from the refs
    assert meta.icc_profile == icc_profile_name(icc) and "sRGB" in meta.icc_profile
    assert meta.jpeg_quality == 80 and sorted(meta.jpeg_qtables) == [0, 1]
    assert len(meta.jpeg_qtables[0]) == 64
    assert ("EXIF", "Model", "iPhone 15 Pro") in meta.fields
    assert any(group == "GPS" and name == "GPSLatitude" for group, name, _ in meta.fields)


@pytest.mark.parametrize("quality", [5, 20, 50, 75, 90, 95, 100])
def test_jpeg_quality_estimate_recovers_the_encoder_quality(quality):
    meta = read_metadata(encoded(picture(), "JPEG", quality=quality))
    assert meta.jpeg_quality == quality


def test_custom_quantisation_tables_get_no_quality_number():
    custom = [[max(1, (i * 7) % 50) for i in range(64)], [3] * 64]
    meta = read_metadata(encoded(picture(), "JPEG", qtables=custom))
    assert meta.jpeg_qtables[0] == custom[0]
    assert meta.jpeg_quality is None
    assert estimate_jpeg_quality(custom[0]) is None


def _exif_with_thumbnail(thumbnail: bytes) -> bytes:
    """A little-endian EXIF block: IFD0 (Make) -> IFD1 with the JPEG thumbnail pointers."""
    make = b"Canon\x00"
    ifd0_offset = 8
    ifd0 = struct.pack("<H", 1) + struct.pack("<HHII", 0x010F, 2, len(make), 0) + struct.pack("<I", 0)
    ifd1_offset = ifd0_offset + len(ifd0)
    ifd1_size = 2 + 2 * 12 + 4
    make_offset = ifd1_offset + ifd1_size
    thumb_offset = make_offset + len(make)
    ifd0 = struct.pack("<H", 1) + struct.pack("<HHII", 0x010F, 2, len(make), make_offset) + struct.pack("<I", ifd1_offset)
    ifd1 = (struct.pack("<H", 2) + struct.pack("<HHII", 0x0201, 4, 1, thumb_offset)
            + struct.pack("<HHII", 0x0202, 4, 1, len(thumbnail)) + struct.pack("<I", 0))
    return b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", ifd0_offset) + ifd0 + ifd1 + make + thumbnail


def test_embedded_exif_thumbnail_is_extracted():
    thumbnail = encoded(Image.new("RGB", (40, 30), (255, 0, 0)), "JPEG")
    meta = read_metadata(encoded(picture(), "JPEG", exif=_exif_with_thumbnail(thumbnail)))
    assert meta.camera == "Canon"
    assert meta.thumbnail == thumbnail
    assert Image.open(io.BytesIO(meta.thumbnail)).size == (40, 30)


_XMP_BODY = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description xmp:CreatorTool="A &amp; B%s">'
             b"<dc:creator><rdf:Seq><rdf:li>Alice</rdf:li><rdf:li>Bob &lt;b&gt;</rdf:li></rdf:Seq></dc:creator>"
             b"<photoshop:City>Paris</photoshop:City></rdf:Description></rdf:RDF></x:xmpmeta>")


def test_xmp_properties_are_read_by_an_xml_parser():
    problems = []
    properties = parse_xmp(_XMP_BODY % b"", problems)
    assert properties == {"xmp:CreatorTool": "A & B", "dc:creator": "Alice; Bob <b>", "photoshop:City": "Paris"}
    assert problems == []


def test_xmp_with_entity_declarations_is_refused_unexpanded():
    hostile = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
               + _XMP_BODY % b" &lol2;")
    problems = []
    assert parse_xmp(hostile, problems) == {}  # entities are never expanded: the packet is not read
    assert problems == ["XMP not read: it declares a DOCTYPE (refused: entities are never expanded)"]
    meta = read_metadata(png_with_xmp(hostile))
    assert meta.xmp == {} and "XMP not read" in meta.problems[0]


def test_digital_capture_is_not_declared_ai():
    data = encoded(picture(), "JPEG", xmp=xmp_packet({"Iptc4xmpExt:DigitalSourceType": IPTC + "digitalCapture"}))
    report = analyze(data)
    assert report.of_kind(DECLARED_AI) == []
    assert "digital capture declared" in report.summary


def test_c2pa_manifest_signed_here_is_read_back(samples):
    _, cases = samples
    info = analyze(cases["c2pa_ai.jpg"][0]).c2pa
    assert info.present and not info.error
    assert info.validation_state == "Valid"
    assert info.failures == [c2pa_module.UNTRUSTED_SIGNER]  # no trust list configured: not "trusted"
    assert info.signer == SIGNER_NAME and info.issuer == "DGS Test Lab"
    assert info.claim_generator.startswith(CLAIM_GENERATOR)
    assert info.declares_ai and info.ai_source_types == ["trainedAlgorithmicMedia"]
    assert info.actions == ["c2pa.created [trainedAlgorithmicMedia]"]


def test_c2pa_capture_manifest_in_png_does_not_declare_ai():
    info = analyze(sign_c2pa(encoded(picture(), "PNG"), "image/png", ai=False)).c2pa
    assert info.present and info.validation_state == "Valid"
    assert not info.declares_ai and info.actions == ["c2pa.created [digitalCapture]"]


def test_c2pa_tampered_pixels_are_invalid():
    signed = bytearray(sign_c2pa(encoded(picture(), "JPEG", quality=90)))
    end = signed.rindex(b"\xff\xd9")
    signed[end - 40] ^= 0x55  # inside the entropy-coded image data, covered by the data hash
    info = analyze(bytes(signed)).c2pa
    assert info.present and info.validation_state == "Invalid"
    assert any("dataHash" in code for code in info.failures)
    assert info.state_text.startswith("invalid")
    assert "C2PA invalid" in analyze(bytes(signed)).summary


def test_c2pa_is_not_asked_without_a_c2pa_label(monkeypatch):
    import c2pa

    def refuse(*args, **kwargs):
        raise AssertionError("c2pa must not be called for a file without a manifest label")

    monkeypatch.setattr(c2pa.Reader, "try_create", refuse)
    assert not analyze(encoded(picture(), "JPEG")).c2pa.present


def test_a_broken_manifest_is_a_finding_not_a_crash():
    signed = bytearray(sign_c2pa(encoded(picture(), "JPEG", quality=90)))
    start = signed.index(b"c2pa")
    signed[start + 20:start + 400] = bytes(380)  # wreck the JUMBF boxes
    report = analyze(bytes(signed))
    assert report.c2pa.present
    assert report.c2pa.error or report.c2pa.validation_state == "Invalid"


def test_hostile_metadata_never_raises():
    """Seeded byte mutations of files rich in metadata: analysis always returns a line."""
    rng = random.Random(1234)
    exif = camera_exif(software="GIMP")
    bases = [encoded(picture(), "JPEG", exif=exif, xmp=xmp_packet({"xmp:CreatorTool": "Midjourney"})),
             png_with_text({"parameters": "Steps: 3, Sampler: x", "prompt": "{}"})]
    for _ in range(120):
        data = bytearray(rng.choice(bases))
        for _ in range(rng.randint(1, 12)):
            data[rng.randrange(2, min(len(data), 600))] = rng.randrange(256)
        line = provenance_line(bytes(data))
        assert isinstance(line, str) and line and "\n" not in line


def test_summary_starts_with_our_own_words_never_with_file_text():
    """The CSV cell cannot be turned into a spreadsheet formula by metadata."""
    exif = Image.Exif()
    exif[0x0131] = "=HYPERLINK(\"http://x\")"
    line = analyze(encoded(picture(), "JPEG", exif=exif)).summary
    assert line.startswith("software =HYPERLINK")


def test_scan_fills_the_provenance_column_and_never_changes_the_probability(tiny_checkpoint, tmp_path):
    import torch

    from dgs_desktop.cli import main
    from dgs_desktop.scan.engine import Scanner

    folder = tmp_path / "in"
    folder.mkdir()
    pixels = picture(seed=21)
    (folder / "bare.png").write_bytes(encoded(pixels, "PNG"))
    (folder / "claims.png").write_bytes(png_with_text({"parameters": "x\nSteps: 9, Sampler: Euler"}, seed=21))
    out = tmp_path / "scan.csv"
    assert main(["scan", str(folder), "--checkpoint", str(tiny_checkpoint.directory), "--csv", str(out),
                 "--no-progress", "--device", "cpu"]) == 0
    with open(out, newline="", encoding="utf-8") as handle:
        rows = {row["path"].rsplit("/", 1)[-1]: row for row in csv.DictReader(handle)}
    assert rows["claims.png"]["provenance"].startswith("generator: Stable Diffusion WebUI")
    assert rows["bare.png"]["provenance"] == "no metadata"
    assert rows["claims.png"]["fake_probability"] == rows["bare.png"]["fake_probability"] != ""
    # The same through the engine, to the last bit.
    from dgs_desktop.detector.scorer import load_scorer

    detector = load_scorer(tiny_checkpoint, "cpu")
    (folder / "claims.jpg").write_bytes(encoded(pixels, "JPEG", quality=95, exif=camera_exif(software="GIMP 2.10")))
    paths = [folder / "bare.png", folder / "claims.png", folder / "claims.jpg"]
    by_path = {}
    # Every scan path fills the column from the bytes it read (the device path's JPEGs wait
    # undecoded for the device decoder: their provenance comes from those same bytes).
    for select_on, decoder in (("host", "auto"), ("device", "pillow"), ("device", "torchvision")):
        scanner = Scanner(detector, torch.device("cpu"), select_on=select_on, jpeg_decoder=decoder)
        results = list(scanner.scan(paths))
        assert results[0].fake_probability == results[1].fake_probability
        assert results[0].provenance != results[1].provenance
        assert results[2].provenance == analyze((folder / "claims.jpg").read_bytes()).summary
        by_path[select_on, decoder] = [r.provenance for r in results]
    assert len(set(map(tuple, by_path.values()))) == 1


# ------------------------------------------------------------------- the window's panel
def test_provenance_panel_shows_every_part(qtbot, samples, tmp_path):
    pytest.importorskip("PySide6")
    from PySide6.QtCore import Qt

    from dgs_desktop.gui.provenance_panel import ProvenancePanel

    folder, cases = samples
    panel = ProvenancePanel()
    qtbot.addWidget(panel)
    panel.resize(720, 640)
    with qtbot.waitSignal(panel.shown, timeout=20000):
        panel.load_file(str(folder / "c2pa_ai.jpg"))
    assert panel.summary.text() == analyze(cases["c2pa_ai.jpg"][0]).summary
    c2pa_text = [panel.c2pa_form.itemAt(i).widget().text() for i in range(panel.c2pa_form.count())
                 if panel.c2pa_form.itemAt(i).widget() is not None]
    assert "valid, signer not on a trust list" in c2pa_text and "trainedAlgorithmicMedia" in c2pa_text
    groups = [panel.tree.topLevelItem(i).text(0) for i in range(panel.tree.topLevelItemCount())]
    assert groups == ["JPEG (3)"]

    thumbnail = encoded(Image.new("RGB", (40, 30), (255, 0, 0)), "JPEG")
    hostile = xmp_packet({"xmp:CreatorTool": "&lt;b&gt;GIMP&lt;/b&gt; &lt;img src=x&gt;"})
    path = tmp_path / "edited.jpg"
    path.write_bytes(encoded(picture(), "JPEG", exif=_exif_with_thumbnail(thumbnail), xmp=hostile))
    with qtbot.waitSignal(panel.shown, timeout=20000):
        panel.load_file(str(path), expected_sha256="0" * 64)
    assert panel.thumbnail.isVisibleTo(panel) and panel.thumbnail.pixmap().width() == 40
    assert panel.warning.isVisibleTo(panel) and "changed after it was scanned" in panel.warning.text()
    signal_labels = [panel.signals_layout.itemAt(i).widget() for i in range(panel.signals_layout.count())]
    assert [w.text() for w in signal_labels] == ["editor: GIMP (XMP CreatorTool '<b>GIMP</b> <img src=x>')"]
    assert all(w.textFormat() == Qt.TextFormat.PlainText for w in signal_labels)  # never rendered as markup
    groups = [panel.tree.topLevelItem(i).text(0) for i in range(panel.tree.topLevelItemCount())]
    assert groups[:2] == ["EXIF (2)", "XMP (1)"]
    panel.grab().save(str(tmp_path / "panel.png"))

    with qtbot.waitSignal(panel.shown, timeout=20000):
        panel.load_file(str(tmp_path / "gone.jpg"))
    assert panel.summary.text().startswith("Cannot read the file's metadata: file not found")


def test_the_word_c2pa_in_text_is_not_a_manifest():
    report = analyze(png_with_text({"parameters": "c2pa jumb: just words, Steps: 3, Sampler: x"}))
    assert not report.c2pa.present and "C2PA" not in report.summary


def _jpeg_with_iptc(records: dict[tuple[int, int], bytes]) -> bytes:
    """A JPEG with an APP13 Photoshop IRB holding IPTC-IIM records (resource 0x0404)."""
    iim = b"".join(b"\x1c" + bytes(key) + struct.pack(">H", len(value)) + value for key, value in records.items())
    resource = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(iim)) + iim
    resource += b"\x00" * (len(iim) % 2)
    payload = b"Photoshop 3.0\x00" + resource
    jpeg = encoded(picture(), "JPEG")
    return jpeg[:2] + b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def test_iptc_iim_fields():
    data = _jpeg_with_iptc({(2, 80): b"Jane Doe", (2, 65): b"Midjourney", (2, 116): b"(c) Agency"})
    report = analyze(data)
    fields = {(g, n): v for g, n, v in report.metadata.fields}
    assert fields[("IPTC", "By-line")] == "Jane Doe"
    assert fields[("IPTC", "CopyrightNotice")] == "(c) Agency"
    assert [(s.kind, s.name) for s in report.signals] == [(GENERATOR, "Midjourney")]
