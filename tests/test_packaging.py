"""The wheel carries what the installed app needs: a non-editable install has its icon, its
desktop file and its commands. Built from this tree, installed into a fresh virtual
environment that borrows only the third-party packages of the running one."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(ROOT)], check=True, capture_output=True, text=True, timeout=300)
    (built,) = out.glob("dgs_desktop-*.whl")
    return built


def test_wheel_ships_icon_desktop_file_license_and_both_packages(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "dgs_desktop/gui/assets/dgs-desktop.png" in names
    assert "dgs_desktop/gui/assets/dgs-desktop.desktop" in names
    assert any(n.startswith("trainer/") for n in names)
    assert any(n.endswith("licenses/LICENSE") for n in names)
    metadata = next(n for n in names if n.endswith("METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "License-Expression: Apache-2.0" in text
    assert "Requires-Dist: tqdm" in text


def test_installed_wheel_starts_the_window_with_its_icon(wheel, tmp_path):
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    fresh_site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                     check=True, capture_output=True, text=True).stdout.strip())
    # The third-party packages of this environment, appended after the fresh site-packages
    # (a plain path line: the editable install's finder in this environment is not loaded).
    (fresh_site / "borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": ""}  # nothing of this checkout
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    probe = ("import dgs_desktop, sys; from PySide6.QtWidgets import QApplication; app = QApplication([]);"
             "from dgs_desktop.gui.icon import app_icon; icon = app_icon();"
             "print(dgs_desktop.__file__); print(icon.isNull(), icon.availableSizes()[0].width())")
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=120, env=env,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    location, icon = done.stdout.strip().splitlines()
    assert location.startswith(str(fresh_site)), location  # the wheel's copy, not this checkout
    assert icon == "False 256"
    assert (venv / "bin" / "dgs-desktop").is_file() and (venv / "bin" / "dgs-desktop-train").is_file()
