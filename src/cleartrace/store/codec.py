"""Columnar encoding of an event batch, shaped for zstd.

Layout (little-endian), version 3::

    u8  version      u32 n      i64 t0_us      u32 tick_us
    kinds            n bytes, one Kind per event, in order
    int col dt       n-1 time deltas, in ticks of `tick_us` microseconds
    int col keysyms  one per KEY_DOWN/KEY_UP, in order
    int col dx, dy   position deltas of MOVE/BUTTON/SCROLL events, in order
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

Version 2 is the same without the two context sections and without kinds
10-12 (its focus events carry no geometry); it is still decoded, so stores
written before version 3 open unchanged.

Why this shape: splitting by column puts like next to like, the narrowest
width drops the zero bytes, and byte planes put the near-constant high bytes
together and the noisy low bytes together, which is what lets zstd reach a
few bytes per event. Context events are rare, so their numbers get columns
of their own, after everything else and left out when empty: a batch of
input alone is byte for byte as long as in version 2. `tick_us` is the
greatest common divisor of the time deltas: a stream stamped in whole
milliseconds pays for milliseconds only. Times are kept in microseconds: a
hook stamps events when they are delivered, so the nanoseconds below that
are scheduling jitter, and jitter does not compress. The input columns cost
a few C-level passes (comprehensions, slicing, `map`), never Python code per
event beyond the `Event` constructor; only the rare context events are
built one by one.
"""

from __future__ import annotations

import math
import operator
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, chain, compress, pairwise, repeat
from typing import Any, TypeVar

from cleartrace.errors import CodecError
from cleartrace.events import Event, FocusText, Kind, RawEvent
from cleartrace.store._codec_columns import Reader, deltas, gc_paused, int_col, texts_block

__all__ = ["CODEC_VERSION", "decode_events", "decode_raw", "encode_events"]

_T = TypeVar("_T")
_V = TypeVar("_V")

CODEC_VERSION = 3
_READABLE = (2, 3)
_HEAD = struct.Struct("<BIqI")
_KEYS = (int(Kind.KEY_DOWN), int(Kind.KEY_UP))
_POINTER = (int(Kind.MOVE), int(Kind.BUTTON_DOWN), int(Kind.BUTTON_UP), int(Kind.SCROLL))
_FOCUS = int(Kind.FOCUS)
_LAYOUT = int(Kind.LAYOUT)
_PLACES = (_FOCUS, int(Kind.SCREEN), int(Kind.MONITOR))  # four numbers each
_MARKERS = (int(Kind.EXCLUDED_START), int(Kind.EXCLUDED_END))
# bytes.translate tables turning a kinds column into 0/1 selectors for
# itertools.compress: keys, pointer events, focus/screen/monitor, layouts, markers.
_MASKS = tuple(
    bytes(1 if k in group else 0 for k in range(256))
    for group in (_KEYS, _POINTER, _PLACES, (_LAYOUT,), _MARKERS)
)
_FOCUS_ONLY = bytes(1 if k == _FOCUS else 0 for k in range(256))
_KIND_OF = {int(k): k for k in Kind}
_VALID_KINDS = bytes(_KIND_OF)
_CONTEXT_KINDS = (int(Kind.SCREEN), int(Kind.MONITOR), _LAYOUT)  # not in version 2
_TICK_MAX = 0xFFFFFFFF


# -- encoding ---------------------------------------------------------------------


def _text_list(texts: Iterable[FocusText | None], fields: int) -> list[str | None]:
    """The first `fields` texts of each event's (app, title), None when absent."""
    return [s for pair in texts for s in (pair or (None, None))[:fields]]


