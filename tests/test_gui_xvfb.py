"""The real app in a real X server (Xvfb): paths and a checkpoint on the command line, the scan
runs, the window saves a screenshot (DGS_DESKTOP_SCREENSHOT) and exits."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from gui_helpers import make_mixed_folder
from PIL import Image

pytestmark = pytest.mark.skipif(shutil.which("xvfb-run") is None,
                                reason="xvfb-run is not installed (apt-get install xvfb xauth)")


def test_app_scans_command_line_paths_and_saves_screenshot(tmp_path, tiny_checkpoint):
    folder = make_mixed_folder(tmp_path / "photos")
    screenshot = tmp_path / "window.png"
    env = dict(os.environ, QT_QPA_PLATFORM="xcb", DGS_DESKTOP_SCREENSHOT=str(screenshot),
               DGS_DESKTOP_SETTINGS=str(tmp_path / "settings.ini"), DGS_DESKTOP_SCREENSHOT_TIMEOUT="150")
    command = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", sys.executable, "-m", "dgs_desktop",
               str(folder), "--checkpoint", str(tiny_checkpoint.directory), "--device", "cpu"]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=200)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert screenshot.is_file()
    with Image.open(screenshot) as image:
        assert image.width >= 800 and image.height >= 500
        colours = image.convert("RGB").resize((160, 100)).getcolors(maxcolors=100_000)
        assert colours is not None and len(colours) > 200  # a real picture, not a blank window
