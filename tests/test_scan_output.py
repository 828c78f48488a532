"""`dgs-desktop scan --csv` never destroys a file, and `--resume` never loses finished rows."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import imagegen
import pytest

from dgs_desktop.cli import main
from dgs_desktop.scan.csvio import COLUMNS


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "evidence"
    imagegen.good_images(6, root, size=64)
    return root


def scan_args(paths, checkpoint, out, *extra):
    return ["scan", *map(str, paths), "--checkpoint", str(checkpoint.directory), "--csv", str(out),
            "--no-progress", *extra]


def rows_of(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def one_error_line(capsys, *needles) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dgs-desktop: error:"), err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_input_image_is_never_the_output(folder, tiny_checkpoint, capsys):
    victim = sorted(folder.iterdir())[0]
    before = digest(victim)
    assert main(scan_args([folder], tiny_checkpoint, victim)) == 2
    one_error_line(capsys, "not a DGS Desktop scan CSV", "not overwritten")
    assert digest(victim) == before


def test_any_other_file_is_not_overwritten(tmp_path, folder, tiny_checkpoint, capsys):
    document = tmp_path / "report.csv"
    document.write_text("name,amount\nrent,1200\n")
    assert main(scan_args([folder], tiny_checkpoint, document)) == 2
    one_error_line(capsys, "not overwritten")
    assert document.read_text() == "name,amount\nrent,1200\n"


def test_results_file_inside_the_scanned_folder_is_not_scanned(folder, tiny_checkpoint, monkeypatch):
    monkeypatch.chdir(folder)
    for _ in range(2):  # the second run replaces the first run's results, still without a row for them
        assert main(scan_args(["."], tiny_checkpoint, "results.csv")) == 0
        paths = sorted(Path(row["path"]).name for row in rows_of(folder / "results.csv"))
        assert paths == sorted(p.name for p in folder.iterdir() if p.name != "results.csv")
    assert sorted(os.listdir(folder)) == sorted(paths + ["results.csv"])  # no temporary file left


def test_failed_checks_leave_the_previous_results_untouched(folder, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "results.csv"
    assert main(scan_args([folder], tiny_checkpoint, out)) == 0
    before = out.read_bytes()
    capsys.readouterr()
    bad_checkpoint = ["scan", str(folder), "--checkpoint", str(tmp_path / "no-such-model"), "--csv", str(out),
                      "--no-progress"]
    assert main(bad_checkpoint) == 2
    assert main(scan_args([folder], tiny_checkpoint, out, "--batch-size", "0")) == 2
    assert out.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["evidence", "results.csv"]


def test_csv_to_standard_output_and_to_dev_null(folder, tiny_checkpoint):
    base = [sys.executable, "-m", "dgs_desktop", "scan", str(folder), "--checkpoint",
            str(tiny_checkpoint.directory), "--no-progress", "--csv"]
    done = subprocess.run(base + ["-"], capture_output=True, timeout=180)
    assert done.returncode == 0, done.stderr.decode()
    rows = list(csv.DictReader(io.StringIO(done.stdout.decode("utf-8"), newline="")))
    assert len(rows) == 6 and all(row["status"] == "ok" for row in rows)
    assert list(rows[0]) == list(COLUMNS)
    if os.path.exists("/dev/null"):
        done = subprocess.run(base + ["/dev/null"], capture_output=True, text=True, timeout=180)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr


def test_resume_with_another_threshold_or_checkpoint_needs_force(folder, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "results.csv"
    few = sorted(folder.iterdir())[:3]
    assert main(scan_args(few, tiny_checkpoint, out)) == 0
    before = out.read_bytes()
    capsys.readouterr()
    assert main(scan_args([folder], tiny_checkpoint, out, "--resume", "--threshold", "0.7")) == 2
    one_error_line(capsys, "threshold 0.5", "--force")
    assert out.read_bytes() == before
    assert main(scan_args([folder], tiny_checkpoint, out, "--resume", "--threshold", "0.7", "--force")) == 0
    assert "another run" in capsys.readouterr().err  # warned
    rows = rows_of(out)
    assert len(rows) == 6 and [r["threshold"] for r in rows] == ["0.5"] * 3 + ["0.7"] * 3


def test_resume_keeps_hand_edits_and_spreadsheet_saves(folder, tiny_checkpoint, tmp_path):
    out = tmp_path / "results.csv"
    few = sorted(folder.iterdir())[:4]
    assert main(scan_args(few, tiny_checkpoint, out)) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    lines[0] += ",analyst note"
    lines[1] += ",checked by JS"
    lines[2] += ",\"=HYPERLINK(\"\"case\"\"), see file\""
    # line 3 stays one field short: it lacks only the added column; line 4 is cut by a crash
    out.write_bytes(("\ufeff" + "\r\n".join(lines[:4]) + "\r\n" + lines[4][:40]).encode("utf-8"))
    assert main(scan_args([folder], tiny_checkpoint, out, "--resume")) == 0
    rows = rows_of(out)
    assert sorted(Path(r["path"]).name for r in rows) == sorted(p.name for p in folder.iterdir())
    assert [r["analyst note"] for r in rows[:3]] == ["checked by JS", "=HYPERLINK(\"case\"), see file", ""]
    assert all(r["analyst note"] == "" for r in rows[3:])
    out.read_bytes().decode("utf-8")


def test_resume_refuses_a_row_it_cannot_understand_and_changes_nothing(folder, tiny_checkpoint, tmp_path,
                                                                        capsys):
    out = tmp_path / "results.csv"
    assert main(scan_args(sorted(folder.iterdir())[:3], tiny_checkpoint, out)) == 0
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    fields = next(csv.reader([lines[2]]))
    del fields[1]  # the sha256 deleted by hand: every later column moves
    lines[2] = ",".join(fields) + "\n"
    out.write_text("".join(lines), encoding="utf-8")
    before = out.read_bytes()
    capsys.readouterr()
    assert main(scan_args([folder], tiny_checkpoint, out, "--resume")) == 2
    one_error_line(capsys, "line 3", "cannot be understood")
    assert out.read_bytes() == before


@pytest.mark.parametrize("special", ["/dev/zero", "fifo"])
def test_resume_from_a_special_file_is_refused_at_once(folder, tiny_checkpoint, tmp_path, special):
    if special == "fifo":
        special = str(tmp_path / "fifo.csv")
        os.mkfifo(special)
    elif not os.path.exists(special):
        pytest.skip("no /dev/zero here")
    done = subprocess.run([sys.executable, "-m", "dgs_desktop", *scan_args([folder], tiny_checkpoint, special,
                                                                            "--resume")[0:]],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "not a regular file" in done.stderr and "Traceback" not in done.stderr


def test_resume_of_an_older_versions_csv_with_raw_name_bytes(tmp_path, tiny_checkpoint):
    """Before path_bytes_hex, a non-UTF-8 name was written as its raw bytes: resume matches it,
    and the rewritten file is valid UTF-8 with the exact name kept."""
    folder = tmp_path / "names"
    imagegen.good_images(2, folder)
    raw_name = b"caf\xe9.png"
    (folder / "img00000.png").rename(folder / os.fsdecode(raw_name))
    out = tmp_path / "old.csv"
    assert main(scan_args([folder], tiny_checkpoint, out)) == 0
    rows = rows_of(out)
    old_columns = [c for c in COLUMNS if c != "path_bytes_hex"]
    lines = [",".join(old_columns).encode()]
    for row in rows:
        path = bytes.fromhex(row["path_bytes_hex"]) if row["path_bytes_hex"] else row["path"].encode()
        lines.append(b",".join([os.fsencode(folder) + b"/" + os.path.basename(path) if row["path_bytes_hex"]
                                else path] + [row[c].encode() for c in old_columns[1:]]))
    out.write_bytes(b"\n".join(lines) + b"\n")
    assert main(scan_args([folder], tiny_checkpoint, out, "--resume")) == 0
    text = out.read_bytes().decode("utf-8")  # valid UTF-8 now
    resumed = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(resumed) == 2  # nothing rescanned, nothing doubled
    odd = next(r for r in resumed if r["path_bytes_hex"])
    assert bytes.fromhex(odd["path_bytes_hex"]) == os.fsencode(folder / os.fsdecode(raw_name))
    assert odd["path"].endswith("caf\\xe9.png")


def test_an_empty_existing_file_may_be_the_output(folder, tiny_checkpoint, tmp_path):
    out = tmp_path / "made-by-mktemp.csv"
    out.write_bytes(b"")
    assert main(scan_args([folder], tiny_checkpoint, out)) == 0
    assert len(rows_of(out)) == 6


def test_old_results_are_replaced_only_when_the_first_new_row_is_written(tmp_path):
    from dgs_desktop.record import ScanRecord
    from dgs_desktop.scan.csvio import CsvResultWriter, RunInfo, check_output

    run = RunInfo("c", "0" * 64, "cpu", 0.5)
    out = tmp_path / "results.csv"
    with CsvResultWriter(out, run) as writer:
        writer.write(ScanRecord(path="/old/a.png", status="error", error="old"))
    old = out.read_bytes()

    check_output(out)  # our own results file: may be replaced
    stopped = CsvResultWriter(out, run)
    stopped.close(completed=False)  # e.g. Ctrl-C before the first row
    assert out.read_bytes() == old and sorted(os.listdir(tmp_path)) == ["results.csv"]

    writer = CsvResultWriter(out, run)
    assert out.read_bytes() == old  # header written to the temporary file only
    writer.write(ScanRecord(path="/new/b.png", status="error", error="new"))
    assert [row["path"] for row in rows_of(out)] == ["/new/b.png"]  # swapped in with the first row
    writer.close()
    assert sorted(os.listdir(tmp_path)) == ["results.csv"]
