"""Closed sessions recorded into a real home, without a recorder."""

from __future__ import annotations

import time

from cleartrace.events import Kind, RawEvent
from cleartrace.home import Home


def closed_session(home: Home, n_keys: int = 20) -> str:
    """A closed session of `n_keys` presses and releases, recorded just now."""
    wall, mono = time.time_ns(), time.monotonic_ns()
    handle = home.store.begin_session(wall, mono)
    home.ledger.append("session.started", session=handle.id)
    events: list[RawEvent] = [(mono + 1_000, int(Kind.FOCUS), 0, 0, 0, 0, ("xterm", "notes"))]
    for i in range(n_keys):
        events.append((mono + 2_000 + i * 2_000, int(Kind.KEY_DOWN), 0x61, 0, 0, 0, None))
        events.append((mono + 3_000 + i * 2_000, int(Kind.KEY_UP), 0x61, 0, 0, 0, None))
    home.store.append_chunk(handle, events)
    home.store.end_session(handle, time.time_ns())
    home.ledger.append("session.ended", session=handle.id)
    return handle.id
