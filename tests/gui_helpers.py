"""Shared set-up for the GUI tests: sample image folders and a ready window."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image


def make_images(folder: Path, count: int, size=(96, 128), seed: int = 0, fmt: str = "png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = rng.integers(0, 255, (size[0], size[1], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i:03d}.{fmt}")
    return folder


def make_mixed_folder(folder: Path) -> Path:
    """A dozen varied images (smooth gradients + noise, different sizes), a tiny one, a broken one."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    for i, (h, w) in enumerate([(256, 256), (240, 320), (300, 200), (224, 224), (320, 256), (256, 384),
                                (230, 250), (288, 288), (256, 300), (260, 260)]):
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([(x * (i + 1)) % 256, (y * 2) % 256, ((x + y) * 3) % 256], axis=2).astype(np.float32)
        noise_mask = (x // 64 + y // 64 + i) % 2 == 0
        base[noise_mask] += rng.normal(0, 40, (int(noise_mask.sum()), 3))
        Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(folder / f"sample{i:02d}.{'png' if i % 2 else 'jpg'}")
    Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(folder / "tiny.png")
    sub = folder / "nested"
    sub.mkdir(exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (250, 250, 3), dtype=np.uint8)).save(sub / "deep.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    return folder


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def cli_csv(folder: Path, checkpoint_dir: Path, out: Path) -> Path:
    from dgs_desktop.cli import main

    assert main(["scan", str(folder), "--checkpoint", str(checkpoint_dir), "--csv", str(out),
                 "--no-progress", "--device", "cpu"]) == 0
    return out


SCAN_TIMEOUT_MS = 60_000


def open_window(qtbot, checkpoint=None, settings_path=None):
    """A shown MainWindow with its libraries loading; with `checkpoint`, waits until it is ready."""
    from dgs_desktop.gui.main_window import MainWindow
    from dgs_desktop.gui.model_controller import READY
    from dgs_desktop.gui.settings import AppSettings

    window = MainWindow(AppSettings(settings_path))
    qtbot.addWidget(window, before_close_func=discard_on_close)
    window.show()
    window.controller.start()
    if checkpoint is not None:
        window.models.load(str(checkpoint.directory), "cpu")
        qtbot.waitUntil(lambda: window.controller.state == READY, timeout=SCAN_TIMEOUT_MS)
    return window


def scan_paths(qtbot, window, paths) -> None:
    """Adds `paths` and waits until the window has scanned everything."""
    with qtbot.waitSignal(window.scan_finished, timeout=SCAN_TIMEOUT_MS):
        window.intake.add_paths([str(p) for p in paths])
    assert not window.scans.scanning


def discard_on_close(window) -> None:
    """Lets a test's window close without the unsaved-results question."""
    window._closing = True
