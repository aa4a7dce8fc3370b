"""The columnar codec: exact round trips, narrow columns, and compact zstd output."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from cleartrace.errors import CodecError
from cleartrace.events import Event, Kind, RawEvent
from cleartrace.store.chunks import zstd_compressor
from cleartrace.store.codec import (
    CODEC_VERSION,
    Recoder,
    decode_events,
    decode_raw,
    encode_events,
    encode_rows,
)
from cleartrace.store.compaction import COMPACT_LEVEL

MS = 1_000_000
text = st.one_of(st.none(), st.text(max_size=40))
# Wide values, but with deltas that fit the codec's signed 64-bit columns
# (±2**62 apart would not: the codec refuses such a field with a ValueError).
field = st.one_of(st.integers(-100, 100), st.integers(-(2**61), 2**61))


@st.composite
def raw_events(draw: st.DrawFn) -> list[RawEvent]:
    n = draw(st.integers(0, 60))
    t = draw(st.integers(0, 2**50)) * 1000
    step = draw(st.sampled_from([1000, MS, 10**9]))
    out: list[RawEvent] = []
    for _ in range(n):
        t += draw(st.integers(0, 10**6)) * step
        kind = draw(st.sampled_from(list(Kind)))
        if kind in (Kind.KEY_DOWN, Kind.KEY_UP):
            out.append((t, int(kind), draw(st.integers(0, 0x0110FFFF)), 0, 0, 0, None))
        elif kind is Kind.FOCUS:
            geometry = (draw(field), draw(field), draw(field), draw(field))
            out.append((t, int(kind), *geometry, (draw(text), draw(text))))
        elif kind is Kind.LAYOUT:
            out.append((t, int(kind), draw(field), 0, 0, 0, (draw(text), None)))
        elif kind in (Kind.EXCLUDED_START, Kind.EXCLUDED_END):
            out.append((t, int(kind), 0, 0, 0, 0, None))
        else:
            out.append((t, int(kind), draw(field), draw(field), draw(field), draw(field), None))
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
            (e.app, e.title) if e.kind in (Kind.FOCUS, Kind.LAYOUT) else None,
        )
        for e in events
    ]


@st.composite
def stamped(draw: st.DrawFn) -> list[RawEvent]:
    """`raw_events` stamped as a monotonic clock stamps them: milliseconds plus
    any microseconds and nanoseconds, sometimes out of order (a batch may be
    given any order), sometimes equal."""
    events = draw(raw_events())
    jitter = st.integers(0, 999_999) | st.just(0) | st.integers(-(10**9), 10**9)
    return [(t + draw(jitter), *rest) for t, *rest in events]  # type: ignore[misc]


def to_us(events: list[RawEvent]) -> list[RawEvent]:
    """What the codec keeps: each time to the microsecond (rounded down)."""
    return [(t - t % 1000, *rest) for t, *rest in events]  # type: ignore[misc]


@given(raw_events())
def test_decode_inverts_encode(events: list[RawEvent]) -> None:
    decoded = decode_events(encode_events(events))
    assert as_raw(decoded) == events
    assert all(type(e.kind) is Kind for e in decoded)


@given(raw_events())
def test_raw_decode_gives_back_the_tuples(events: list[RawEvent]) -> None:
    assert decode_raw(encode_events(events)) == events


@given(stamped())
def test_microsecond_stamps_round_trip_in_order(events: list[RawEvent]) -> None:
    data = encode_events(events)
    assert decode_raw(data) == to_us(events)
    assert as_raw(decode_events(data)) == to_us(events)


@given(stamped())
def test_rows_decode_as_columns_do(events: list[RawEvent]) -> None:
    rows = encode_rows(events)
    assert rows[0] == 5
    assert decode_raw(rows) == decode_raw(encode_events(events)) == to_us(events)
    assert decode_events(rows) == decode_events(encode_events(events))


@given(st.lists(st.tuples(stamped(), st.booleans()), max_size=6), st.integers(1, 40))
def test_recoding_many_batches_keeps_every_event_in_order(
    batches: list[tuple[list[RawEvent], bool]], per_batch: int
) -> None:
    recoder = Recoder(per_batch)
    out = [
        part
        for batch, rows in batches
        for part in recoder.add(encode_rows(batch) if rows else encode_events(batch))
    ]
    out += recoder.finish()
    events = [e for batch, _ in batches for e in to_us(batch)]
    assert [e for *_, data in out for e in decode_raw(data)] == events
    starts = range(0, len(events), per_batch)
    assert [n for n, *_ in out] == [len(events[i : i + per_batch]) for i in starts]
    assert [(first, last) for _, first, last, _ in out] == [
        (events[i][0], events[min(i + per_batch, len(events)) - 1][0]) for i in starts
    ]
    assert all(data[0] == CODEC_VERSION for *_, data in out)
    assert b"".join(recoder.kinds) == bytes(e[1] for e in events)


ROW_BATCH: list[RawEvent] = [
    (1_000_000, int(Kind.FOCUS), 1, 2, 3, 4, ("app", "title")),
    (2_000_000, int(Kind.KEY_DOWN), 97, 0, 0, 0, None),
    (3_000_000, int(Kind.LAYOUT), 1, 0, 0, 0, ("de", None)),
]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d[:-1], "truncated"),
        (lambda d: d[:20], "truncated"),
        (lambda d: d + b"\x00", "trailing"),
        (lambda d: d[:61] + b"\x0d" + d[62:], "unknown event kind"),  # the key row
        (lambda d: d[:13] + b"\x01" + d[14:], "texts|trailing"),  # focus → key: a text too many
        (lambda d: d[:61] + b"\x07" + d[62:], "truncated"),  # key → focus: texts too few
    ],
)
def test_damaged_rows_are_rejected(damage: Callable[[bytes], bytes], message: str) -> None:
    data = encode_rows(ROW_BATCH)
    assert data[13] == int(Kind.FOCUS)
    assert data[61] == int(Kind.KEY_DOWN)
    with pytest.raises(CodecError, match=message):
        decode_raw(damage(data))
    recoder = Recoder(2)

    def recode() -> None:
        recoder.add(damage(data))
        recoder.finish()

    with pytest.raises(CodecError, match=message):
        recode()


def test_rows_refuse_unknown_kinds_and_wide_fields() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        encode_rows([(0, 13, 0, 0, 0, 0, None)])
    with pytest.raises(ValueError, match="64-bit"):
        encode_rows([(0, int(Kind.MOVE), 2**63, 0, 0, 0, None)])


def test_recoding_reads_every_older_version() -> None:
    recoder = Recoder(100)
    assert recoder.add(bytes.fromhex(VERSION_2_BATCH)) == []
    assert recoder.add(bytes.fromhex(VERSION_3_BATCH)) == []
    (part,) = recoder.finish()
    assert part[0] == 8
    assert part[3][0] == CODEC_VERSION
    assert decode_raw(part[3]) == decode_raw(bytes.fromhex(VERSION_2_BATCH)) + VERSION_3_EVENTS


def test_non_focus_events_carry_no_text() -> None:
    (key, focus) = decode_events(
        encode_events(
            [
                (0, int(Kind.KEY_DOWN), 97, 0, 0, 0, None),
                (1000, int(Kind.FOCUS), 0, 0, 0, 0, ("app", None)),
            ]
        )
    )
    assert (key.app, key.title, key.b) == (None, None, 0)
    assert (focus.app, focus.title) == ("app", None)


def test_context_events_keep_their_numbers_and_texts() -> None:
    events: list[RawEvent] = [
        (0, int(Kind.SCREEN), 2, 3840, 1080, 125, None),
        (0, int(Kind.MONITOR), 0, 0, 1920, 1080, None),
        (0, int(Kind.MONITOR), 1920, 0, 1920, 1080, None),
        (0, int(Kind.LAYOUT), 1, 0, 0, 0, ("de", None)),
        (1000, int(Kind.FOCUS), 10, -20, 800, 600, ("Gedit", "notes.txt")),
    ]
    decoded = decode_events(encode_events(events))
    assert as_raw(decoded) == events
    assert (decoded[3].app, decoded[3].title, decoded[3].a) == ("de", None, 1)
    assert decode_raw(encode_events(events)) == events


def test_a_batch_of_input_alone_has_no_context_columns() -> None:
    # Context columns (and the first pointer position) are left out whole when
    # a batch has no such event.
    events = [(i * MS, int(Kind.KEY_DOWN), 97 + i % 3, 0, 0, 0, None) for i in range(100)]
    data = encode_events(events)
    assert data[0] == CODEC_VERSION == 4
    # header 17 + µs (100 + 25) + kinds 100 + ms deltas (1 + 100) + keys (1 + 100)
    # + 4 empty pointer columns + texts 4
    assert len(data) == 17 + 125 + 100 + 101 + 101 + 4 + 4


def test_version_2_batches_still_decode() -> None:
    v2 = bytes.fromhex(VERSION_2_BATCH)
    assert decode_raw(v2) == [
        (1_000_000, int(Kind.FOCUS), 0, 0, 0, 0, ("app", None)),
        (2_000_000, int(Kind.KEY_DOWN), 97, 0, 0, 0, None),
        (3_000_000, int(Kind.MOVE), 5, 6, 0, 0, None),
    ]


def test_version_3_batches_still_decode() -> None:
    assert decode_raw(bytes.fromhex(VERSION_3_BATCH)) == VERSION_3_EVENTS
    assert as_raw(decode_events(bytes.fromhex(VERSION_3_BATCH))) == VERSION_3_EVENTS


# Written by codec version 3: µs stamps, a focus change with geometry, a move,
# a BackSpace pressed and released, a click.
VERSION_3_BATCH = (
    "0305000000bb4b4c000000000001000000070301020404be28161d2fba792500000000000000"
    "00040808ffff000000000280f602ff02900a01000100010100001000000004000000617070060000"
    "007469746c65010a0114022c0102c800"
)
VERSION_3_EVENTS: list[RawEvent] = [
    (5_000_123_000, int(Kind.FOCUS), 10, 20, 300, 200, ("app", "title")),
    (5_012_345_000, int(Kind.MOVE), 640, 400, 0, 0, None),
    (5_060_001_000, int(Kind.KEY_DOWN), 0xFF08, 0, 0, 0, None),
    (5_090_999_000, int(Kind.KEY_UP), 0xFF08, 0, 0, 0, None),
    (5_100_500_000, int(Kind.BUTTON_DOWN), 630, 410, 1, 0, None),
]


def test_version_2_batches_cannot_hold_context_kinds() -> None:
    v2 = bytearray.fromhex(VERSION_2_BATCH)
    v2[17] = int(Kind.SCREEN)
    with pytest.raises(CodecError, match="unknown event kind"):
        decode_events(bytes(v2))


# Written by codec version 2: a focus change ("app", no title), a key, a move.
VERSION_2_BATCH = (
    "0203000000e803000000000000e8030000070103010101016101"
    "050106010001000b0000000400000061707000000000"
)


def test_times_are_kept_to_the_microsecond() -> None:
    (event,) = decode_events(
        encode_events([(1_234_567_891, int(Kind.KEY_DOWN), 97, 0, 0, 0, None)])
    )
    assert event.t_ns == 1_234_567_000


def test_millisecond_stamps_are_stored_in_millisecond_ticks() -> None:
    events = [(i * 8 * MS, int(Kind.MOVE), i, i, 0, 0, None) for i in range(100)]
    data = encode_events(events)
    _, _, _, tick = struct.unpack_from("<BIqI", data)
    assert tick == 8
    assert as_raw(decode_events(data)) == events


def test_a_microsecond_beyond_its_millisecond_is_rejected() -> None:
    events = [(i * MS + 999_000, int(Kind.MOVE), 0, 0, 0, 0, None) for i in range(3)]
    data = bytearray(encode_events(events))
    # After the header, the µs: low bytes (3), then their high two bits (1 byte)
    assert data[17:21] == bytes([999 & 0xFF] * 3) + bytes([0b00_11_11_11])
    data[17] = 0xFF  # 1023: beyond 999
    with pytest.raises(CodecError, match="beyond its millisecond"):
        decode_raw(bytes(data))


def test_events_hours_apart_round_trip() -> None:
    events = [
        (0, int(Kind.KEY_DOWN), 97, 0, 0, 0, None),
        (10**13, int(Kind.KEY_UP), 97, 0, 0, 0, None),
    ]
    assert as_raw(decode_events(encode_events(events))) == events


@pytest.mark.parametrize("kind", [0, 13, 200])
def test_unknown_kinds_are_refused_when_encoding(kind: int) -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        encode_events([(0, kind, 0, 0, 0, 0, None)])


def test_small_values_take_one_byte_per_column_entry() -> None:
    events = [(i * MS, int(Kind.MOVE), 50 + i % 3, 30 - i % 5, 0, 0, None) for i in range(1000)]
    # header 17 + µs (1000 + 250) + kinds 1000 + ms deltas (1 + 1000) + keys 1
    # + first position (1 + 2) + dx, dy (1 + 999) + buttons, steps (1 + 1000) + texts 4
    assert len(encode_events(events)) == (17 + 1250 + 1000 + 1001 + 1 + 3 + 2 * 1000 + 2 * 1001 + 4)


@pytest.mark.parametrize("cut", [1, 5, 20, 60])
def test_truncated_batch_is_rejected(cut: int) -> None:
    data = encode_events(
        [(i * 1000, int(Kind.MOVE), i * 300, -i, 0, 0, None) for i in range(10)]
        + [(20_000, int(Kind.FOCUS), 0, 0, 0, 0, ("a", "b"))]
    )
    with pytest.raises(CodecError):
        decode_events(data[:-cut])


def test_trailing_bytes_are_rejected() -> None:
    data = encode_events([(0, int(Kind.KEY_DOWN), 97, 0, 0, 0, None)])
    with pytest.raises(CodecError, match="trailing"):
        decode_events(data + b"\x00")


def test_unknown_version_is_rejected() -> None:
    data = bytearray(encode_events([(0, int(Kind.KEY_DOWN), 97, 0, 0, 0, None)]))
    assert data[0] == CODEC_VERSION
    data[0] = 99
    with pytest.raises(CodecError, match="version 99"):
        decode_events(bytes(data))


@pytest.mark.parametrize("kind", [0, 13, 255])
def test_unknown_event_kind_is_rejected(kind: int) -> None:
    data = bytearray(encode_events([(0, int(Kind.EXCLUDED_START), 0, 0, 0, 0, None)]))
    data[19] = kind  # the kinds column follows the 17-byte header and the µs (2 bytes)
    with pytest.raises(CodecError, match="unknown event kind"):
        decode_events(bytes(data))


def test_values_beyond_64_bits_are_refused() -> None:
    with pytest.raises(ValueError, match="64-bit"):
        encode_events([(0, int(Kind.MOVE), 2**63, 0, 0, 0, None)])


def realistic(n: int, jitter: bool, seed: int = 11) -> list[RawEvent]:
    """60 % moves with small deltas, 30 % key down/up, 7 % clicks, 3 % scrolls,
    a focus change every 500 events; with `jitter`, sub-millisecond stamps."""
    rnd = random.Random(seed)  # noqa: S311 - a reproducible test stream, not crypto
    out: list[RawEvent] = []
    t, x, y = 10**12, 640, 400

    def at() -> int:
        return t + (rnd.randrange(MS) if jitter else 0)

    while len(out) < n:
        if len(out) % 500 == 0:
            out.append((at(), int(Kind.FOCUS), 0, 0, 0, 0, ("code", f"file{rnd.randint(1, 9)}.py")))
            continue
        r = rnd.random()
        if r < 0.60:
            t += rnd.randint(8, 16) * MS
            x, y = x + rnd.randint(-6, 6), y + rnd.randint(-4, 4)
            out.append((at(), int(Kind.MOVE), x, y, 0, 0, None))
        elif r < 0.90:
            key = rnd.choice(b"etaoinshrdlu ")
            t += rnd.randint(40, 160) * MS
            out.append((at(), int(Kind.KEY_DOWN), key, 0, 0, 0, None))
            t += rnd.randint(30, 90) * MS
            out.append((at(), int(Kind.KEY_UP), key, 0, 0, 0, None))
        elif r < 0.97:
            t += rnd.randint(100, 600) * MS
            out.append((at(), int(Kind.BUTTON_DOWN), x, y, 1, 0, None))
            t += rnd.randint(60, 120) * MS
            out.append((at(), int(Kind.BUTTON_UP), x, y, 1, 0, None))
        else:
            t += rnd.randint(20, 80) * MS
            out.append((at(), int(Kind.SCROLL), x, y, 0, rnd.choice((-1, 1)), None))
    return out[:n]


@pytest.mark.parametrize(("jitter", "limit"), [(False, 2.5), (True, 3.6)])
def test_realistic_mix_compresses_to_a_few_bytes_per_event(jitter: bool, limit: float) -> None:
    events = realistic(20_000, jitter)
    packed = zstandard.ZstdCompressor(level=3).compress(encode_events(events))
    assert len(packed) / len(events) <= limit


@pytest.mark.parametrize(("jitter", "limit"), [(False, 1.7), (True, 3.0)])
def test_a_compacted_realistic_mix_takes_under_three_bytes_per_event(
    jitter: bool, limit: float
) -> None:
    # As compaction compresses: large batches, its zstd settings.
    events = realistic(200_000, jitter)
    packed = zstd_compressor(COMPACT_LEVEL).compress(encode_events(events))
    assert len(packed) / len(events) <= limit
