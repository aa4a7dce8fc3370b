"""A review being folded must not keep another process's deletion on disk.

The old review read a session's chunks in one `fetchall` and let the read
snapshot go at once; the fold steps one statement across the whole fold (a
long session's seconds of decoding), and every TRUNCATE checkpoint made by
another process meanwhile (a deletion, a redaction) fails: the deleted
session's wrapped key and chunks stay in store.db / its WAL after the
deletion has returned.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import pytest

from cleartrace.actions import sessions
from cleartrace.events import Kind, RawEvent
from cleartrace.home import Home
from cleartrace.paths import Paths
from cleartrace.review.folding import fold
from cleartrace.store import compaction
from tests.support.canaries import store_files
from tests.support.home_probe import wrapped_keys
from tests.support.sessions import typed


def _recorded(home: Home, text: str) -> str:
    handle = home.store.begin_session(time.time_ns(), 10**12)
    events: list[RawEvent] = [(10**12, int(Kind.FOCUS), 0, 0, 0, 0, ("Gedit", "notes"))]
    events += typed(text, 10**12 + 1000)
    for start in range(0, len(events), 4):
        home.store.append_chunk(handle, events[start : start + 4])
    home.store.end_session(handle, time.time_ns())
    return handle.id


def test_a_session_deleted_while_another_is_folded_leaves_no_key_on_disk(
    home: Home, private_home: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compaction, "COMPACT_EVENTS", 7)  # several chunks per session
    shown = _recorded(home, "a session being reviewed")
    doomed = _recorded(home, "a session another process deletes")
    assert home.store.chunk_count(shown) > 2
    key = wrapped_keys(private_home)[doomed]
    other = Home.open(private_home, create=False)  # another process: the CLI
    try:

        def chunks() -> Iterator[list[RawEvent]]:
            for number, chunk in enumerate(home.store.event_chunks(shown)):
                yield chunk
                if number == 0:  # while the review decodes and folds the rest
                    other.store.delete_session(doomed)

        folded = fold(chunks())
        assert [s.text for s in folded.text.finish()] == ["a session being reviewed"]
        # The deletion returned: the key that opens the session is gone for good.
        for path, data in store_files(private_home).items():
            assert key not in data, f"the deleted session's key is still in {path.name}"
    finally:
        other.close()


def test_a_review_while_another_process_deletes_leaves_no_key_on_disk(
    home: Home, private_home: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same through `sessions.review`, the deletion made as its second chunk is read."""
    monkeypatch.setattr(compaction, "COMPACT_EVENTS", 7)
    shown = _recorded(home, "a session being reviewed")
    doomed = _recorded(home, "a session another process deletes")
    key = wrapped_keys(private_home)[doomed]
    other = Home.open(private_home, create=False)
    reading = home.store.event_chunks

    def event_chunks(session_id: str) -> Iterator[list[RawEvent]]:
        for number, chunk in enumerate(reading(session_id)):
            yield chunk
            if number == 0:
                other.store.delete_session(doomed)

    monkeypatch.setattr(home.store, "event_chunks", event_chunks)
    try:
        review = sessions.review(home, shown)
        assert [s.text for s in review.streams] == ["a session being reviewed"]
        for path, data in store_files(private_home).items():
            assert key not in data, f"the deleted session's key is still in {path.name}"
    finally:
        other.close()


def test_typing_redacted_while_another_session_is_folded_leaves_no_old_chunk_on_disk(
    home: Home, private_home: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A redaction (or "forget the last minutes") made by another process while
    the review folds: the chunk it re-sealed must not stay on disk as it was."""
    monkeypatch.setattr(compaction, "COMPACT_EVENTS", 7)
    shown = _recorded(home, "a session being reviewed")
    redacted = _recorded(home, "my pin is 4711")
    with sqlite3.connect(private_home.db) as conn:
        before = {
            bytes(blob)
            for (blob,) in conn.execute("SELECT blob FROM chunks WHERE session_id=?", (redacted,))
        }
    other = Home.open(private_home, create=False)
    try:

        def chunks() -> Iterator[list[RawEvent]]:
            for number, chunk in enumerate(home.store.event_chunks(shown)):
                yield chunk
                if number == 0:
                    other.ledger.append("session.started", session=redacted)
                    sessions.redact(other, sessions.select_match(other, redacted, "4711"))

        fold(chunks())
        with sqlite3.connect(private_home.db) as conn:
            after = {
                bytes(blob)
                for (blob,) in conn.execute(
                    "SELECT blob FROM chunks WHERE session_id=?", (redacted,)
                )
            }
        replaced = before - after
        assert replaced, "the redaction re-sealed a chunk"
        for path, data in store_files(private_home).items():
            for blob in replaced:
                assert blob not in data, f"a chunk as it was before the redaction is in {path.name}"
    finally:
        other.close()
