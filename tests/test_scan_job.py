"""ScanJob on its own (no model): resume skips the files already in the CSV, rows from another
run are refused without --force, Ctrl-C keeps every finished row, and a failed check touches nothing."""

from __future__ import annotations

import csv

import pytest
from PIL import Image

from dgs_desktop.errors import UsageError
from dgs_desktop.record import RunInfo, ScanRecord
from dgs_desktop.scan.job import ScanJob

RUN = RunInfo(checkpoint="tiny", checkpoint_sha256="ab" * 32, device="cpu", threshold=0.5)


@pytest.fixture
def folder(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for index in range(4):
        Image.new("RGB", (8, 8), (index * 40, 0, 0)).save(images / f"img{index}.png")
    return images


def scored(paths, probability=0.75):
    for path in paths:
        yield ScanRecord(path=str(path), status="ok", sha256="cd" * 32, fake_probability=probability)


def rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def start(folder, out, run=RUN, **options) -> tuple[ScanJob, list]:
    job = ScanJob([str(folder)], str(out), run, **options)
    job.check()
    return job, job.open()


def test_a_run_writes_one_row_per_file_and_counts_verdicts(folder, tmp_path):
    out = tmp_path / "results.csv"
    job, files = start(folder, out)
    summary = job.run(scored(files), len(files), RUN.threshold)
    assert len(files) == 4 and summary.progress.done == 4 and summary.counts["fake"] == 4
    assert sorted(row["path"] for row in rows(out)) == sorted(str(path) for path in files)


def test_resume_skips_what_is_done(folder, tmp_path):
    out = tmp_path / "results.csv"
    job, files = start(folder, out)
    job.run(scored(files[:2]), len(files), RUN.threshold)
    job, remaining = start(folder, out, resume=True)
    assert job.skipped == 2 and sorted(remaining) == sorted(files[2:])
    job.run(scored(remaining), len(remaining), RUN.threshold)
    assert sorted(row["path"] for row in rows(out)) == sorted(str(path) for path in files)


def test_rows_from_another_run_need_force(folder, tmp_path):
    out = tmp_path / "results.csv"
    job, files = start(folder, out)
    job.run(scored(files[:1]), len(files), RUN.threshold)
    before = out.read_bytes()
    other = RunInfo(checkpoint="tiny", checkpoint_sha256="ef" * 32, device="cpu", threshold=0.5)
    with pytest.raises(UsageError, match="another run"):
        ScanJob([str(folder)], str(out), other, resume=True).check()
    assert out.read_bytes() == before  # a refused run leaves the results file as it was
    with pytest.raises(UsageError, match="--force only applies"):
        ScanJob([str(folder)], str(out), other, force=True).check()
    job, remaining = start(folder, out, run=other, resume=True, force=True)
    assert len(remaining) == 3


def test_ctrl_c_keeps_every_finished_row(folder, tmp_path):
    out = tmp_path / "results.csv"
    job, files = start(folder, out)

    def interrupted():
        yield from scored(files[:3])
        raise KeyboardInterrupt

    summary = job.run(interrupted(), len(files), RUN.threshold)
    assert summary.interrupted and summary.progress.done == 3
    assert len(rows(out)) == 3


def test_ctrl_c_before_any_row_leaves_an_old_file_as_it_was(folder, tmp_path):
    out = tmp_path / "results.csv"
    job, files = start(folder, out)
    job.run(scored(files[:1]), len(files), RUN.threshold)
    before = out.read_bytes()
    job, remaining = start(folder, out, resume=True)

    def interrupted_at_once():
        raise KeyboardInterrupt
        yield  # a generator

    assert job.run(interrupted_at_once(), len(remaining), RUN.threshold).interrupted
    assert out.read_bytes() == before


def test_run_before_open_is_a_programming_error(folder, tmp_path):
    job = ScanJob([str(folder)], str(tmp_path / "results.csv"), RUN)
    job.check()
    with pytest.raises(RuntimeError, match="open"):
        job.run([], 0, RUN.threshold)
