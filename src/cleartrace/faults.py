"""Fault points: places where a crash test kills this very process with SIGKILL.

Uploading and ingesting claim that a crash at any step loses nothing and
duplicates nothing: the next run completes. Tests prove it by running the
real command with

    CLEARTRACE_FAULT_POINT=NAME        killed the first time NAME is reached
    CLEARTRACE_FAULT_POINT=NAME@N      killed the N-th time (e.g. between files)

and then running it again without. A fault point is armed only when
`CLEARTRACE_TESTING_FAULTS=1` is set as well: a crash test sets both, and
a stray `CLEARTRACE_FAULT_POINT` alone (left in a shell, a service unit or
an inherited environment) kills nothing. Unarmed (always, outside such
tests), a point costs one dictionary lookup and does nothing. The points:

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
table.committed        Iceberg tables: staged rows committed, the manifest not yet saved
ray.rows               a Ray worker made a bundle's rows, not yet returned (the
                       worker dies; `org ingest --engine ray` passes both
                       variables to its workers when armed)
state.copied           `org move-state`: the state committed in PostgreSQL, the
                       data directory not yet switched over
=====================  ==========================================================
"""

from __future__ import annotations

import os
import signal
from collections import Counter

__all__ = ["ENV", "TESTING", "fault_point"]

ENV = "CLEARTRACE_FAULT_POINT"
#: Must be "1" as well, or no fault point fires: the explicit switch of a crash test.
TESTING = "CLEARTRACE_TESTING_FAULTS"
_reached: Counter[str] = Counter()


def fault_point(name: str) -> None:
    """Kill this process with SIGKILL here if `CLEARTRACE_FAULT_POINT` asks for
    it and `CLEARTRACE_TESTING_FAULTS=1` arms it."""
    wanted = os.environ.get(ENV)
    if wanted is None or os.environ.get(TESTING) != "1":
        return
    point, _, nth = wanted.partition("@")
    if point != name:
        return
    _reached[name] += 1
    if _reached[name] >= (int(nth) if nth.isdigit() else 1):
        os.kill(os.getpid(), signal.SIGKILL)
