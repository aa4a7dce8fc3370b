"""What the review window is given for a session: folded from its chunks one at a time.

The review of a session must not depend on how its events are cut into
chunks (many small ones while recording, few compacted ones after), must be
what the whole decoded list gives, and must keep only what the window shows.
"""

from __future__ import annotations

import time
from dataclasses import fields

import pytest

from cleartrace.actions import sessions
from cleartrace.actions.sessions import SessionReview
from cleartrace.consent.signed_policy import active_policy
from cleartrace.errors import UsageError
from cleartrace.events import Kind, RawEvent, keysym_of_char
from cleartrace.home import Home
from cleartrace.review import redaction
from cleartrace.review.activity import activity_per_minute
from cleartrace.review.cuts import removal_offsets
from cleartrace.review.text import reconstruct
from cleartrace.review.withheld import detections
from cleartrace.store import compaction

S = 10**9
MONO = 7 * 10**12  # monotonic clocks do not start at zero
WALL = 1_750_000_000 * S


def _typing(out: list[RawEvent], t: int, text: str) -> int:
    for ch in text:
        code = 0xFF0D if ch == "\n" else 0xFF08 if ch == "\b" else keysym_of_char(ch)
        out.append((t, int(Kind.KEY_DOWN), code, 0, 0, 0, None))
        out.append((t + S // 20, int(Kind.KEY_UP), code, 0, 0, 0, None))
        t += S // 5
    return t


def _day() -> list[RawEvent]:
    """Two windows, typing with a correction and an e-mail address, mouse
    work, an excluded interval, over several minutes."""
    out: list[RawEvent] = [(MONO, int(Kind.FOCUS), 0, 0, 800, 600, ("Gedit", "notes"))]
    t = _typing(out, MONO + S, "Dear Anna,\nmail me at anna.berg@exampel\b\ble.org thx")
    for i in range(400):
        t += S // 10
        out.append((t, int(Kind.MOVE), 100 + i % 50, 200, 0, 0, None))
    out.append((t + S, int(Kind.BUTTON_DOWN), 150, 200, 1, 0, None))
    out.append((t + S + S // 10, int(Kind.BUTTON_UP), 150, 200, 1, 0, None))
    out.append((t + 2 * S, int(Kind.EXCLUDED_START), 0, 0, 0, 0, None))
    out.append((t + 90 * S, int(Kind.EXCLUDED_END), 0, 0, 0, 0, None))
    out.append((t + 91 * S, int(Kind.FOCUS), 0, 0, 640, 480, ("xterm", "shell")))
    t = _typing(out, t + 92 * S, "ls -la\ncall +44 20 7946 0958 now\n")
    out.append((t + S, int(Kind.SCROLL), 10, 10, 0, -1, None))
    return out


def _record(home: Home, events: list[RawEvent], per_chunk: int) -> str:
    handle = home.store.begin_session(WALL, MONO)
    for start in range(0, len(events), per_chunk):
        home.store.append_chunk(handle, events[start : start + per_chunk])
    home.store.end_session(handle, time.time_ns())
    # A redaction of typing: the review shows where it cut the text.
    home.ledger.append("session.started", session=handle.id)
    sessions.redact(home, sessions.select_span(home, handle.id, 1, 0, 4))
    return handle.id


def _shown(review: SessionReview) -> tuple[object, ...]:
    return (
        [(s.app, s.title, s.started_ns, s.text, s.marks) for s in review.streams],
        review.findings,
        [
            [(d.stream, d.finding, d.positions, d.interval, d.withheld) for d in s]
            for s in review.detections
        ],
        review.activity,
        review.cuts,
        review.first_ns,
        [(r.from_ns, r.to_ns, r.count) for r in review.redactions],
    )


def test_the_review_is_the_same_from_many_small_chunks_or_few_compacted(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _day()
    compacted = _record(home, events, per_chunk=5)
    monkeypatch.setattr(compaction, "COMPACT_EVENTS", 7)
    small = _record(home, events, per_chunk=5)
    assert home.store.chunk_count(compacted) == 1
    assert home.store.chunk_count(small) > 50
    review = sessions.review(home, compacted)
    assert _shown(sessions.review(home, small)) == _shown(review)
    assert [s.text for s in review.streams] == [
        " Anna,\nmail me at anna.berg@example.org thx",
        "ls -la\ncall +44 20 7946 0958 now\n",
    ]
    assert review.findings[0]
    assert review.findings[1]
    assert review.cuts[0] == [0]
    assert any(m.excluded for m in review.activity)


def test_the_review_is_what_the_whole_decoded_session_gives(home: Home) -> None:
    session_id = _record(home, _day(), per_chunk=5)
    review = sessions.review(home, session_id)
    events = home.store.read_events(session_id)
    streams = reconstruct(events)
    started, anchor = home.store.anchors(session_id)
    found = detections(
        events, active_policy(home.paths), started_ns=started, anchor_ns=anchor, streams=streams
    )
    cut_at = [r.from_ns - started + anchor for r in review.redactions if r.removed.get("keys")]
    assert [(s.app, s.title, s.started_ns, s.text, s.marks) for s in review.streams] == [
        (s.app, s.title, s.started_ns, s.text, tuple(s.marks)) for s in streams
    ]
    assert review.detections == found
    assert review.activity == activity_per_minute(events)
    assert review.cuts == removal_offsets(streams, events, cut_at)
    assert review.first_ns == started + events[0].t_ns - anchor


def test_the_review_keeps_no_event_only_what_the_window_shows(home: Home) -> None:
    review = sessions.review(home, _record(home, _day(), per_chunk=5))
    assert "events" not in {f.name for f in fields(review)}
    for stream in review.streams:
        # The text and its clipboard marks; not the events behind each character.
        assert not hasattr(stream, "sources")
        assert not hasattr(stream, "events")


def test_an_empty_session_has_no_text_no_minutes_and_no_first_event(home: Home) -> None:
    handle = home.store.begin_session(WALL, MONO)
    home.store.end_session(handle, time.time_ns())
    review = sessions.review(home, handle.id)
    assert (review.streams, review.activity, review.first_ns) == ([], [], None)


def test_selections_folded_from_the_chunks_are_those_of_the_whole_session(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compaction, "COMPACT_EVENTS", 7)
    sid = _record(home, _day(), per_chunk=5)
    events = home.store.read_events(sid)
    span = sessions.select_span(home, sid, 2, 3, 9)
    assert span == redaction.by_span(sid, events, 2, 3, 9)
    assert span.positions
    assert sessions.select_match(home, sid, r"\d+") == redaction.by_match(sid, events, r"\d+")
    pii = sessions.select_pii(home, sid)
    assert pii == redaction.by_pii(sid, events, active_policy(home.paths).pii)
    assert pii.positions
    started = home.store.anchors(sid)[0]
    window = (started + 5 * S, started + 60 * S)
    timed = sessions.select_time(home, sid, *window)
    assert timed == redaction.by_time(home.store, sid, events, *window)
    assert timed.counts["mouse_move"] > 0


def test_a_stream_number_beyond_the_session_is_refused_when_folded(home: Home) -> None:
    sid = _record(home, _day(), per_chunk=5)
    with pytest.raises(UsageError, match="no text stream 3"):
        sessions.select_span(home, sid, 3, 0, 1)
