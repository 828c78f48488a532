"""The headless scan end to end: folder with broken files, CSV contract, determinism, resume."""

import csv
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dgs_desktop.cli import main
from dgs_desktop.scan.csvio import COLUMNS

CONTRACT_COLUMNS = ["path", "sha256", "status", "fake_probability", "verdict", "threshold", "error"]


@pytest.fixture
def mixed_folder(tmp_path):
    folder = tmp_path / "evidence"
    (folder / "nested" / "deeper").mkdir(parents=True)
    rng = np.random.default_rng(11)
    for index in range(6):
        size = (int(rng.integers(40, 300)), int(rng.integers(40, 300)))
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / f"photo{index}.png")
    Image.fromarray(rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)).save(
        folder / "nested" / "deeper" / "jpeg_named.dat", format="JPEG")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "nested" / "empty.png").write_bytes(b"")
    (folder / "nested" / "readme.txt").write_text("notes")
    return folder


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_scan_folder_with_broken_files(mixed_folder, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "results.csv"
    code = main(["scan", str(mixed_folder), "--checkpoint", str(tiny_checkpoint.directory),
                 "--csv", str(out), "--no-progress", "--batch-size", "3"])
    assert code == 0
    rows = read_rows(out)
    files = sorted(str(p) for p in mixed_folder.rglob("*") if p.is_file())
    assert sorted(row["path"] for row in rows) == files  # one row per file, no more
    with open(out, newline="") as handle:
        header = next(csv.reader(handle))
    assert header == list(COLUMNS) and header[:7] == CONTRACT_COLUMNS
    by_name = {row["path"].rsplit("/", 1)[-1]: row for row in rows}
    assert by_name["jpeg_named.dat"]["status"] == "ok"  # recognised by content, not suffix
    assert by_name["jpeg_named.dat"]["format"] == "JPEG"
    for name, reason in [("broken.jpg", "damaged"), ("empty.png", "empty file"), ("readme.txt", "not an image")]:
        row = by_name[name]
        assert row["status"] == "error" and reason in row["error"] and row["fake_probability"] == ""
    ok = [row for row in rows if row["status"] == "ok"]
    assert len(ok) == 7
    for row in ok:
        probability = float(row["fake_probability"])
        assert 0.0 <= probability <= 1.0
        reasons = row["inconclusive_reasons"]
        assert row["verdict"] == ("inconclusive" if reasons else "fake" if probability > 0.5 else "real")
        assert len(row["sha256"]) == 64 and row["checkpoint_sha256"] == tiny_checkpoint.sha256
        assert row["device"] == "cpu" and row["width"] and row["height"]
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    assert "Scanned 10 files" in summary and "3 failed" in summary


def test_same_file_scored_twice_gives_identical_probability(mixed_folder, tiny_checkpoint, tmp_path):
    image = mixed_folder / "photo0.png"
    copy = tmp_path / "copy_of_photo0.png"
    copy.write_bytes(image.read_bytes())
    outs = []
    # alone (padded batch), then among other files at another position, with a copy
    for index, paths in enumerate([[image], [mixed_folder, copy]]):
        out = tmp_path / f"run{index}.csv"
        assert main(["scan", *map(str, paths), "--checkpoint", str(tiny_checkpoint.directory),
                     "--csv", str(out), "--no-progress", "--batch-size", "4"]) == 0
        outs.append({row["path"]: row["fake_probability"] for row in read_rows(out)})
    assert outs[0][str(image)] == outs[1][str(image)] == outs[1][str(copy)]


def test_resume_skips_done_files_and_repairs_a_cut_last_line(mixed_folder, tiny_checkpoint, tmp_path):
    out = tmp_path / "results.csv"
    args = ["scan", str(mixed_folder), "--checkpoint", str(tiny_checkpoint.directory), "--csv", str(out),
            "--no-progress"]
    assert main(args) == 0
    full = read_rows(out)
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:4]) + lines[4][:25])  # header + 3 rows + half a row
    assert main(args + ["--resume"]) == 0
    resumed = read_rows(out)
    assert sorted(r["path"] for r in resumed) == sorted(r["path"] for r in full)
    assert {r["path"]: r["fake_probability"] for r in resumed} == {r["path"]: r["fake_probability"] for r in full}


@pytest.mark.parametrize("extra, message", [
    (["--checkpoint", "/nonexistent/ckpt"], "does not exist"),
    ([], "No DGS-Net model is configured"),
    (["--batch-size", "0"], "--batch-size"),
    (["--threshold", "2"], "--threshold"),
])
def test_bad_arguments_give_one_line_and_exit_2(mixed_folder, tmp_path, tiny_checkpoint, extra, message):
    args = [sys.executable, "-m", "dgs_desktop", "scan", str(mixed_folder), "--csv", str(tmp_path / "o.csv")]
    if "--checkpoint" not in extra and message != "No DGS-Net model is configured":
        args += ["--checkpoint", str(tiny_checkpoint.directory)]
    done = subprocess.run(args + extra, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_window_without_a_display_says_so(tmp_path):
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY",
                                                                          "QT_QPA_PLATFORM")}
    done = subprocess.run([sys.executable, "-m", "dgs_desktop"], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2
    assert "no display" in done.stderr and "dgs-desktop scan" in done.stderr


def test_both_programs_list_their_commands_and_refuse_a_mistyped_one(tmp_path, capsys):
    from dgs_desktop.cli import main
    from trainer.cli import main as train_main

    folder = tmp_path / "scna"  # a mistyped command never opens a window, even on a real folder name
    assert main(["scna", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown command 'scna'" in err
    assert all(name in err for name in ("scan", "import-weights", "report", "window"))
    assert not folder.exists()
    assert train_main(["evaluat", "--checkpoint", "x"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'evaluat'" in err and "evaluate" in err and "publish" in err
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("scan", "import-weights", "report", "window"))


@pytest.mark.parametrize("argv", [["scan", ".", "--csv", "o.csv", "--workers", "x"],
                                  ["scan", ".", "--csv", "o.csv", "--threshold", "1.5"],
                                  ["scan", "."]])
def test_argument_errors_are_one_line_with_exit_2(argv, capsys):
    from dgs_desktop.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dgs-desktop scan: error:") and "--help" in err
