"""Folding a session's chunks: the text and minutes of the whole, the collector restored."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from cleartrace.errors import StoreCorrupt
from cleartrace.events import Event, Kind, RawEvent
from cleartrace.review.activity import activity_per_minute
from cleartrace.review.folding import fold
from cleartrace.review.text import reconstruct
from tests.support.sessions import typed

FOCUS: RawEvent = (0, int(Kind.FOCUS), 0, 0, 0, 0, ("Gedit", "notes"))


def _event(raw: RawEvent) -> Event:
    return Event(raw[0], Kind(raw[1]), *raw[2:6], *(raw[6] or (None, None)))


def test_folded_chunks_give_the_text_and_minutes_of_the_whole() -> None:
    chunks = [[FOCUS, *typed("hello ", 10**9)], typed("world", 70 * 10**9), []]
    folded = fold(iter(chunks))
    events = [_event(e) for chunk in chunks for e in chunk]
    assert folded.text.finish() == reconstruct(events)
    assert folded.activity.finish() == activity_per_minute(events)


def test_the_collector_runs_again_after_a_fold_even_one_that_failed() -> None:
    def damaged() -> Iterator[list[RawEvent]]:
        yield typed("ab")
        raise StoreCorrupt("chunk 1 of session 0123 fails authentication")

    assert gc.isenabled()
    with pytest.raises(StoreCorrupt):
        fold(damaged())
    assert gc.isenabled()
    fold(iter([typed("ab")]), activity=False)
    assert gc.isenabled()
