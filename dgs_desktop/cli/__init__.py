"""`dgs-desktop`: the window (default), `scan`, `import-weights`.

    dgs-desktop [PATH...]                    open the window, scanning PATHs
    dgs-desktop scan PATH... --csv OUT       headless scan
    dgs-desktop calibrate REAL... --out CAL.json   a threshold calibrated on your real images
    dgs-desktop import-weights FILE OUT_DIR  convert the authors' .pth
    dgs-desktop report CSV_OR_CASE --html OUT.html [--pdf OUT.pdf]   the analyst's report
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .calibrate import CALIBRATE
from .import_weights import IMPORT_WEIGHTS
from .report import REPORT
from .scan import SCAN
from .shell import run_cli, with_default_command
from .window import WINDOW

PROG = "dgs-desktop"
DESCRIPTION = ("DGS Desktop: is this image AI-generated? Without a command it opens the window "
               "on the given files and folders.")
COMMANDS = (WINDOW, SCAN, CALIBRATE, IMPORT_WEIGHTS, REPORT)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_cli(PROG, DESCRIPTION, COMMANDS, argv,
                   default=lambda args: with_default_command(args, COMMANDS, WINDOW.name, accept_paths=True))


if __name__ == "__main__":
    sys.exit(main())
