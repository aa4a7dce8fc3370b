"""Waiting for a condition instead of sleeping for a guessed time."""

from __future__ import annotations

import time
from collections.abc import Callable

from cleartrace.errors import RecorderNotRunning

__all__ = ["wait_for"]


def wait_for(
    predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition"
) -> float:
    """Poll `predicate` until it is true; return the seconds it took.

    A recorder that has not opened (or has just closed) its control socket
    counts as "not yet", so a predicate may ask the recorder directly.

    Raises:
        AssertionError: `predicate` stayed false for `timeout` seconds; the
            message names `what` was awaited.
    """
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if predicate():
                return time.monotonic() - start
        except RecorderNotRunning:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
