"""Environment knobs, read where they are used and validated there (README lists them all).

A tuning knob with a bad value (`PILLOW_BLOCKS_MAX=abc`) logs one warning and uses its
default: it must never stop a program at import. A value the run depends on (torchrun's
`RANK`) raises a one-line `UsageError` instead: guessing would scan or train the wrong share.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .errors import UsageError

log = logging.getLogger(__name__)


def _whole_number(name: str, text: str, minimum: int) -> int:
    """`text` as a whole number >= `minimum`; ValueError (with the reason) otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a whole number") from None
    if value < minimum:
        raise ValueError(f"{name}={value} is below its minimum {minimum}")
    return value


def int_knob(name: str, default: int, minimum: int = 0) -> int:
    """The whole number in $`name`; `default` when unset or empty, and (with a warning) when
    it is not a whole number >= `minimum`."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return _whole_number(name, text, minimum)
    except ValueError as exc:
        log.warning("%s; using the default %d", exc, default)
        return default


def required_int(name: str, minimum: int = 0, default: int | None = None) -> int:
    """The whole number in $`name`, which the run depends on: `default` when unset (a
    `UsageError` when there is none), a `UsageError` when it is not a whole number >= `minimum`."""
    text = os.environ.get(name, "").strip()
    if not text:
        if default is None:
            raise UsageError(f"the environment variable {name} is not set (torchrun sets it)")
        return default
    try:
        return _whole_number(name, text, minimum)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def path_knob(name: str) -> Path | None:
    """The path in $`name` (`~` expanded), or None when unset or empty."""
    text = os.environ.get(name, "").strip()
    return Path(text).expanduser() if text else None
