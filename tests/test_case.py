"""The case file (dgs_desktop.case): Qt-free, what the window saves and the report reads."""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace

import pytest

from dgs_desktop.case import CASE_FORMAT, Case, CaseError, read_case
from dgs_desktop.verdict import verdict


def result(path, p, sha="ab" * 32, status="ok", notes=()):
    return SimpleNamespace(path=path, sha256=sha, status=status, fake_probability=p, error="" if status == "ok" else "bad",
                           width=64, height=48, format="PNG", notes=list(notes), provenance="c2pa: none")


def test_case_round_trip_keeps_every_verdict_input(tmp_path):
    path = tmp_path / "inquiry.dgscase"
    with Case.create(path) as case:
        case.add_paths(["/ev/a.png", "/ev/b.png", "/ev/c.png"])
        case.set_model("/models/lab", "f" * 64, "cpu")
        case.set_threshold(0.7)
        boxes = [(0, 0, 32, 32), (32, 0, 32, 32)]
        case.record_results([result("/ev/a.png", 0.7), result("/ev/b.png", 0.70001, sha="cd" * 32)], "/models/lab",
                            "f" * 64, "cpu", {"/ev/a.png": (boxes, (True, False), (1.5, 7.25))})
        case.set_note("/ev/a.png", "sent by the complainant")
        case.set_tags("/ev/a.png", ["exhibit-3", " ", "exhibit-3", "social"])
    info, files = read_case(path)
    assert info.threshold == 0.7 and info.checkpoint == "/models/lab" and info.checkpoint_sha256 == "f" * 64
    assert [f.path for f in files] == ["/ev/a.png", "/ev/b.png", "/ev/c.png"]  # the order they were added
    a, b, c = files
    assert a.fake_probability == 0.7 and a.sha256 == "ab" * 32 and a.checkpoint_sha256 == "f" * 64
    assert a.boxes == boxes and a.low_entropy == [True, False] and a.entropies == [1.5, 7.25]
    assert a.analyst_note == "sent by the complainant" and a.tags == ["exhibit-3", "social"]
    assert a.added_at and a.scanned_at and a.provenance == "c2pa: none"
    # the verdict is recomputed with the one rule: p equal to the threshold is real
    assert a.verdict(info.threshold) == "real" == verdict(0.7, 0.7)
    assert b.verdict(info.threshold) == "fake"
    assert c.status == "queued" and c.fake_probability is None and c.verdict(info.threshold) == ""


def test_case_refuses_to_touch_files_it_did_not_create(tmp_path):
    other = tmp_path / "notes.dgscase"
    other.write_bytes(b"the analyst's own file")
    with pytest.raises(CaseError, match="already exists"):
        Case.create(other)
    with pytest.raises(CaseError, match="not a DGS Desktop case"):
        Case.open(other)
    with pytest.raises(CaseError, match="not a DGS Desktop case"):
        read_case(other)
    assert other.read_bytes() == b"the analyst's own file"
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE meta (key TEXT, value TEXT)")
        db.execute("INSERT INTO meta VALUES ('format', 'something-else')")
    with pytest.raises(CaseError):
        Case.open(foreign)


def test_results_update_in_place_and_duplicates_group_by_sha256(tmp_path):
    path = tmp_path / "dup.dgscase"
    with Case.create(path) as case:
        case.add_paths(["/ev/a.png", "/ev/copy-of-a.png", "/ev/b.png"])
        case.record_results([result("/ev/a.png", 0.2), result("/ev/copy-of-a.png", 0.2), result("/ev/b.png", 0.9,
                             sha="cd" * 32)], "m", "1" * 64, "cpu")
        case.record_results([result("/ev/b.png", 0.4, sha="cd" * 32)], "m2", "2" * 64, "cpu")  # rescored
        assert case.duplicates() == {"ab" * 32: ["/ev/a.png", "/ev/copy-of-a.png"]}
        b = case.file("/ev/b.png")
        assert b.fake_probability == 0.4 and b.checkpoint_sha256 == "2" * 64
        assert len(case.files()) == 3


def test_case_reopens_for_writing_and_read_case_does_not_modify(tmp_path):
    path = tmp_path / "c.dgscase"
    Case.create(path).close()
    before = path.read_bytes()
    info, files = read_case(path)
    assert files == [] and path.read_bytes() == before
    with Case.open(path) as case:
        case.add_paths(["/x.png"])
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key='format'").fetchone()[0] == CASE_FORMAT
    assert [f.path for f in read_case(path)[1]] == ["/x.png"]
