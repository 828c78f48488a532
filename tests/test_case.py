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


# ------------------------------------------------ issue 22: every scoring kept, the case's log
def test_rescoring_appends_to_the_history_and_never_overwrites(tmp_path):
    from dgs_desktop.case import scoring_runs

    path = tmp_path / "history.dgscase"
    with Case.create(path) as case:
        case.add_paths(["/ev/a.png", "/ev/b.png"])
        case.set_threshold(0.385)
        case.record_results([result("/ev/a.png", 0.2), result("/ev/b.png", 0.9, sha="cd" * 32)], "/models/one",
                            "1" * 64, "cpu", precision="fp32")
        case.set_threshold(0.5)
        case.record_results([result("/ev/a.png", 0.6)], "/models/two", "2" * 64, "cpu", precision="fp32")
        # the same score again with a stability check: completes its history entry, adds none
        again = result("/ev/a.png", 0.6)
        again.stability_orders, again.stability_low, again.stability_high = 8, 0.55, 0.65
        case.record_results([again], "/models/two", "2" * 64, "cpu", precision="fp32")
        history = case.scores("/ev/a.png")
        assert [(e.record.fake_probability, e.record.checkpoint_sha256, e.threshold) for e in history] == \
            [(0.2, "1" * 64, 0.385), (0.6, "2" * 64, 0.5)]
        assert history[1].record.stability_high == 0.65 and history[0].record.stability_high is None
        assert case.file("/ev/a.png").fake_probability == 0.6  # the current score is the latest
        runs = scoring_runs(case.scores())
        assert [(r.checkpoint, r.files, r.ok, r.thresholds) for r in runs] == \
            [("/models/one", 2, 2, [0.385]), ("/models/two", 1, 1, [0.5])]


def test_the_case_log_records_actions_with_time_and_user(tmp_path):
    from dgs_desktop.case import current_user, read_history

    path = tmp_path / "log.dgscase"
    with Case.create(path) as case:
        assert case.add_paths(["/ev/a.png", "/ev/b.png"]) == ["/ev/a.png", "/ev/b.png"]
        assert case.add_paths(["/ev/a.png"]) == []  # nothing new: nothing logged
        case.set_model("/models/one", "1" * 64, "cpu fp32")
        case.set_model("/models/one", "1" * 64, "cpu fp32")  # the same model again: not logged twice
        case.set_note("/ev/a.png", "from the complainant")
        case.set_note("/ev/a.png", "from the complainant")
        case.set_tags("/ev/a.png", ["exhibit-3"])
        case.log("exported", "CSV /out/r.csv (2 rows)", path="/out/r.csv")
    scores, audit = read_history(path)
    assert [e.action for e in audit] == ["created", "added", "model", "note", "tags", "exported"]
    assert audit[1].detail == "2 file(s) added from /ev" and audit[1].data["paths"] == ["/ev/a.png", "/ev/b.png"]
    assert "1" * 64 in audit[2].detail and audit[3].detail == "note on a.png: from the complainant"
    assert all(e.at.endswith("+00:00") and e.user == current_user() for e in audit)
    assert audit[-1].data == {"path": "/out/r.csv"} and scores == []


def test_a_version_2_case_opens_and_its_scores_seed_the_history(tmp_path):
    """A case written before the history existed (format 2): its files table only."""
    from dgs_desktop.case import CASE_VERSION, read_history
    from dgs_desktop.record import sql_column_definitions

    path = tmp_path / "old.dgscase"
    columns = ["id INTEGER PRIMARY KEY AUTOINCREMENT", "path TEXT NOT NULL UNIQUE",
               *(c for c in sql_column_definitions() if not c.startswith("path "))]
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute(f"CREATE TABLE files ({', '.join(columns)})")
        db.executemany("INSERT INTO meta VALUES (?, ?)", [("format", CASE_FORMAT), ("version", "2"),
                                                          ("name", "old"), ("threshold", "0.385")])
        db.execute("INSERT INTO files (path, status, sha256, fake_probability, checkpoint, checkpoint_sha256, "
                   "scanned_at) VALUES ('/ev/a.png', 'ok', ?, 0.4, '/models/one', ?, '2026-01-01T00:00:00+00:00')",
                   ("ab" * 32, "1" * 64))
        db.execute("INSERT INTO files (path) VALUES ('/ev/b.png')")
    assert read_history(path) == ([], [])  # read-only: an old case is read as it is
    with Case.open(path) as case:
        assert [f.fake_probability for f in case.files()] == [0.4, None]
        (entry,) = case.scores()
        assert entry.record.path == "/ev/a.png" and entry.threshold == 0.385 and entry.record.fake_probability == 0.4
        assert [e.action for e in case.audit()] == ["upgraded"] and "1 stored score" in case.audit()[0].detail
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0] == str(CASE_VERSION)
    with Case.open(path) as case:  # opening again changes nothing more
        assert len(case.scores()) == 1 and len(case.audit()) == 1
