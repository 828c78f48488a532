"""The real app in a real X server (Xvfb): paths, a checkpoint and a case on the command line,
the scan runs, the window saves a screenshot (scripts/window_screenshot.py drives the window
command) and exits; the case file then holds every file with its score, and the log file
what the window did."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from gui_helpers import make_mixed_folder
from PIL import Image

pytestmark = [pytest.mark.xvfb, pytest.mark.slow, pytest.mark.skipif(shutil.which("xvfb-run") is None,
                                                   reason="xvfb-run is not installed (apt-get install xvfb xauth)")]


SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "window_screenshot.py"


@pytest.mark.parametrize("size", ["1600x1000", "1024x700"])
def test_app_scans_command_line_paths_into_a_case_and_saves_screenshot(tmp_path, tiny_checkpoint, size):
    from dgs_desktop.case import read_case

    folder = make_mixed_folder(tmp_path / "photos")
    screenshot = tmp_path / "window.png"
    case = tmp_path / "inquiry.dgscase"
    logs = tmp_path / "logs"
    env = dict(os.environ, QT_QPA_PLATFORM="xcb", DGS_DESKTOP_SETTINGS=str(tmp_path / "settings.ini"),
               DGS_DESKTOP_LOG_DIR=str(logs))
    command = ["xvfb-run", "-a", "-s", f"-screen 0 {size}x24", sys.executable, str(SCRIPT),
               "--out", str(screenshot), "--size", size, "--timeout", "150",
               str(folder), "--checkpoint", str(tiny_checkpoint.directory), "--device", "cpu", "--case", str(case)]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=200)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert screenshot.is_file()
    with Image.open(screenshot) as image:
        assert image.width >= 800 and image.height >= 500
        colours = image.convert("RGB").resize((160, 100)).getcolors(maxcolors=100_000)
        assert colours is not None and len(colours) > 200  # a real picture, not a blank window
    info, files = read_case(case)
    assert info.checkpoint_sha256 == tiny_checkpoint.sha256
    assert len(files) == sum(1 for p in folder.rglob("*") if p.is_file())
    assert all(f.status in ("ok", "error") for f in files)
    logged = (logs / "dgs-desktop.log").read_text(encoding="utf-8")
    assert f"screenshot saved to {screenshot}" in logged
