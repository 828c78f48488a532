"""The trainer's user-facing error: a `dgs_desktop.errors.InputError` with a one-line message."""

from dgs_desktop.errors import InputError


class TrainError(InputError, RuntimeError):
    """A user-facing problem (bad data, bad arguments, incompatible resume state)."""
