"""Sessions without a recorder: typed text as raw events, closed sessions in a real home."""

from __future__ import annotations

import time

from cleartrace.events import Kind, RawEvent, keysym_of_char
from cleartrace.home import Home
from cleartrace.paths import Paths


def typed(text: str, t0: int = 0) -> list[RawEvent]:
    """`text` as key presses and releases, one character every 2 ms from `t0`."""
    out: list[RawEvent] = []
    for i, ch in enumerate(text):
        code = keysym_of_char(ch)
        out.append((t0 + i * 2_000_000, int(Kind.KEY_DOWN), code, 0, 0, 0, None))
        out.append((t0 + i * 2_000_000 + 1_000_000, int(Kind.KEY_UP), code, 0, 0, 0, None))
    return out


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


def typed_session(paths: Paths, text: str) -> str:
    """A closed session in the home at `paths`: a focus change, then `text` pressed."""
    home = Home.open(paths, create=False)
    try:
        handle = home.store.begin_session(time.time_ns(), 0)
        events: list[RawEvent] = [(0, int(Kind.FOCUS), 0, 0, 0, 0, ("Gedit", None))]
        for i, ch in enumerate(text):
            events.append((1000 + i, int(Kind.KEY_DOWN), keysym_of_char(ch), 0, 0, 0, None))
        home.store.append_chunk(handle, events)
        home.store.end_session(handle, time.time_ns())
        return handle.id
    finally:
        home.close()
