"""The window's log file: launched from a desktop menu the window has no terminal, so what it
logs (the traceback behind an error dialog among it) also goes to a rotating file under the
user log folder (`platformdirs.user_log_dir`, or $DGS_DESKTOP_LOG_DIR), and the dialogs name
that file. When the folder cannot be created the window still starts, logging to stderr only,
and the dialogs say that no log file exists. Qt-free.
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from .envknobs import path_knob

log = logging.getLogger(__name__)

LOG_DIR_ENV = "DGS_DESKTOP_LOG_DIR"
LOG_FILE_NAME = "dgs-desktop.log"
MAX_LOG_BYTES = 2 << 20  # per file; with the backups at most ~8 MiB on disk
LOG_BACKUPS = 3
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_log_file: Path | None = None  # the file the root logger writes to, once started


def log_folder() -> Path:
    """$DGS_DESKTOP_LOG_DIR, else the platform's user log folder for dgs-desktop."""
    override = path_knob(LOG_DIR_ENV)
    if override is not None:
        return override
    from platformdirs import user_log_dir

    return Path(user_log_dir("dgs-desktop", appauthor=False))


def start_log_file() -> Path | None:
    """Adds a rotating file handler to the root logger (it logs what the root's level lets
    through, as the terminal does), once per process, and returns the file; None, with a
    warning on stderr, when the folder cannot be created or the file cannot be opened."""
    global _log_file
    if _log_file is not None:
        return _log_file
    path = log_folder() / LOG_FILE_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=MAX_LOG_BYTES, backupCount=LOG_BACKUPS,
                                                       encoding="utf-8")
    except OSError as exc:
        log.warning("no log file: %s cannot be written (%s); logging to the terminal only", path,
                    exc.strerror or exc)
        return None
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.getLogger().addHandler(handler)
    _log_file = path
    log.info("log file: %s", path)
    return path


def log_file() -> Path | None:
    """The file this process logs to, or None when there is none."""
    return _log_file


def where_details_are() -> str:
    """The sentence an error dialog ends with: where the details are."""
    if _log_file is None:
        return "No log file could be written, so the details went to the terminal only (if there is one)."
    return f"Details were written to the log file {_log_file}."
