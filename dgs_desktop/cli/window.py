"""`dgs-desktop [window] [PATH...]`: the desktop window (the default command)."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import UsageError
from .shell import Command


def add_window_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", help="images or folders to add and scan")
    parser.add_argument("--checkpoint", "-c", help="checkpoint directory or hf:ORG/NAME[@REVISION]")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--case", metavar="FILE", default=None,
                        help="open this case file (created when it does not exist); results are saved into it")


def has_display() -> bool:
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_window(args: argparse.Namespace, on_window=None) -> int:
    """Opens the window; `on_window(window, app)` (see gui.app.run_app) attaches before it shows."""
    if not has_display():  # Qt would abort the process with a wall of plugin errors
        raise UsageError("no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set); "
                         "use `dgs-desktop scan PATH --checkpoint CKPT --csv OUT` for headless work, "
                         "or start the window under xvfb-run")
    try:
        from ..gui.app import run_app
    except ImportError as exc:
        raise UsageError(f"the window cannot start ({exc}); the headless `dgs-desktop scan` still works") from None
    case = getattr(args, "case", None)
    if case and os.path.exists(case) and not os.path.isfile(case):
        raise UsageError(f"--case {case}: not a file")
    return run_app(paths=args.paths, checkpoint=args.checkpoint, device=args.device, case=case, on_window=on_window)


WINDOW = Command("window", "open the window (the default: `dgs-desktop [PATH...]`)", add_window_arguments,
                 run_window)
