"""Rules the window shares with the scan, the CSV and the report, tested without PySide6: the
reliability warning, the same-content grouping, the detail loader and the model warning."""

from __future__ import annotations

import pytest

from dgs_desktop.record import ScanRecord, reliability_warning


@pytest.mark.parametrize("fields, expected", [
    (dict(width=256, height=256, distinct_patches=49, padded=False), ""),
    (dict(width=128, height=128, distinct_patches=16, padded=False),
     "fewer than 49 distinct patches (n=16): less reliable"),
    (dict(width=20, height=300, distinct_patches=9, padded=True),
     "fewer than 49 distinct patches (n=9): less reliable; padded to 32 px: less reliable"),
    # a record stored before the structured fields existed: judged by its size, never by its notes
    (dict(width=64, height=20, notes=["whatever"]),
     "fewer than 49 distinct patches (n=2): less reliable; padded to 32 px: less reliable"),
    (dict(width=300, height=300, notes=["fewer than 49 distinct patches (n=1): less reliable"]), ""),
])
def test_reliability_warning_reads_the_structured_fields(fields, expected):
    assert reliability_warning(ScanRecord(path="/x.png", status="ok", **fields)) == expected


# ------------------------------------------------------------------------- same content
def test_content_groups_name_the_first_holder_by_order():
    from dgs_desktop.scan.content import ContentGroups

    groups = ContentGroups()
    assert groups.note("/b", "s1", order=1) == ""  # alone: the first
    assert groups.note("/c", "s1", order=2) == "/b"
    assert groups.note("/a", "s1", order=0) == ""  # an earlier row noted later still comes first
    assert groups.same_as("/b") == groups.same_as("/c") == "/a" and groups.holders("s1") == ["/a", "/b", "/c"]
    assert groups.note("/d", "") == "" and groups.same_as("/d") == ""  # no sha256: never grouped
    assert groups.forget("/a") == "s1" and groups.same_as("/c") == "/b"  # cleared: the next copy comes first
    assert groups.note("/b", "s2", order=1) == "" and groups.same_as("/c") == ""  # re-scored to other bytes
    assert groups.forget("/nowhere") == "" and groups.first("s9") == ""


def test_content_groups_default_order_is_the_order_noted():
    from dgs_desktop.scan.content import ContentGroups

    groups = ContentGroups()
    assert [groups.note(path, "s") for path in ("/z", "/y", "/x")] == ["", "/z", "/z"]


def _copies(folder):
    from PIL import Image

    folder.mkdir()
    for index, name in enumerate(("a.png", "c.png")):
        Image.new("RGB", (64, 64), (40 * index, 90, 200)).save(folder / name)
    (folder / "b.png").write_bytes((folder / "a.png").read_bytes())
    (folder / "d.png").write_bytes((folder / "a.png").read_bytes())
    return folder


def _scan_csv(folder_or_files, checkpoint, out, *extra):
    import csv

    from dgs_desktop.cli import main

    paths = folder_or_files if isinstance(folder_or_files, list) else [folder_or_files]
    assert main(["scan", *map(str, paths), "--checkpoint", str(checkpoint.directory), "--csv", str(out),
                 "--no-progress", *extra]) == 0
    with open(out, newline="", encoding="utf-8") as handle:
        return {row["path"].rsplit("/", 1)[-1]: row for row in csv.DictReader(handle)}


