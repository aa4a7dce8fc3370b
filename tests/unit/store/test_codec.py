from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cleartrace.events import Event, Kind, RawEvent
from cleartrace.store.codec import CodecError, decode_events, encode_events

text = st.one_of(st.none(), st.text(max_size=40))
i32 = st.integers(-(2**20), 2**20)


@st.composite
def raw_events(draw: st.DrawFn) -> list[RawEvent]:
    n = draw(st.integers(0, 60))
    t = draw(st.integers(0, 2**50)) * 1000
    out: list[RawEvent] = []
    for _ in range(n):
        t += draw(st.integers(0, 10**9)) * 1000
        kind = draw(st.sampled_from(list(Kind)))
        if kind in (Kind.KEY_DOWN, Kind.KEY_UP):
            out.append((t, int(kind), draw(st.integers(0, 0x0110FFFF)), 0, 0, 0, None))
        elif kind is Kind.FOCUS:
            out.append((t, int(kind), 0, 0, 0, 0, (draw(text), draw(text))))
        elif kind in (Kind.EXCLUDED_START, Kind.EXCLUDED_END):
            out.append((t, int(kind), 0, 0, 0, 0, None))
        else:
            out.append((t, int(kind), draw(i32), draw(i32), draw(i32), draw(i32), None))
    return out


def as_raw(events: list[Event]) -> list[RawEvent]:
    return [
        (
            e.t_ns,
            int(e.kind),
            e.a,
            e.b,
            e.c,
            e.d,
            (e.app, e.title) if e.kind is Kind.FOCUS else None,
        )
        for e in events
    ]


@given(raw_events())
def test_decode_inverts_encode(events: list[RawEvent]) -> None:
    assert as_raw(decode_events(encode_events(events))) == events


def test_times_are_kept_to_the_microsecond() -> None:
    (event,) = decode_events(
        encode_events([(1_234_567_891, int(Kind.KEY_DOWN), 97, 0, 0, 0, None)])
    )
    assert event.t_ns == 1_234_567_000


@pytest.mark.parametrize("cut", [1, 5, 20])
def test_truncated_batch_is_rejected(cut: int) -> None:
    data = encode_events([(i * 1000, int(Kind.MOVE), i, i, 0, 0, None) for i in range(10)])
    with pytest.raises(CodecError):
        decode_events(data[:-cut])


def test_unknown_version_is_rejected() -> None:
    data = bytearray(encode_events([(0, int(Kind.KEY_DOWN), 97, 0, 0, 0, None)]))
    data[0] = 99
    with pytest.raises(CodecError, match="version 99"):
        decode_events(bytes(data))
