"""Reconstruction fed a chunk at a time: the same streams as from the whole list.

The review window folds a session chunk by chunk as the store decodes it
(raw tuples, never the whole session at once); whatever the chunk
boundaries, the text, the events behind each character, the marks and the
footprints must be those of `reconstruct` over every event at once.
"""

from __future__ import annotations

from itertools import pairwise
from random import Random

from hypothesis import given, settings
from hypothesis import strategies as st

from cleartrace.events import Event, Kind, RawEvent, keysym_of_char
from cleartrace.review.text import Reconstruction, Stream, reconstruct

KEYSYMS = [
    *(keysym_of_char(c) for c in "ab .@1"),
    0xFF08,  # BackSpace
    0xFF51,  # Left
    0xFF50,  # Home
    0xFFE1,  # Shift_L
    0xFFE3,  # Control_L
    0xFE51,  # dead_acute
    ord("v"),
    ord("c"),
]


def random_session(seed: int, n: int) -> list[Event]:
    """Presses and releases (some released only after a focus change, some
    never), clicks, moves, scrolls, focus changes and exclusion markers."""
    rnd = Random(seed)  # noqa: S311 - a reproducible session, not a secret
    events: list[Event] = []
    held: list[int] = []
    for t in range(n):
        r = rnd.random()
        if r < 0.4:
            code = rnd.choice(KEYSYMS)
            events.append(Event(t, Kind.KEY_DOWN, code))
            held.append(code)
        elif r < 0.7 and held:
            events.append(Event(t, Kind.KEY_UP, held.pop(rnd.randrange(len(held)))))
        elif r < 0.78:
            events.append(Event(t, Kind.MOVE, rnd.randrange(50), rnd.randrange(50)))
        elif r < 0.82:
            events.append(Event(t, Kind.SCROLL, 1, 1, 0, 1))
        elif r < 0.87:
            events.append(Event(t, Kind.BUTTON_DOWN, 1, 1, 1))
        elif r < 0.9:
            events.append(Event(t, Kind.BUTTON_UP, 1, 1, 1))
        elif r < 0.95:
            app = rnd.choice(["Gedit", "xterm", None])
            events.append(Event(t, Kind.FOCUS, 0, 0, 10, 10, app, rnd.choice(["notes", None])))
        else:
            events.append(Event(t, rnd.choice([Kind.EXCLUDED_START, Kind.EXCLUDED_END])))
    return events


def raw(event: Event) -> RawEvent:
    """The event as the store decodes it for a fold: a plain tuple."""
    text = (event.app, event.title) if event.kind is Kind.FOCUS else None
    return (event.t_ns, int(event.kind), event.a, event.b, event.c, event.d, text)


def chunked(events: list[RawEvent], cuts: list[int]) -> list[list[RawEvent]]:
    bounds = sorted({0, len(events), *(c % (len(events) + 1) for c in cuts)})
    return [events[a:b] for a, b in pairwise(bounds)]


def same(streamed: list[Stream], whole: list[Stream], rnd: Random) -> None:
    assert streamed == whole
    for mine, theirs in zip(streamed, whole, strict=True):
        assert mine.typed() == theirs.typed()
        for _ in range(3):
            a = rnd.randint(0, len(theirs.text))
            b = rnd.randint(a, len(theirs.text))
            assert mine.footprint(a, b) == theirs.footprint(a, b)
            assert mine.erased_with(set(mine.events[:b])) == theirs.erased_with(
                set(theirs.events[:b])
            )


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    n=st.integers(0, 300),
    cuts=st.lists(st.integers(0, 400), max_size=8),
)
def test_streamed_in_chunks_equals_the_whole_list(seed: int, n: int, cuts: list[int]) -> None:
    events = random_session(seed, n)
    folding = Reconstruction()
    for chunk in chunked([raw(e) for e in events], cuts):
        folding.feed(chunk)
    same(folding.finish(), reconstruct(events), Random(seed))  # noqa: S311 - spans to try


def test_an_empty_chunk_changes_nothing() -> None:
    events = random_session(7, 200)
    folding = Reconstruction()
    folding.feed([])
    folding.feed([raw(e) for e in events[:90]])
    folding.feed([])
    folding.feed([raw(e) for e in events[90:]])
    assert folding.finish() == reconstruct(events)


def test_the_time_and_kind_of_every_event_a_stream_names_stay_known() -> None:
    events = random_session(3, 300)
    folding = Reconstruction()
    for chunk in chunked([raw(e) for e in events], [50, 120, 121, 260]):
        folding.feed(chunk)
    streams = folding.finish()
    named = {i for s in streams for i in s.events} | {
        i for s in streams for c in s.sources for i in c
    }
    assert named
    for index in named:
        event = folding.placed[index]
        assert (event.t_ns, event.kind) == (events[index].t_ns, events[index].kind)
