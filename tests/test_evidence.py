"""Evidence untouched: a scan never changes the scanned files (bytes, modification times,
modes, and where the OS allows it access times) and never writes anything next to them."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import imagegen
import pytest


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under `root` (not following symlinks): type, size, mode, mtime, content hash."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            info = os.lstat(path)
            digest = None
            if os.path.isfile(path) and not os.path.islink(path) and info.st_size < (1 << 26):
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
            state[os.path.relpath(path, root)] = (info.st_mode, info.st_size, info.st_mtime_ns, digest)
        dir_info = os.lstat(dirpath)
        state[os.path.relpath(dirpath, root) + "/"] = (dir_info.st_mode, dir_info.st_mtime_ns)
    return state


def access_times(root: Path) -> dict[str, int]:
    return {str(p): os.lstat(p).st_atime_ns for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


@pytest.fixture()
def evidence(tmp_path):
    root = tmp_path / "case-0042"
    imagegen.good_images(12, root / "camera", size=96, fmt="JPEG")
    imagegen.good_images(6, root / "phone", size=80, fmt="PNG")
    (root / "docs").mkdir()
    (root / "docs" / "notes.txt").write_text("not an image\n")
    (root / "docs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (root / "docs" / "empty.jpg").write_bytes(b"")
    os.symlink("camera/img00000.jpeg", root / "link.jpeg")
    old = 1_500_000_000_000_000_000  # 2017: the mtimes an examiner would see
    for path in sorted(root.rglob("*"), reverse=True):
        if not path.is_symlink():
            os.utime(path, ns=(old, old))
    os.utime(root, ns=(old, old))
    return root


def test_engine_scan_changes_nothing_and_writes_nothing_next_to_the_files(evidence, tiny_checkpoint):
    from dgs_desktop.detector.scorer import load_scorer
    from dgs_desktop.scan.discover import expand_paths
    from dgs_desktop.scan.engine import Scanner

    before, atimes = snapshot(evidence), access_times(evidence)
    detector = load_scorer(tiny_checkpoint, "cpu")
    results = list(Scanner(detector, __import__("torch").device("cpu"), batch_size=4).scan(expand_paths([evidence])))
    # 18 images + 3 broken/non-images + the symlink to an image, which is its own row
    assert sum(r.ok for r in results) == 19 and len(results) == 22
    link = next(r for r in results if r.path.endswith("link.jpeg"))
    assert f"same file as {evidence / 'camera' / 'img00000.jpeg'}" in link.notes
    assert snapshot(evidence) == before
    if hasattr(os, "O_NOATIME"):  # read with O_NOATIME (owner or root): access times kept too
        assert access_times(evidence) == atimes


def test_cli_scan_changes_nothing_and_writes_only_the_csv(evidence, tiny_checkpoint, tmp_path):
    from dgs_desktop.cli import main

    out_dir = tmp_path / "report"
    out_dir.mkdir()
    before = snapshot(evidence)
    args = ["scan", str(evidence), "--checkpoint", str(tiny_checkpoint.directory), "--csv",
            str(out_dir / "scan.csv"), "--no-progress"]
    assert main(args) == 0
    assert main(args + ["--resume"]) == 0
    assert snapshot(evidence) == before  # same entries: nothing created, renamed or touched
    assert sorted(os.listdir(out_dir)) == ["scan.csv"]
    # and the checkpoint is only read
    assert not any(p.name.endswith((".tmp", ".lock")) for p in Path(tiny_checkpoint.directory).iterdir())


def test_scanning_a_file_by_its_own_path_leaves_its_folder_alone(evidence, tiny_checkpoint, tmp_path, capsys,
                                                                monkeypatch):
    from dgs_desktop.cli import main

    for name in [m for m in sys.modules if m.startswith("dgs_desktop.gui")]:  # an earlier test's window
        monkeypatch.delitem(sys.modules, name)

    target = evidence / "camera" / "img00003.jpeg"
    before = snapshot(evidence)
    assert main(["scan", str(target), "--checkpoint", str(tiny_checkpoint.directory), "--csv",
                 str(tmp_path / "one.csv"), "--no-progress"]) == 0
    assert snapshot(evidence) == before
    assert "Traceback" not in capsys.readouterr().err
    assert sys.modules.get("dgs_desktop.gui.app") is None  # the headless scan does not load the GUI