def encode_events(events: Sequence[RawEvent]) -> bytes:
    """Encode a batch; events should be in time order (they are, from one queue).

    Raises:
        ValueError: an unknown kind, or a field beyond a signed 64-bit integer.
    """
    n = len(events)
    columns: list[tuple[Any, ...]] = list(zip(*events, strict=True)) or [()] * 7
    ts, kinds, a, b, c, d, texts = columns
    us = [t // 1000 for t in ts]
    dts = [y - x for x, y in pairwise(us)]
    tick = math.gcd(*dts)
    if not 0 < tick <= _TICK_MAX:
        tick = 1  # no deltas, or so few and far apart that one would not fit
    if tick > 1:
        dts = [x // tick for x in dts]
    kind_bytes = bytes(kinds)
    if kind_bytes.translate(None, _VALID_KINDS):
        raise ValueError("an event has an unknown kind")
    key_mask, ptr_mask, place_mask, layout_mask, _ = (kind_bytes.translate(m) for m in _MASKS)
    focus_mask = kind_bytes.translate(_FOCUS_ONLY)
    parts = [
        _HEAD.pack(CODEC_VERSION, n, us[0] if n else 0, tick),
        kind_bytes,
        int_col(dts),
        int_col(list(compress(a, key_mask))),
        int_col(deltas(list(compress(a, ptr_mask)))),
        int_col(deltas(list(compress(b, ptr_mask)))),
        int_col(list(compress(c, ptr_mask))),
        int_col(list(compress(d, ptr_mask))),
        texts_block(
            chain(
                _text_list(compress(texts, focus_mask), 2),
                _text_list(compress(texts, layout_mask), 1),
            )
        ),
    ]
    if b"\x01" in place_mask:
        parts += (int_col(list(compress(col, place_mask))) for col in (a, b, c, d))
    if b"\x01" in layout_mask:
        parts.append(int_col(list(compress(a, layout_mask))))
    return b"".join(parts)


# -- decoding ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Columns:
    """A parsed batch: the kinds column, absolute times and the sparse columns."""

    kinds: bytes
    times: list[int]
    keys: list[int]
    pointer: tuple[list[int], list[int], list[int], list[int]]
    places: tuple[list[int], ...]  # a, b, c, d of FOCUS/SCREEN/MONITOR events
    groups: list[int]  # of LAYOUT events
    apps: list[str | None]
    titles: list[str | None]
    layouts: list[str | None]

    def merge(self, groups: dict[tuple[int, ...], Iterator[_T]]) -> list[_T]:
        """Interleave per-group streams back into the batch's order.

        Per kind byte, the next item of the group that kind belongs to: one
        C-level `map`, no Python code per event.
        """
        pick: dict[int, Callable[[], _T]] = {}
        for members, stream in groups.items():
            pick.update(dict.fromkeys(members, stream.__next__))
        return list(map(operator.call, map(pick.__getitem__, self.kinds)))

    def select(self, column: Iterable[_V], mask: bytes) -> Iterator[_V]:
        return compress(column, self.kinds.translate(mask))

    def place_texts(self) -> Iterator[FocusText | None]:
        """(app, title) for each focus event among the FOCUS/SCREEN/MONITOR ones, else None."""
        texts = zip(self.apps, self.titles, strict=True)
        return (next(texts) if k == _FOCUS else None for k in self.select(self.kinds, _MASKS[2]))


def _parse(data: bytes) -> _Columns:
    if len(data) < _HEAD.size:
        raise CodecError("batch is truncated")
    version, n, t0, tick = _HEAD.unpack_from(data)
    if version not in _READABLE:
        raise CodecError(f"unknown batch version {version}")
    if tick == 0:
        raise CodecError("batch has a zero time tick")
    r = Reader(data, _HEAD.size)
    kinds = r.take(n)
    counts = {k: kinds.count(k) for k in _KIND_OF}
    if sum(counts.values()) != n or (version == 2 and any(counts[k] for k in _CONTEXT_KINDS)):
        raise CodecError("batch holds an unknown event kind")
    n_ptr = sum(counts[k] for k in _POINTER)
    n_places = sum(counts[k] for k in _PLACES)
    dts = r.ints(max(n - 1, 0))
    keys = r.ints(sum(counts[k] for k in _KEYS))
    pointer = (
        list(accumulate(r.ints(n_ptr))),
        list(accumulate(r.ints(n_ptr))),
        r.ints(n_ptr),
        r.ints(n_ptr),
    )
    n_focus = counts[_FOCUS]
    texts = r.texts(2 * n_focus + counts[_LAYOUT])
    if version == 2:
        places: tuple[list[int], ...] = ([0] * n_places,) * 4
    else:
        places = tuple(r.optional_ints(n_places) for _ in range(4))
    groups = r.optional_ints(counts[_LAYOUT])
    if r.pos != len(data):
        raise CodecError("batch has trailing bytes")
    us = accumulate(map(operator.mul, dts, repeat(tick)) if tick > 1 else dts, initial=t0)
    times = list(map(operator.mul, us, repeat(1000))) if n else []
    apps, titles = texts[0 : 2 * n_focus : 2], texts[1 : 2 * n_focus : 2]
    return _Columns(kinds, times, keys, pointer, places, groups, apps, titles, texts[2 * n_focus :])


def decode_events(data: bytes) -> list[Event]:
    """Decode a batch written by `encode_events` (version 3, or an older
    store's version 2) into typed events.

    Raises:
        CodecError: unknown version, truncated or inconsistent columns.
    """
    with gc_paused():
        return _decode_events(data)


def _decode_events(data: bytes) -> list[Event]:
    c = _parse(data)
    kind_of = _KIND_OF.__getitem__
    key, ptr, place, layout, marker = _MASKS
    places = (
        Event(t, kind_of(k), a, b, cc, d, *(text or (None, None)))
        for t, k, a, b, cc, d, text in zip(
            c.select(c.times, place),
            c.select(c.kinds, place),
            *c.places,
            c.place_texts(),
            strict=True,
        )
    )
    # One lazy stream of Events per group of kinds, merged back into order.
    return c.merge(
        {
            _KEYS: map(Event, c.select(c.times, key), map(kind_of, c.select(c.kinds, key)), c.keys),
            _POINTER: map(
                Event, c.select(c.times, ptr), map(kind_of, c.select(c.kinds, ptr)), *c.pointer
            ),
            _PLACES: places,
            (_LAYOUT,): map(
                Event,
                c.select(c.times, layout),
                repeat(Kind.LAYOUT),
                c.groups,
                *([repeat(0)] * 3),
                c.layouts,
            ),
            _MARKERS: map(
                Event, c.select(c.times, marker), map(kind_of, c.select(c.kinds, marker))
            ),
        }
    )


def decode_raw(data: bytes) -> list[RawEvent]:
    """Decode a batch back into `RawEvent` tuples, as `encode_events` takes them.

    Several times faster than `decode_events` (no objects but tuples): what
    re-sealing (compaction) uses.

    Raises:
        CodecError: unknown version, truncated or inconsistent columns.
    """
    with gc_paused():
        return _decode_raw(data)


def _decode_raw(data: bytes) -> list[RawEvent]:
    c = _parse(data)
    key, ptr, place, layout, marker = _MASKS
    zero = repeat(0)
    return c.merge(
        {
            _KEYS: zip(
                c.select(c.times, key),
                c.select(c.kinds, key),
                c.keys,
                zero,
                zero,
                zero,
                repeat(None),
            ),
            _POINTER: zip(c.select(c.times, ptr), c.select(c.kinds, ptr), *c.pointer, repeat(None)),
            _PLACES: zip(
                c.select(c.times, place),
                c.select(c.kinds, place),
                *c.places,
                c.place_texts(),
                strict=True,
            ),
            (_LAYOUT,): zip(
                c.select(c.times, layout),
                repeat(_LAYOUT),
                c.groups,
                zero,
                zero,
                zero,
                zip(c.layouts, repeat(None)),
            ),
            _MARKERS: zip(
                c.select(c.times, marker),
                c.select(c.kinds, marker),
                zero,
                zero,
                zero,
                zero,
                repeat(None),
            ),
        }
    )
