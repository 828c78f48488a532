"""User errors: one hierarchy for both command lines, each mapped to one exit status.

A user error is something the person running the program can fix (a bad argument, an
unusable checkpoint, an input that cannot be read, a missing device); its message is one
plain line. Everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class DGSError(Exception):
    """Base of every error the user can act on; `str(exc)` is the one-line message."""

    exit_code = EXIT_USAGE


class UsageError(DGSError):
    """Bad command-line arguments or options."""


class CheckpointError(DGSError, RuntimeError):
    """A checkpoint cannot be used (missing, tampered, wrong architecture, bad numbers)."""


class InputError(DGSError):
    """An input (data folder, CSV, dataset) cannot be used as given."""


class DeviceError(DGSError, ValueError):
    """The requested device does not exist or cannot be used."""


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as one line for the user: whitespace collapsed, the first `limit` characters
    (library errors such as torch's state-dict mismatches span many lines)."""
    text = " ".join(str(exc).replace("\t", " ").split()) or type(exc).__name__
    for noise in ("Error(s) in loading state_dict for PeftModel: ", "Error(s) in loading state_dict for "):
        text = text.replace(noise, "")
    return text if len(text) <= limit else text[: limit - 1] + "…"
