"""Fault points: places where a crash test kills this very process with SIGKILL.

Uploading and ingesting claim that a crash at any step loses nothing and
duplicates nothing: the next run completes. Tests prove it by running the
real command with

    CLEARTRACE_FAULT_POINT=NAME        killed the first time NAME is reached
    CLEARTRACE_FAULT_POINT=NAME@N      killed the N-th time (e.g. between files)

and then running it again without. Unset (always, outside such tests), a
point costs one dictionary lookup and does nothing. The points:

=====================  ==========================================================
upload.built           a bundle is sealed, not yet queued
upload.queued          it is queued (committed), not yet sent
upload.stored          the collector acknowledged it; the acknowledgement is not
                       yet recorded (outbox row, session state, ledger)
upload.acknowledged    the acknowledgement is recorded
ingest.file            a dataset file was written (renamed into place)
ingest.removed         a dataset file was removed
ingest.device          a device's rows are written, the manifest not yet saved
ingest.saved           the manifest was saved after a device
=====================  ==========================================================
"""

from __future__ import annotations

import os
import signal
from collections import Counter

__all__ = ["ENV", "fault_point"]

ENV = "CLEARTRACE_FAULT_POINT"
_reached: Counter[str] = Counter()


def fault_point(name: str) -> None:
    """Kill this process with SIGKILL here if `CLEARTRACE_FAULT_POINT` asks for it."""
    wanted = os.environ.get(ENV)
    if wanted is None:
        return
    point, _, nth = wanted.partition("@")
    if point != name:
        return
    _reached[name] += 1
    if _reached[name] >= (int(nth) if nth.isdigit() else 1):
        os.kill(os.getpid(), signal.SIGKILL)
