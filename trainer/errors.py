"""The one exception type the trainer shows to users as a one-line message."""


class TrainError(RuntimeError):
    """A user-facing problem (bad data, bad arguments, incompatible resume state)."""
