"""Columnar encoding of an event batch, shaped for zstd.

Layout (little-endian), version 4::

    u8  version      u32 n      i64 t0_ms      u32 tick_ms
    sub              the microseconds within each event's millisecond
                     (0-999): n bytes, their low 8 bits, then ceil(n/4)
                     bytes, their high 2 bits four to a byte (the first
                     event's in the lowest bits, padded with 0)
    kinds            n bytes, one Kind per event, in order
    int col dms      n time deltas in ticks of `tick_ms` milliseconds, each
                     from the event before (the first from t0, so 0),
                     grouped by kind: all of kind 1 in order, then kind 2, ...
    int col keysyms  one per KEY_DOWN/KEY_UP, in order
    int col x0, y0   the first MOVE/BUTTON/SCROLL event's position
                                                     (only if there are any)
    int col dx, dy   position deltas of the following such events, in order
    int col c, d     button / scroll steps of those events (0 for moves)
    texts            u32 byte length, then per FOCUS: app, title, and after
                     them per LAYOUT: its layout name, each as u32 (UTF-8
                     length + 1, 0 = None) followed by the UTF-8
    int col a,b,c,d  the four numbers of FOCUS (window geometry), SCREEN and
                     MONITOR events, in order        (only if there are any)
    int col group    the XKB group of LAYOUT events  (only if there are any)

An `int col` is one width byte w (1, 2, 4 or 8: the narrowest signed type
that holds every value) followed by the values as w byte planes: all low
bytes, then all second bytes, and so on. Its length follows from n and the
kinds, so it needs no length field.

Version 3 had, instead of `sub` and `dms`, one column of n-1 deltas in
ticks of microseconds after the kinds (t0 and the tick in µs), and pointer x
and y as deltas whose first is from 0 (no x0, y0). Version 2 is version 3
without the two context sections and without kinds 10-12 (its focus events
carry no geometry). Both are still decoded, so stores written before open
unchanged. Version 5 is the rows layout a flush writes (store/_codec_rows.py).

Why this shape: splitting by column puts like next to like, the narrowest
width drops the zero bytes, and byte planes put the near-constant high bytes
together and the noisy low bytes together, which is what lets zstd reach a
few bytes per event. Times are kept in microseconds: a hook stamps events
when they are delivered, so the nanoseconds below that are scheduling
jitter, and jitter does not compress. The microseconds within a millisecond
are that kind of noise too, about ten bits an event whatever is done (version
4): stored as exactly ten bits each, zstd keeps them as they are and wastes
nothing on them, and first, apart from the other columns, they share no
compressed block's statistics with them. Without them the deltas,
in milliseconds and grouped by kind, are each a narrow range (a move 8-16 ms
after the event before it, a key release 30-90 ms); the first pointer
position apart keeps the pointer deltas one byte wide. Measured on a
realistic mix stamped like a monotonic clock: ~2.9 bytes an event at
compaction's zstd setting, against ~3.3 in version 3. A stream stamped in
whole milliseconds pays for milliseconds only (`sub` all zero, `tick` the
deltas' divisor). Context events are rare, so their numbers get columns of
their own, at the end and left out when empty. Encoding and decoding are a
few C-level passes per column (comprehensions, slicing, `map`, `itertools`),
no Python code per event beyond building `Event`s; compaction joins batches
by column (`Recoder`) and builds no tuple at all.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import repeat
from typing import TypeVar

from cleartrace.events import Event, FocusText, Kind, RawEvent
from cleartrace.store._codec_batch import (
    CODEC_VERSION,
    FOCUS,
    KEYS,
    LAYOUT,
    MARKERS,
    PLACES,
    POINTER,
    Batch,
    encode,
    from_events,
    parse,
    select,
)
from cleartrace.store._codec_columns import gc_paused
from cleartrace.store._codec_join import join, split
from cleartrace.store._codec_rows import ROWS_VERSION, Rows, encode_rows

__all__ = [
    "CODEC_VERSION",
    "ROWS_VERSION",
    "Encoded",
    "Recoder",
    "decode_events",
    "decode_raw",
    "encode_events",
    "encode_rows",
]

_T = TypeVar("_T")
_V = TypeVar("_V")
_KIND_OF = {int(k): k for k in Kind}
_NEW_TUPLE = tuple.__new__

#: An encoded batch: (number of events, first t_ns, last t_ns, bytes).
Encoded = tuple[int, int, int, bytes]


def encode_events(events: Sequence[RawEvent]) -> bytes:
    """Encode a batch by column (version 4); events should be in time order
    (they are, from one queue). A flush writes rows instead (`encode_rows`,
    store/_codec_rows.py); both decode alike.

    Raises:
        ValueError: an unknown kind, or a field beyond a signed 64-bit integer.
    """
    return encode(from_events(events))


def _parse_any(data: bytes) -> Batch:
    """The columns of a batch of any readable version, rows included, its
    times in ns (`Batch.us` holding them: for decoding only)."""
    if data[:1] == _ROWS_BYTE:
        rows = Rows()
        rows.add(data)
        return rows.batch(ns=True)
    return parse(data, ns=True)


_ROWS_BYTE = bytes([ROWS_VERSION])


# -- decoding ---------------------------------------------------------------------


def _merge(kinds: bytes, groups: dict[tuple[int, ...], Iterator[_T]]) -> list[_T]:
    """Interleave per-group streams back into the batch's order.

    Per kind byte, the next item of the group that kind belongs to: one
    C-level `map`, no Python code per event.
    """
    pick: dict[int, Callable[[], _T]] = {}
    for members, stream in groups.items():
        pick.update(dict.fromkeys(members, stream.__next__))
    return list(map(operator.call, map(pick.__getitem__, kinds)))


def _place_texts(b: Batch) -> Iterator[FocusText | None]:
    """(app, title) for each focus event among the FOCUS/SCREEN/MONITOR ones, else None."""
    texts = zip(b.apps, b.titles, strict=True)
    return (next(texts) if k == FOCUS else None for k in select(b.kinds, b.kinds, PLACES))


def decode_events(data: bytes) -> list[Event]:
    """Decode a batch written by `encode_events` (version 4) or `encode_rows`
    (version 5), or an older store's version 2 or 3, into typed events.

    Raises:
        CodecError: unknown version, truncated or inconsistent columns.
    """
    with gc_paused():
        return _decode_events(_parse_any(data))


def _decode_events(b: Batch) -> list[Event]:
    kinds, times = b.kinds, b.us  # in ns (`_parse_any`)
    kind_of = _KIND_OF.__getitem__
    zero, none = repeat(0), repeat(None)

    def events(*fields: Iterable[object]) -> Iterator[Event]:
        # tuple.__new__ straight from the zipped fields: C-level, where
        # Event(...) runs the named tuple's Python-level __new__ per event.
        return map(_NEW_TUPLE, repeat(Event), zip(*fields, strict=False))

    places = (
        Event(t, kind_of(k), a, bb, cc, d, *(text or (None, None)))
        for t, k, a, bb, cc, d, text in zip(
            select(times, kinds, PLACES),
            select(kinds, kinds, PLACES),
            *b.places,
            _place_texts(b),
            strict=True,
        )
    )
    # One lazy stream of Events per group of kinds, merged back into order.
    return _merge(
        kinds,
        {
            KEYS: events(
                select(times, kinds, KEYS),
                map(kind_of, select(kinds, kinds, KEYS)),
                b.keys,
                zero,
                zero,
                zero,
                none,
                none,
            ),
            POINTER: events(
                select(times, kinds, POINTER),
                map(kind_of, select(kinds, kinds, POINTER)),
                *b.pointer,
                none,
                none,
            ),
            PLACES: places,
            (LAYOUT,): events(
                select(times, kinds, (LAYOUT,)),
                repeat(Kind.LAYOUT),
                b.groups,
                zero,
                zero,
                zero,
                b.layouts,
                none,
            ),
            MARKERS: events(
                select(times, kinds, MARKERS),
                map(kind_of, select(kinds, kinds, MARKERS)),
                zero,
                zero,
                zero,
                zero,
                none,
                none,
            ),
        },
    )


def decode_raw(data: bytes) -> list[RawEvent]:
    """Decode a batch back into `RawEvent` tuples, as `encode_events` takes them.

    Several times faster than `decode_events` (no objects but tuples).

    Raises:
        CodecError: unknown version, truncated or inconsistent columns.
    """
    with gc_paused():
        return _decode_raw(_parse_any(data))


def _decode_raw(b: Batch) -> list[RawEvent]:
    kinds, times = b.kinds, b.us  # in ns (`_parse_any`)
    zero, none = repeat(0), repeat(None)
    return _merge(
        kinds,
        {
            KEYS: zip(
                select(times, kinds, KEYS),
                select(kinds, kinds, KEYS),
                b.keys,
                zero,
                zero,
                zero,
                none,
                strict=False,
            ),
            POINTER: zip(
                select(times, kinds, POINTER),
                select(kinds, kinds, POINTER),
                *b.pointer,
                none,
                strict=False,
            ),
            PLACES: zip(
                select(times, kinds, PLACES),
                select(kinds, kinds, PLACES),
                *b.places,
                _place_texts(b),
                strict=True,
            ),
            (LAYOUT,): zip(
                select(times, kinds, (LAYOUT,)),
                repeat(LAYOUT),
                b.groups,
                zero,
                zero,
                zero,
                zip(b.layouts, none, strict=False),
            ),
            MARKERS: zip(
                select(times, kinds, MARKERS),
                select(kinds, kinds, MARKERS),
                zero,
                zero,
                zero,
                zero,
                none,
                strict=False,
            ),
        },
    )


class Recoder:
    """Many batches in, the same events out as batches of `per_batch` events.

    Compaction: a session's small chunks (one per flush) become a few large
    ones. Rows batches are joined as bytes and parsed together; other
    batches are parsed one by one; both are joined by column, so no tuple is
    built per event. At most about `per_batch` events are held beyond the
    batch being added. `kinds` holds the kinds of every event given out.

    Raises (from `add`, `finish`):
        CodecError: a batch does not parse.
    """

    def __init__(self, per_batch: int) -> None:
        if per_batch < 1:
            raise ValueError("a re-encoded batch holds at least one event")
        self._per_batch = per_batch
        self._pending: list[Batch] = []  # parsed, in order, before the rows
        self._rows = Rows()
        self._held = 0
        self.kinds: list[bytes] = []

    def add(self, data: bytes) -> list[Encoded]:
        """Take one batch; the batches it completed, encoded."""
        if data[:1] == _ROWS_BYTE:
            self._held += self._rows.add(data)
        else:
            batch = parse(data)
            self._close_rows()
            self._pending.append(batch)
            self._held += len(batch)
        if self._held < self._per_batch:
            return []
        out: list[Encoded] = []
        if not self._pending:  # rows only (a recording's): cut them as bytes
            while self._rows.count >= self._per_batch:
                out.append(self._encoded(self._rows.take(self._per_batch)))
            self._held = self._rows.count
            return out
        self._close_rows()
        rest = join(self._pending)
        while len(rest) >= self._per_batch:
            head, rest = split(rest, self._per_batch)
            out.append(self._encoded(head))
        self._pending, self._held = ([rest] if len(rest) else []), len(rest)
        return out

    def finish(self) -> list[Encoded]:
        """The last, partial batch, if any events are left."""
        self._close_rows()
        rest = join(self._pending) if self._pending else None
        self._pending, self._held = [], 0
        return [self._encoded(rest)] if rest is not None and len(rest) else []

    def _close_rows(self) -> None:
        if self._rows.count:
            self._pending.append(self._rows.batch())
            self._rows = Rows()

    def _encoded(self, b: Batch) -> Encoded:
        self.kinds.append(b.kinds)
        return len(b), b.us[0] * 1000, b.us[-1] * 1000, encode(b)
