"""A long session is compacted in a child process: same events, few chunks,
and the child's errors come back as the store's own."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest

from cleartrace.errors import StoreCorrupt
from cleartrace.events import Kind, RawEvent
from cleartrace.paths import Paths
from cleartrace.store.compact_process import IN_PLACE_EVENTS
from cleartrace.store.compaction import Compactor
from cleartrace.store.session_state import SessionState
from cleartrace.store.sessions import Store

MS = 1_000_000


def _batches(n: int, per: int) -> list[list[RawEvent]]:
    events = [
        (i * 7 * MS + (i * 37 % 1000) * 1000, int(Kind.MOVE), i % 1920, i % 1080, 0, 0, None)
        for i in range(n)
    ]
    return [events[i : i + per] for i in range(0, n, per)]


def _not_here(self: Compactor, session_id: str, key: bytes) -> None:
    raise AssertionError("compacted in the recorder's process")


def test_a_session_longer_than_in_place_is_compacted_by_a_child(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Compactor, "_compact", _not_here)  # this process's: never called
    handle = store.begin_session(1, 0)
    batches = _batches(IN_PLACE_EVENTS + 5_000, 4_000)
    for batch in batches:
        store.append_chunk(handle, batch)
    store.end_session(handle, 2)
    (info,) = store.list_sessions()
    assert info.state == SessionState.PENDING
    assert store.chunk_count(handle.id) == 1
    got = [(e.t_ns, int(e.kind), e.a, e.b) for e in store.read_events(handle.id)]
    assert got == [(t, k, a, b) for batch in batches for t, k, a, b, *_ in batch]


def test_a_short_session_is_compacted_in_place(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Compactor, "_compact", _not_here)
    handle = store.begin_session(1, 0)
    for batch in _batches(IN_PLACE_EVENTS, 4_000):
        store.append_chunk(handle, batch)
    with pytest.raises(AssertionError, match="in the recorder's process"):
        store.end_session(handle, 2)


def test_a_damaged_chunk_fails_the_childs_compaction_as_it_would_in_place(
    store: Store, private_home: Paths
) -> None:
    handle = store.begin_session(1, 0)
    for batch in _batches(IN_PLACE_EVENTS + 5_000, 4_000):
        store.append_chunk(handle, batch)
    with closing(sqlite3.connect(private_home.db)) as conn, conn:
        where = (handle.id, 3)
        (blob,) = conn.execute("SELECT blob FROM chunks WHERE session_id=? AND idx=?", where)
        flipped = bytes(blob[0][:40]) + bytes([blob[0][40] ^ 1]) + bytes(blob[0][41:])
        conn.execute("UPDATE chunks SET blob=? WHERE session_id=? AND idx=?", (flipped, *where))
    with pytest.raises(StoreCorrupt, match="chunk 3 of session"):
        store.end_session(handle, 2)
    (info,) = store.list_sessions()
    assert info.state == SessionState.RECORDING  # as recorded: the next open recovers it
    assert store.chunk_count(handle.id) == len(_batches(IN_PLACE_EVENTS + 5_000, 4_000))
