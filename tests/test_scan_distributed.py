"""`torchrun --nproc_per_node=2 -m dgs_desktop scan ...` on CPU (gloo): one CSV with exactly one
row per file, the same content as a single-process scan, and `--resume` after a rank is killed."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dgs_desktop.cli import main
from dgs_desktop.scan.csvio import COLUMNS
from dgs_desktop.scan.distributed import existing_parts, rank_of

pytestmark = pytest.mark.slow  # subprocesses / end to end: `pytest -m 'not slow'` skips them

ROOT = Path(__file__).resolve().parents[1]
DEVICE_LABEL = re.compile(r"cpu rank ([01])/2 \S+")


def make_folder(root: Path, count: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    for index in range(count):
        size = (int(rng.integers(24, 200)), int(rng.integers(24, 200)))
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(root / f"img{index:03d}.png")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return root


def rows_by_path(path: Path) -> dict[str, dict]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == COLUMNS and all(len(row) == len(COLUMNS) for row in rows[1:])
    by_path = {row[0]: dict(zip(COLUMNS, row)) for row in rows[1:]}
    assert len(by_path) == len(rows) - 1, "a file has two rows"
    return by_path


def torchrun(args, checkpoint, out, *extra) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "dgs_desktop",
         "scan", *map(str, args), "--checkpoint", str(checkpoint.directory), "--csv", str(out), "--device", "cpu",
         "--no-progress", "--batch-size", "4", *extra],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def single_process_reference(folder, checkpoint, out) -> dict[str, dict]:
    assert main(["scan", str(folder), "--checkpoint", str(checkpoint.directory), "--csv", str(out), "--device", "cpu",
                 "--no-progress", "--batch-size", "4"]) == 0
    return rows_by_path(out)


def assert_same_as_single_process(rows, reference):
    assert sorted(rows) == sorted(reference)  # exactly one row per file
    for path, row in rows.items():
        rank = DEVICE_LABEL.fullmatch(row["device"])
        assert rank, row["device"]
        assert int(rank.group(1)) == rank_of(path, 2)  # the stable assignment
        assert {**row, "device": ""} == {**reference[path], "device": ""}


def test_two_ranks_write_one_csv_identical_to_a_single_process_scan(tiny_checkpoint, tmp_path):
    folder = make_folder(tmp_path / "images", 14, seed=1)
    reference = single_process_reference(folder, tiny_checkpoint, tmp_path / "single.csv")
    out = tmp_path / "dist.csv"
    proc = torchrun([folder], tiny_checkpoint, out)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    rows = rows_by_path(out)
    assert_same_as_single_process(rows, reference)
    assert {row["device"].split()[2] for row in rows.values()} == {"0/2", "1/2"}
    assert existing_parts(out) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["dist.csv", "images",
                                                                                         "single.csv"]


def rank_pid(out: Path, rank: int) -> int | None:
    """The pid of the torchrun worker with RANK=rank scanning into `out`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if os.fsencode(str(out)) in cmdline and b"RANK=%d" % rank in environ and b"dgs_desktop" in cmdline:
            return int(entry.name)
    return None


def test_resume_after_a_rank_was_killed(tiny_checkpoint, tmp_path):
    folder = make_folder(tmp_path / "images", 60, seed=2)
    reference = single_process_reference(folder, tiny_checkpoint, tmp_path / "single.csv")
    out = tmp_path / "dist.csv"
    proc = torchrun([folder], tiny_checkpoint, out, "--workers", "1")
    part = out.with_name(out.name + ".part1of2")
    try:
        deadline = time.monotonic() + 240
        while not (part.exists() and part.read_bytes().count(b"\n") >= 6):
            assert proc.poll() is None, "the scan ended before a rank could be killed: " + proc.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        pid = rank_pid(out, 1)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert existing_parts(out), "the killed run left its rows in part files"
    scanned_before = sum(p.read_bytes().count(b"\n") - 1 for p in existing_parts(out))
    assert 5 <= scanned_before < 61

    resumed = torchrun([folder], tiny_checkpoint, out, "--resume")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-3000:]
    assert_same_as_single_process(rows_by_path(out), reference)
    assert existing_parts(out) == []


def test_single_process_resume_folds_leftover_parts(tiny_checkpoint, tmp_path, capsys):
    """Parts of an interrupted torchrun scan count as done for a plain `--resume` too."""
    folder = make_folder(tmp_path / "images", 6, seed=3)
    reference = single_process_reference(folder, tiny_checkpoint, tmp_path / "single.csv")
    lines = (tmp_path / "single.csv").read_bytes().splitlines(keepends=True)
    out = tmp_path / "out.csv"
    out.write_bytes(lines[0] + lines[1])
    (tmp_path / "out.csv.part0of2").write_bytes(lines[0] + b"".join(lines[2:4]))
    (tmp_path / "out.csv.part1of2").write_bytes(lines[0] + lines[4] + lines[5][:20])  # a half row
    capsys.readouterr()
    assert main(["scan", str(folder), "--checkpoint", str(tiny_checkpoint.directory), "--csv", str(out),
                 "--device", "cpu", "--no-progress", "--batch-size", "4", "--resume"]) == 0
    assert "Scanned 3 files" in capsys.readouterr().err  # 4 rows folded in, the half row rescanned
    assert rows_by_path(out) == reference
    assert out.read_bytes().startswith(lines[0] + lines[1])
    assert existing_parts(out) == []


def test_a_foreign_file_with_a_part_name_is_never_merged_or_removed(tiny_checkpoint, tmp_path, capsys):
    folder = make_folder(tmp_path / "images", 2, seed=4)
    foreign = tmp_path / "out.csv.part0of2"
    foreign.write_text("my own notes, not a scan\n")
    code = main(["scan", str(folder), "--checkpoint", str(tiny_checkpoint.directory), "--csv",
                 str(tmp_path / "out.csv"), "--no-progress", "--resume"])
    assert code == 2 and "not a DGS Desktop scan CSV" in capsys.readouterr().err
    assert foreign.read_text() == "my own notes, not a scan\n"


@pytest.mark.parametrize("world_size", [2, 3, 8])
def test_assignment_is_stable_and_covers_every_rank(world_size):
    paths = [f"/case/{i}/img.jpg" for i in range(400)]
    ranks = [rank_of(p, world_size) for p in paths]
    assert ranks == [rank_of(p, world_size) for p in paths] and set(ranks) == set(range(world_size))


def test_a_fresh_scan_discards_leftover_parts(tiny_checkpoint, tmp_path):
    """Rows of an earlier interrupted run must not be folded into a new scan by a later --resume."""
    folder = make_folder(tmp_path / "images", 2, seed=5)
    out = tmp_path / "out.csv"
    stale = tmp_path / "out.csv.part1of2"
    stale.write_text(",".join(COLUMNS) + "\n")
    assert main(["scan", str(folder), "--checkpoint", str(tiny_checkpoint.directory), "--csv", str(out),
                 "--no-progress"]) == 0
    assert not stale.exists() and len(rows_by_path(out)) == 3
