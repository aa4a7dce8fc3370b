"""Choosing what a redaction removes from a folded session: streams and the
times of the events they name, or the store's chunks one at a time, never
the whole decoded session."""

from __future__ import annotations

import time

from cleartrace.events import Event, Kind, RawEvent, keysym_of_char
from cleartrace.paths import Paths, ensure_private_dirs
from cleartrace.review import redaction
from cleartrace.review.pii import PiiCategory
from cleartrace.review.text import Reconstruction
from cleartrace.store.keys import load_keys
from cleartrace.store.sessions import Store

MS = 10**6


def _session() -> list[RawEvent]:
    out: list[RawEvent] = [(0, int(Kind.FOCUS), 0, 0, 0, 0, ("Gedit", None))]
    for i, ch in enumerate("write to anna.berg@example.org or 4111 1111 1111 1111"):
        code = keysym_of_char(ch)
        out.append((MS + 40 * i * MS, int(Kind.KEY_DOWN), code, 0, 0, 0, None))
        out.append((21 * MS + 40 * i * MS, int(Kind.MOVE), i, i, 0, 0, None))
        out.append((30 * MS + 40 * i * MS, int(Kind.KEY_UP), code, 0, 0, 0, None))
    return out


def _event(raw: RawEvent) -> Event:
    return Event(raw[0], Kind(raw[1]), *raw[2:6], *(raw[6] or (None, None)))


def _folded(raw: list[RawEvent]) -> Reconstruction:
    folding = Reconstruction()
    for start in range(0, len(raw), 9):
        folding.feed(raw[start : start + 9])
    return folding


def test_text_selections_from_streams_and_placed_times_are_the_whole_lists() -> None:
    raw = _session()
    events = [_event(e) for e in raw]
    folding = _folded(raw)
    streams = folding.finish()
    placed = folding.placed
    assert redaction.by_span("s", placed, 1, 3, 12, streams=streams) == redaction.by_span(
        "s", events, 1, 3, 12
    )
    assert redaction.by_match("s", placed, "[0-9]+", streams=streams) == redaction.by_match(
        "s", events, "[0-9]+"
    )
    cards = [PiiCategory.PAYMENT_CARD]
    chosen = redaction.by_pii("s", placed, cards, streams=streams)
    assert chosen == redaction.by_pii("s", events, cards)
    assert chosen.counts == {"keys": 2 * len("4111 1111 1111 1111")}


def test_a_time_selection_read_from_the_stores_chunks_is_the_whole_lists(
    private_home: Paths,
) -> None:
    ensure_private_dirs(private_home)
    store = Store.open(private_home, load_keys(private_home, create=True))
    try:
        handle = store.begin_session(time.time_ns(), 0)
        raw = _session()
        for start in range(0, len(raw), 10):
            store.append_chunk(handle, raw[start : start + 10])
        started, _ = store.anchors(handle.id)
        window = (started + 500 * MS, started + 900 * MS)
        streamed = redaction.by_time(store, handle.id, None, *window)
        assert streamed == redaction.by_time(
            store, handle.id, store.read_events(handle.id), *window
        )
        assert streamed.counts == {"keys": 20, "mouse_move": 10}
    finally:
        store.close()
