"""Nothing lost: a headless scan killed with SIGKILL leaves a valid CSV (complete rows only),
and `--resume` finishes it with no file missing or doubled. Unusable output locations are
reported before any work starts."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import imagegen
import pytest
import torch

from dgs_desktop.scan.csvio import COLUMNS

pytestmark = pytest.mark.slow  # subprocesses / end to end: `pytest -m 'not slow'` skips them

N_IMAGES = 400


def scan_command(paths, checkpoint, out, *extra) -> list[str]:
    return [sys.executable, "-m", "dgs_desktop", "scan", *map(str, paths), "--checkpoint", str(checkpoint),
            "--csv", str(out), "--no-progress", *extra]


def data_rows(path: Path) -> int:
    try:
        return max(0, path.read_bytes().count(b"\n") - 1)
    except FileNotFoundError:
        return 0


def read_valid_csv(path: Path) -> list[dict]:
    data = path.read_bytes()
    assert data.endswith(b"\n"), "the last row is incomplete"
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == COLUMNS
    assert all(len(row) == len(COLUMNS) for row in rows[1:]), "a row is incomplete"
    for row in rows[1:]:
        record = dict(zip(COLUMNS, row))
        assert record["status"] in ("ok", "error")
        if record["status"] == "ok":
            assert 0.0 <= float(record["fake_probability"]) <= 1.0 and len(record["sha256"]) == 64
    return [dict(zip(COLUMNS, row)) for row in rows[1:]]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill") / "images"
    imagegen.good_images(N_IMAGES, root, size=64)
    (root / "zz-broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return root


def test_sigkill_leaves_complete_rows_and_resume_finishes_without_gaps_or_duplicates(folder, tiny_checkpoint,
                                                                                     tmp_path):
    out = tmp_path / "scan.csv"
    proc = subprocess.Popen(scan_command([folder], tiny_checkpoint.directory, out, "--batch-size", "1",
                                         "--workers", "1"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while data_rows(out) < 25:
            assert proc.poll() is None, "the scan ended before it could be killed: " + proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the scan wrote no rows in time"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    partial = read_valid_csv(out)
    expected = sorted(str(p) for p in folder.iterdir())
    assert 25 <= len(partial) < len(expected), "the kill did not land part-way"
    assert len({row["path"] for row in partial}) == len(partial)

    # A power cut can also leave half a row: --resume must cut it off and rescan that file.
    with open(out, "ab") as handle:
        handle.write(b"/half/a/row.png,abc")
    resumed = subprocess.run(scan_command([folder], tiny_checkpoint.directory, out, "--resume"),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "Traceback" not in resumed.stderr
    rows = read_valid_csv(out)
    paths = [row["path"] for row in rows]
    assert sorted(paths) == expected  # every file exactly once
    assert rows[: len(partial)] == partial  # the rows written before the kill are kept as they were

    # The probabilities match a scan that was never interrupted (in-process, same checkpoint).
    from dgs_desktop.detector.scorer import load_scorer
    from dgs_desktop.scan.discover import expand_paths
    from dgs_desktop.scan.engine import Scanner

    scanner = Scanner(load_scorer(tiny_checkpoint, "cpu"), torch.device("cpu"), batch_size=32)
    reference = {r.path: r for r in scanner.scan(expand_paths([folder]))}
    for row in rows:
        ref = reference[row["path"]]
        assert row["status"] == ref.status and row["sha256"] == ref.sha256
        if ref.ok:
            assert float(row["fake_probability"]) == pytest.approx(ref.fake_probability, abs=1e-6)


def test_ctrl_c_exits_130_and_keeps_every_finished_row(folder, tiny_checkpoint, tmp_path):
    out = tmp_path / "interrupted.csv"
    proc = subprocess.Popen(scan_command([folder], tiny_checkpoint.directory, out, "--batch-size", "1",
                                         "--workers", "1"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while data_rows(out) < 10:
            assert proc.poll() is None, "the scan ended before it could be interrupted: " + proc.stderr.read()
            assert time.monotonic() < deadline, "the scan wrote no rows in time"
            time.sleep(0.005)
        seen = data_rows(out)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "--resume" in err
    rows = read_valid_csv(out)
    assert seen <= len(rows) < N_IMAGES + 1
    assert len({row["path"] for row in rows}) == len(rows)


def test_resume_of_a_finished_csv_rescans_nothing(folder, tiny_checkpoint, tmp_path, capsys):
    from dgs_desktop.cli import main

    few = sorted(folder.iterdir())[:5]
    out = tmp_path / "done.csv"
    args = ["scan", *map(str, few), "--checkpoint", str(tiny_checkpoint.directory), "--csv", str(out),
            "--no-progress"]
    assert main(args) == 0
    first = out.read_bytes()
    assert main(args + ["--resume"]) == 0
    assert out.read_bytes() == first
    assert "0 files" in capsys.readouterr().err


# ------------------------------------------------------------------ unusable output locations
def _fails_before_work(args, capsys, *needles):
    from dgs_desktop.cli import main

    start = time.perf_counter()
    code = main(args)
    err = capsys.readouterr().err
    assert code != 0
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dgs-desktop: error:"), err
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Scanned" not in err
    return time.perf_counter() - start


def test_missing_output_folder_is_refused_before_work(folder, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "no" / "such" / "folder" / "scan.csv"
    _fails_before_work(["scan", str(folder), "--checkpoint", str(tiny_checkpoint.directory), "--csv", str(out),
                        "--no-progress"], capsys, "does not exist")
    assert not out.parent.exists()


def test_output_under_a_file_or_onto_a_folder_is_refused(folder, tiny_checkpoint, tmp_path, capsys):
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    _fails_before_work(["scan", str(folder), "--checkpoint", str(tiny_checkpoint.directory), "--csv",
                        str(a_file / "scan.csv"), "--no-progress"], capsys, "does not exist")
    a_folder = tmp_path / "a-folder"
    a_folder.mkdir()
    _fails_before_work(["scan", str(folder), "--checkpoint", str(tiny_checkpoint.directory), "--csv",
                        str(a_folder), "--no-progress"], capsys, "cannot write")


def test_unwritable_output_folder_is_refused_before_work(folder, tiny_checkpoint, tmp_path, capsys):
    """Root may write anywhere, so under root this runs with the effective user `nobody`."""
    import tempfile

    shared = Path(tempfile.mkdtemp(prefix="dgs-ro-"))
    switched = False
    try:
        os.chmod(shared, 0o555)  # readable, not writable
        if os.geteuid() == 0:
            if imagegen.permission_denied_possible():
                pass  # root without CAP_DAC_OVERRIDE: permissions apply as they are
            else:
                try:
                    os.seteuid(65534)
                    switched = True
                except OSError:
                    pytest.skip("running as root without the right to switch to an unprivileged user")
        elif os.access(shared, os.W_OK):
            pytest.skip("this user can write into a mode-555 folder")
        # `nobody` cannot read the checkpoint or the images under root's 0700 tmp: only the CSV
        # check is exercised, which must come first in the order of checks that need no work.
        from dgs_desktop.scan.csvio import CsvError, CsvResultWriter, RunInfo

        # (os.access checks the real user, so under a switched effective user the refusal comes
        # from open(): "Permission denied"; either way before anything is scanned.)
        with pytest.raises(CsvError, match="not writable|Permission denied"):
            CsvResultWriter(shared / "scan.csv", RunInfo("c", "0" * 64, "cpu", 0.5))
    finally:
        if switched:
            os.seteuid(0)
        os.chmod(shared, 0o755)
        os.rmdir(shared)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full to simulate a full disk")
def test_full_disk_gives_a_clear_message(folder, tiny_checkpoint, capsys):
    _fails_before_work(["scan", str(folder), "--checkpoint", str(tiny_checkpoint.directory), "--csv",
                        "/dev/full", "--no-progress"], capsys, "No space left")
