"""Telling a running recorder that the ledger changed."""

from __future__ import annotations

from contextlib import suppress

from cleartrace.control import request
from cleartrace.errors import RecorderNotRunning
from cleartrace.paths import Paths


def poke_recorder(paths: Paths) -> None:
    """Tell a running recorder to re-read consent and exclusions now (it would
    within a tick anyway; this makes the change take effect before we return).

    Raises:
        RecorderError: a recorder holds the socket but did not answer.
    """
    with suppress(RecorderNotRunning):
        request(paths.socket, "reload")