def test_scan_csv_names_the_first_file_with_the_same_content(tiny_checkpoint, tmp_path, monkeypatch):
    from dgs_desktop.scan import decode, engine

    folder = _copies(tmp_path / "copies")
    reads = []
    real_read = decode.read_file
    monkeypatch.setattr(decode, "read_file", lambda path: reads.append(str(path)) or real_read(path))
    scored = []
    real_score = engine.ModelRunner.score
    monkeypatch.setattr(engine.ModelRunner, "score",
                        lambda self, mosaics: scored.extend(range(len(mosaics))) or real_score(self, mosaics))
    rows = _scan_csv(folder, tiny_checkpoint, tmp_path / "out.csv")
    assert sorted(reads) == sorted(str(folder / name) for name in rows)  # each file read once, to score it
    assert len(rows) == 4 and len(scored) == 2  # two contents: two forward passes, the copies take their score
    assert rows["b.png"]["fake_probability"] == rows["a.png"]["fake_probability"]
    assert rows["a.png"]["same_content_as"] == rows["c.png"]["same_content_as"] == ""
    assert rows["b.png"]["same_content_as"] == rows["d.png"]["same_content_as"] == str(folder / "a.png")
    assert rows["b.png"]["sha256"] == rows["a.png"]["sha256"] != rows["c.png"]["sha256"]


def test_resumed_scan_counts_earlier_rows_as_first(tiny_checkpoint, tmp_path):
    folder = _copies(tmp_path / "copies")
    out = tmp_path / "out.csv"
    _scan_csv([folder / "b.png"], tiny_checkpoint, out)  # an earlier run scored only b
    rows = _scan_csv(folder, tiny_checkpoint, out, "--resume")
    assert rows["b.png"]["same_content_as"] == ""  # kept as it was
    assert rows["a.png"]["same_content_as"] == rows["d.png"]["same_content_as"] == str(folder / "b.png")


def test_merged_rank_parts_name_copies_scored_on_another_rank(tmp_path):
    import csv

    from dgs_desktop.record import RunInfo
    from dgs_desktop.scan.csvio import CsvResultWriter
    from dgs_desktop.scan.distributed import merge_parts, part_path

    run = RunInfo(checkpoint="ckpt", checkpoint_sha256="ab" * 32, device="cpu", threshold=0.5)
    out = tmp_path / "out.csv"
    shares = {0: [("/ev/a.png", "s1"), ("/ev/c.png", "s2")], 1: [("/ev/b.png", "s1"), ("/ev/d.png", "s1")]}
    for rank, rows in shares.items():
        writer = CsvResultWriter(part_path(out, rank, 2), run)
        for path, sha in rows:  # each rank grouped only its own share: d named b
            writer.write(ScanRecord(path=path, status="ok", sha256=sha, fake_probability=0.25,
                                    same_content_as="/ev/b.png" if path == "/ev/d.png" else ""))
        writer.close()
    merge_parts(out, [part_path(out, rank, 2) for rank in shares], run)
    with open(out, newline="", encoding="utf-8") as handle:
        same = {row["path"]: row["same_content_as"] for row in csv.DictReader(handle)}
    assert same == {"/ev/a.png": "", "/ev/c.png": "", "/ev/b.png": "/ev/a.png", "/ev/d.png": "/ev/a.png"}


# ------------------------------------------------------------------------- the detail loader
def test_detail_facts_come_from_the_provenance_metadata_reader(tmp_path):
    """The File tab's key facts are read by the same code as the Provenance tab and the CSV's
    provenance column (no second EXIF parser), from the bytes already read."""
    import io

    from PIL import Image

    from dgs_desktop.scan.detail import key_facts

    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0131] = "Canon", "Canon EOS R5", "Adobe Photoshop 25.0"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 80, 40)).save(buffer, format="JPEG", quality=85, exif=exif)
    facts = dict(key_facts(buffer.getvalue()))
    assert facts["Camera"] == "Canon EOS R5" and facts["Software"] == "Adobe Photoshop 25.0"
    assert facts["JPEG quality"] == "about 85 (estimated)"
    png = io.BytesIO()
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", "a cat, Steps: 20, Sampler: Euler a")
    Image.new("RGB", (32, 32)).save(png, format="PNG", pnginfo=info)
    assert dict(key_facts(png.getvalue()))["parameters"].startswith("a cat, Steps: 20")
    assert key_facts(b"not an image") == []


