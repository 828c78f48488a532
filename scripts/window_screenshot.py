"""Runs the real window on the given window arguments, and once the scan of the command-line
paths has finished and the first row's evidence is shown, saves a screenshot and exits.

    PYTHONPATH=. xvfb-run -a -s "-screen 0 1360x860x24" .venv/bin/python scripts/window_screenshot.py \\
        --out docs/screenshot.png [--size 1360x860] [--timeout 300] PATH... --checkpoint CKPT [--case FILE]

Used by tests/test_gui_xvfb.py and to make the README picture. Exit status: 0 saved, 2 the
model could not be loaded, 3 the wait passed --timeout (a screenshot is saved anyway), 4 the
screenshot could not be written; other statuses are the window command's own (bad arguments).
"""

from __future__ import annotations

import argparse
import logging
import sys

from dgs_desktop.cli.shell import Command, positive_float, run_cli
from dgs_desktop.cli.window import add_window_arguments, run_window

log = logging.getLogger("window_screenshot")


def window_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if width < 200 or height < 200:
        raise argparse.ArgumentTypeError(f"the window must be at least 200x200, got {text}")
    return width, height


class ScreenshotOnFinish:
    """Saves the window once the scan is done and the detail pane shows the first row, then exits."""

    def __init__(self, window, app, path: str, timeout_s: float):
        from PySide6.QtCore import QTimer

        self.window, self.app, self.path = window, app, path
        self._saved = False
        window.scan_finished.connect(self._scan_finished)
        window.controller.state_changed.connect(self._model_state)
        QTimer.singleShot(int(timeout_s * 1000), lambda: self._save(exit_code=3))

    def _model_state(self, state: str, message: str) -> None:
        from PySide6.QtCore import QTimer

        from dgs_desktop.gui.model_controller import FAILED, NO_MODEL

        if state == FAILED or (state == NO_MODEL and "could not" in message):
            QTimer.singleShot(300, lambda: self._save(exit_code=2))

    def _scan_finished(self, cancelled: bool) -> None:
        from PySide6.QtCore import QTimer

        window = self.window
        if window.scans.scanning or not window.model.rows:
            return
        target = next((row for row in window.model.rows if row.state == "ok"), window.model.rows[0])
        window.detail.loaded.connect(lambda path: QTimer.singleShot(400, self._save))
        if window.detail.current_path == target.path and window.detail.evidence_shown:
            QTimer.singleShot(400, self._save)
        else:
            window.select_path(target.path)

    def _save(self, exit_code: int = 0) -> None:
        if self._saved:
            return
        self._saved = True
        ok = self.window.grab().save(self.path)
        (log.info if ok else log.error)("screenshot %s %s", "saved to" if ok else "could NOT be saved to", self.path)
        self.app.exit(exit_code if ok else 4)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the PNG to write")
    parser.add_argument("--size", type=window_size, default=(1360, 860), help="WIDTHxHEIGHT of the window")
    parser.add_argument("--timeout", type=positive_float, default=300.0, help="seconds to wait for the scan")
    options, window_argv = parser.parse_known_args(argv)

    def attach(window, app):
        window.resize(*options.size)
        return ScreenshotOnFinish(window, app, options.out, options.timeout)

    command = Command("window", "the window, saving a screenshot when its scan is done", add_window_arguments,
                      lambda args: run_window(args, on_window=attach))
    return run_cli("window_screenshot.py", "the window with a screenshot", [command], ["window", *window_argv])


if __name__ == "__main__":
    sys.exit(main())
