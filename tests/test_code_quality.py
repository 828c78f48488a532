"""The project's own rules, run with the tests so CI enforces them: ruff (lint and import
order), the import-linter contracts in pyproject.toml (Qt only under dgs_desktop/gui/; the
detector and scan cores never import the window or the trainer; the layers; no import cycles
inside any package) and mypy with its [tool.mypy] settings (strict on the detector, the scan,
the record, the case, the report and the verdict)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run `pip install -e .[test]`")
    return found


def test_ruff_finds_nothing():
    done = subprocess.run([_tool("ruff"), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_import_contracts_are_kept():
    done = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "broken" not in done.stdout.split("Contracts:")[-1].replace("0 broken", "")


def test_mypy_finds_nothing():
    # a cold run (no .mypy_cache) reads torch's and transformers' annotations: about a minute
    done = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