def test_detail_loader_re_cuts_the_scanned_mosaic_and_checks_the_sha256(tmp_path):
    import hashlib

    import numpy as np
    from PIL import Image

    from dgs_desktop.detector.patches import select_patches
    from dgs_desktop.scan.detail import CHANGED_WARNING, PREVIEW_MAX_SIDE, load_detail

    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (120, PREVIEW_MAX_SIDE + 352, 3), dtype=np.uint8)
    path = tmp_path / "wide.png"
    Image.fromarray(pixels).save(path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    selection = select_patches(Image.fromarray(pixels))
    cached = load_detail(str(path), sha, selection.boxes, selection.low_entropy, None, selection)
    recut = load_detail(str(path), sha, selection.boxes, selection.low_entropy, None, None)  # an older row
    assert np.array_equal(recut.mosaic, selection.mosaic) and np.array_equal(cached.mosaic, selection.mosaic)
    assert np.allclose(recut.entropies, selection.entropies, equal_nan=True)  # recomputed from the image
    assert recut.size == (PREVIEW_MAX_SIDE + 352, 120) and recut.warning == ""
    assert recut.preview.width == PREVIEW_MAX_SIDE and recut.scale == PREVIEW_MAX_SIDE / recut.size[0]
    assert recut.full_image.size == recut.size and dict(recut.facts)["Format"] == "PNG, RGB"
    changed = load_detail(str(path), "0" * 64, selection.boxes, selection.low_entropy, None, None)
    assert changed.warning == CHANGED_WARNING  # the outlines are the scanned version's


# ------------------------------------------------------------------------- without PySide6
WITHOUT_QT = r'''
import contextlib, io, sys
from pathlib import Path

sys.modules["PySide6"] = sys.modules["shiboken6"] = None  # any import of Qt now fails
import numpy as np
from PIL import Image

from dgs_desktop.cli import main
from dgs_desktop.detector.manifest import model_warning, read_checkpoint
from dgs_desktop.histogram import threshold_bins
from dgs_desktop.record import ScanRecord, reliability_warning
from dgs_desktop.scan.content import ContentGroups
from dgs_desktop.scan.detail import load_detail

checkpoint, folder = Path(sys.argv[1]), Path(sys.argv[2])
bins = threshold_bins([0.49, 0.51], 0.5)
assert (sum(bins.counts[:bins.split]), sum(bins.counts[bins.split:]), bins.edges[bins.split]) == (1, 1, 0.5)
assert "padded" in reliability_warning(ScanRecord(path="x", status="ok", width=20, height=20))
assert ContentGroups().note("a", "s") == ""
folder.mkdir()
Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 96, 3), dtype=np.uint8)).save(folder / "a.png")
(folder / "b.png").write_bytes((folder / "a.png").read_bytes())
assert load_detail(str(folder / "a.png"), "", (), (), None, None).size == (96, 64)
warning = model_warning(read_checkpoint(checkpoint).manifest)
assert warning
err = io.StringIO()
with contextlib.redirect_stderr(err):
    assert main(["scan", str(folder), "--checkpoint", str(checkpoint), "--csv", str(folder / "r.csv"),
                 "--no-progress"]) == 0
assert warning in err.getvalue(), err.getvalue()
assert main(["report", str(folder / "r.csv"), "--html", str(folder / "r.html")]) == 0
html = (folder / "r.html").read_text(encoding="utf-8")
front = html.split("<h2>Summary</h2>")[0]
assert warning.replace("'", "&#x27;") in front, front[:2000]
assert "PySide6" not in [m.split(".")[0] for m in sys.modules if sys.modules[m] is not None]
print("ok")
'''


def test_rules_run_without_pyside6(tiny_checkpoint, tmp_path):
    """The new Qt-free modules import and work with PySide6 unimportable; `scan` prints the
    model warning on stderr and the report's first page shows it, both from model_warning."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    done = subprocess.run([sys.executable, "-c", WITHOUT_QT, str(tiny_checkpoint.directory), str(tmp_path / "in")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stdout + done.stderr
