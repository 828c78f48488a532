"""Guards shared by tests."""

from __future__ import annotations

import contextlib
import signal


@contextlib.contextmanager
def time_limit(seconds: int, what: str):
    """Fails (instead of hanging the suite) when the block runs longer than `seconds`: a hang
    guard, not a speed assertion."""
    def expire(signum, frame):
        raise TimeoutError(f"{what} took longer than {seconds} s (hang?)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
