"""Hostile folders: one result (one CSV row) per file, a specific error for each bad one, the
same probability for each good one as when it is scanned alone, no crash, no hang, exit 0.

The files come from tests/imagegen.py (see its docstring for the list of cases).
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import imagegen
import pytest
import torch
from guards import time_limit

from dgs_desktop.scan.csvio import format_probability
from dgs_desktop.scan.decode import decode_image
from dgs_desktop.scan.discover import expand_paths
from dgs_desktop.scan.engine import ModelRunner, Scanner, prepare

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile") / "evidence"
    generated = imagegen.generate(root)
    yield generated
    imagegen.remove_tree(root)  # pytest's clean-up cannot delete the deeper-than-1000 tree


@pytest.fixture(scope="module")
def detector(tiny_checkpoint):
    from dgs_desktop.detector.scorer import load_scorer

    return load_scorer(tiny_checkpoint, "cpu")


@pytest.fixture(scope="module")
def engine_results(hostile, detector):
    paths = list(expand_paths([hostile.root]))
    with time_limit(240, "engine scan of the hostile folder"):
        results = list(Scanner(detector, CPU, workers=2).scan(paths))  # the CLI's default batch size
    return paths, results


def lone_probability(detector, path: Path) -> float:
    (result,) = Scanner(detector, CPU, workers=1).scan([path])  # same batch size, other company
    assert result.ok, result.error
    return result.fake_probability


def check_against_cases(hostile, rows: dict[str, dict]) -> None:
    """`rows`: path -> {status, error, notes, width, height, sha256}."""
    for case in hostile.cases:
        key = str(case.path)
        if not case.row:
            assert key not in rows, f"{case.path} is not a file and must not get a row"
            continue
        assert key in rows, f"no row for {case.category} case {case.path}"
        row = rows[key]
        if case.status is None:
            continue
        assert row["status"] == case.status, (case.path, row)
        if case.status == "error":
            assert row["fake_probability"] in ("", None)
            for text in case.error:
                assert text.lower() in row["error"].lower(), (case.category, case.path.name, row["error"])
        else:
            assert row["error"] == ""
            assert 0.0 <= float(row["fake_probability"]) <= 1.0
            assert row["sha256"] == hashlib.sha256(case.path.read_bytes()).hexdigest()
            if case.note:
                assert case.note.lower() in row["notes"].lower(), (case.path.name, row["notes"])
            if case.size:
                assert (int(row["width"]), int(row["height"])) == case.size, case.path.name


def test_discovery_lists_every_file_once_and_survives_deep_trees_and_loops(hostile):
    with time_limit(60, "discovery"):
        paths = list(expand_paths([hostile.root, hostile.root / "bad", hostile.root / "bad" / "empty.jpg"]))
    assert len(paths) == len(set(paths))
    assert {str(p) for p in paths} == {str(case.path) for case in hostile.rows()}
    assert any(len(p.parts) > imagegen.DEEP_LEVELS for p in paths)  # deeper than the recursion limit


def test_engine_gives_one_specific_row_per_file(hostile, engine_results):
    paths, results = engine_results
    assert [r.path for r in results] == [str(p) for p in paths]  # input order, none lost or doubled
    rows = {r.path: {"status": r.status, "error": r.error, "notes": "; ".join(r.notes), "sha256": r.sha256,
                     "width": r.width, "height": r.height,
                     "fake_probability": r.fake_probability} for r in results}
    check_against_cases(hostile, rows)
    for result in results:
        if not result.ok:
            assert "unexpected error" not in result.error and "Traceback" not in result.error, result


def test_good_files_score_the_same_as_when_scanned_alone(hostile, engine_results, detector):
    _, results = engine_results
    by_path = {r.path: r for r in results}
    good = [case for case in hostile.cases if case.good]
    assert len(good) >= 30
    for case in good:
        alone = lone_probability(detector, case.path)
        # Observed: ~1e-8 differences when the model runs while worker threads use torch's FFT
        # (shared intra-op thread pool); anything above float32 noise would be a real bug.
        assert by_path[str(case.path)].fake_probability == alone, case.path


@pytest.mark.slow
def test_cli_scans_the_hostile_folder_with_exit_0_and_no_traceback(hostile, engine_results, tiny_checkpoint,
                                                                   tmp_path):
    out = tmp_path / "hostile.csv"
    command = [sys.executable, "-m", "dgs_desktop", "scan", str(hostile.root), "--checkpoint",
               str(tiny_checkpoint.directory), "--csv", str(out), "--no-progress"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    with open(out, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    paths, results = engine_results
    assert len(rows) == len(paths)
    assert len({row["path"] for row in rows}) == len(rows)
    check_against_cases(hostile, {row["path"]: row for row in rows})
    expected = {r.path: r.fake_probability for r in results}
    for row in rows:
        if row["status"] == "ok":
            assert row["fake_probability"] == format_probability(expected[row["path"]])


def test_files_that_disappear_or_change_during_the_scan(tmp_path, detector):
    paths = imagegen.good_images(20, tmp_path / "moving")
    listed = list(expand_paths([tmp_path / "moving"]))
    replacement = tmp_path / "replacement.png"
    imagegen.noise_rgb(90, 70, seed=77).save(replacement)
    # After discovery, before the scan reaches them:
    paths[0].unlink()                                  # removed
    shutil.copyfile(replacement, paths[1])            # content replaced
    paths[2].unlink()
    paths[2].mkdir()                                   # replaced by a folder
    paths[3].unlink()
    os.mkfifo(paths[3])                                # replaced by a named pipe (must not hang)

    def while_scanning():  # removes the last file while the scan is already running
        for index, path in enumerate(listed):
            if index == 3:
                paths[-1].unlink()
            yield path

    with time_limit(60, "scan of changing files"):
        results = list(Scanner(detector, CPU, workers=1).scan(while_scanning()))
    assert [r.path for r in results] == [str(p) for p in listed]
    by_path = {r.path: r for r in results}
    assert "removed during the scan" in by_path[str(paths[0])].error
    assert "removed during the scan" in by_path[str(paths[-1])].error
    assert "folder" in by_path[str(paths[2])].error
    assert "named pipe" in by_path[str(paths[3])].error
    changed = by_path[str(paths[1])]
    assert changed.ok and changed.sha256 == hashlib.sha256(replacement.read_bytes()).hexdigest()
    assert (changed.width, changed.height) == (90, 70)
    assert changed.fake_probability == lone_probability(detector, replacement)
    assert sum(r.ok for r in results) == 16


def test_unreadable_files_and_folders_get_a_permission_error(tmp_path):
    """Mode-000 files. Root reads them anyway (CAP_DAC_OVERRIDE), so under root the check runs
    with the effective user switched to `nobody` for its duration (and the generated hostile
    folder expects those files to be scanned normally)."""
    shared = Path(tempfile.mkdtemp(prefix="dgs-perm-"))
    try:
        os.chmod(shared, 0o755)
        locked = shared / "locked.png"
        imagegen.noise_rgb(40, 40).save(locked)
        os.chmod(locked, 0)
        folder = shared / "locked-folder"
        folder.mkdir()
        imagegen.noise_rgb(40, 40).save(folder / "inside.png")
        os.chmod(folder, 0)
        switched = False
        if not imagegen.permission_denied_possible():
            if os.geteuid() != 0:
                pytest.skip("file permissions are not enforced for this user and it cannot switch user")
            try:
                os.seteuid(65534)
                switched = True
            except OSError:
                pytest.skip("running as root without the right to switch to an unprivileged user")
        try:
            paths = list(expand_paths([shared]))
            results = {p.name: prepare(p).result for p in paths}
        finally:
            if switched:
                os.seteuid(0)
        assert set(results) == {"locked.png", "locked-folder"}  # the folder itself is the row
        assert results["locked.png"].status == "error"
        assert "permission denied" in results["locked.png"].error
        assert "folder" in results["locked-folder"].error and "could not be read" in results["locked-folder"].error
    finally:
        imagegen.restore_permissions(shared)
        for path in shared.rglob("*"):
            if path.is_file():
                os.chmod(path, 0o644)
        shutil.rmtree(shared, ignore_errors=True)


def test_decode_never_opens_non_regular_files():
    """Device files are refused by their type before being opened (opening some has side effects)."""
    for special in ("/dev/zero", "/dev/null"):
        if os.path.exists(special):
            with time_limit(10, f"reading {special}"):
                with pytest.raises(Exception, match="not a regular file"):
                    decode_image(special)


# --------------------------------------------------------------------------- out of memory
class OomAbove(torch.nn.Module):
    """Wraps a detector; raises torch.OutOfMemoryError for batches larger than `limit`."""

    def __init__(self, inner: torch.nn.Module, limit: int):
        super().__init__()
        self.inner, self.limit, self.batch_sizes = inner, limit, []

    def forward(self, images):
        self.batch_sizes.append(images.shape[0])
        if images.shape[0] > self.limit:
            raise torch.OutOfMemoryError(f"CUDA out of memory (test: batch {images.shape[0]} > {self.limit})")
        return self.inner(images)


def test_out_of_memory_halves_the_batch_and_retries(tmp_path, detector, caplog):
    """On CPU the runner scores one image per forward pass; an accelerator's fixed forward size
    is simulated by setting it, and the detector raises OutOfMemoryError above `limit`."""
    paths = imagegen.good_images(24, tmp_path / "oom")
    reference = [r.fake_probability for r in Scanner(detector, CPU, batch_size=24, workers=2).scan(paths)]
    mosaics = [prepare(p).selection.mosaic for p in paths]

    flaky = OomAbove(detector, limit=5)
    runner = ModelRunner(flaky, CPU)
    runner.forward_size = 16  # as on a GPU with --batch-size 16
    scores = runner.score(mosaics)
    assert scores == pytest.approx(reference, abs=1e-6)
    assert runner.forward_size == 4  # 16 -> 8 -> 4, then kept for the rest of the scan
    assert flaky.batch_sizes[:3] == [16, 8, 4] and set(flaky.batch_sizes[3:]) == {4}

    # Through the whole scan: every file still scored, in order; the halving is logged and
    # every row scored at the smaller size says so (its last digits may differ).
    caplog.clear()
    scanner = Scanner(OomAbove(detector, limit=3), CPU, batch_size=16, workers=2)
    with caplog.at_level("WARNING", logger="dgs_desktop.scan.engine"):
        results = list(scanner.scan(paths))
    assert [r.status for r in results] == ["ok"] * len(paths)
    assert [r.fake_probability for r in results] == pytest.approx(reference, abs=1e-6)
    assert scanner.runner.forward_size == 2
    assert sum("out of memory" in record.getMessage() for record in caplog.records) == 3  # 16 -> 8 -> 4 -> 2
    for result in results:
        assert any("forward passes of 2 after running out of memory" in note for note in result.notes), result.notes

    fine = Scanner(detector, CPU, batch_size=8, workers=2)
    assert not any("out of memory" in note for r in fine.scan(paths) for note in r.notes)


def test_out_of_memory_even_at_batch_1_fails_rows_not_the_scan(tmp_path, detector):
    paths = imagegen.good_images(5, tmp_path / "oom1")
    (tmp_path / "oom1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    files = list(expand_paths([tmp_path / "oom1"]))
    scanner = Scanner(OomAbove(detector, limit=0), CPU, batch_size=4, workers=1)
    scanner.runner.forward_size = 4
    results = list(scanner.scan(files))
    assert len(results) == len(paths) + 1
    assert all(r.status == "error" for r in results)
    assert sum("OutOfMemoryError" in r.error for r in results) == len(paths)


# ------------------------------------------------------------------- names not in UTF-8
@pytest.fixture()
def non_utf8_folder(tmp_path):
    folder = tmp_path / "bytes-names"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9-latin1.png")  # a Latin-1 name: not valid UTF-8
    imagegen.noise_rgb(64, 64, seed=3).save(folder / name)
    imagegen.noise_rgb(64, 64, seed=4).save(folder / "plain.png")
    return folder, folder / name


def test_engine_scans_files_whose_names_are_not_utf8(non_utf8_folder, detector):
    folder, odd = non_utf8_folder
    results = list(Scanner(detector, CPU).scan(expand_paths([folder])))
    assert [r.status for r in results] == ["ok", "ok"]
    assert results[0].path == str(odd)


def test_cli_scans_files_whose_names_are_not_utf8(non_utf8_folder, tiny_checkpoint, tmp_path, capsys):
    from dgs_desktop.cli import main

    folder, odd = non_utf8_folder
    out = tmp_path / "names.csv"
    args = ["scan", str(folder), "--checkpoint", str(tiny_checkpoint.directory), "--csv", str(out),
            "--no-progress"]
    assert main(args) == 0
    out.read_bytes().decode("utf-8")  # strictly valid UTF-8
    with open(out, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    # The undecodable byte is written as the text \xe9; the exact name is in path_bytes_hex.
    assert [row["path"] for row in rows] == [str(folder) + "/caf\\xe9-latin1.png", str(folder / "plain.png")]
    assert bytes.fromhex(rows[0]["path_bytes_hex"]) == os.fsencode(odd) and rows[1]["path_bytes_hex"] == ""
    before = out.read_bytes()
    assert main(args + ["--resume"]) == 0  # matched by its bytes: nothing rescanned, nothing doubled
    assert out.read_bytes() == before
