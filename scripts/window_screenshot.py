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
import sys

from dgs_desktop.cli.shell import Command, positive_float, run_cli
from dgs_desktop.cli.window import add_window_arguments, run_window
from dgs_desktop.gui.screenshot import ScreenshotOnFinish


def window_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if width < 200 or height < 200:
        raise argparse.ArgumentTypeError(f"the window must be at least 200x200, got {text}")
    return width, height


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
