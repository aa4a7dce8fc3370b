"""A session read a chunk at a time: what a review folds without holding the session."""

from __future__ import annotations

import time

import pytest

from cleartrace.errors import UnknownSession
from cleartrace.events import Kind
from cleartrace.store.sessions import Store
from tests.support.sessions import typed


def test_chunks_hold_every_event_in_order_as_raw_tuples(store: Store) -> None:
    handle = store.begin_session(time.time_ns(), 0)
    batches = [typed("hello", i * 10**9) for i in range(5)]
    batches.append([(9 * 10**9, int(Kind.FOCUS), 1, 2, 3, 4, ("Gedit", "a title"))])
    for batch in batches:
        store.append_chunk(handle, batch)
    chunks = list(store.event_chunks(handle.id))
    assert chunks == batches  # one per chunk while recording
    store.end_session(handle, time.time_ns())
    (compacted,) = store.event_chunks(handle.id)
    assert compacted == [e for batch in batches for e in batch]


def test_a_session_without_chunks_has_none(store: Store) -> None:
    handle = store.begin_session(time.time_ns(), 0)
    assert list(store.event_chunks(handle.id)) == []


def test_an_unknown_session_is_refused_naming_it(store: Store) -> None:
    with pytest.raises(UnknownSession, match="00000000"):
        next(store.event_chunks("00" * 16))
