"""Telling a running recorder that the ledger changed."""

from __future__ import annotations

import logging

from cleartrace.control import request
from cleartrace.errors import RecorderError, RecorderNotRunning
from cleartrace.paths import Paths

log = logging.getLogger(__name__)


def poke_recorder(paths: Paths) -> None:
    """Tell a running recorder to re-read consent and exclusions now.

    Never raises: the act is in the ledger already, and a recorder re-reads it
    on its next tick anyway; this only makes the change apply before we
    return. A recorder that does not answer must not undo or hold up what the
    person asked for (a withdrawal's deletions, say), so it is only logged.
    """
    try:
        request(paths.socket, "reload", timeout=1.0)
    except RecorderNotRunning:
        return
    except RecorderError as exc:
        log.warning("a recorder holds %s but did not take the change now: %s", paths.socket, exc)
