"""Columnar encoding of an event batch, shaped for zstd.

Layout (little-endian), version 2::

    u8  version      u32 n      i64 t0_us      u32 tick_us
    kinds            n bytes, one Kind per event, in order
    int col dt       n-1 time deltas, in ticks of `tick_us` microseconds
    int col keysyms  one per KEY_DOWN/KEY_UP, in order
    int col dx, dy   position deltas of MOVE/BUTTON/SCROLL events, in order
    int col c, d     button / scroll steps of those events (0 for moves)
    texts            u32 byte length, then per FOCUS: app, title, each as
                     u32 (UTF-8 length + 1, 0 = None) followed by the UTF-8

An `int col` is one width byte w (1, 2, 4 or 8: the narrowest signed type
that holds every value) followed by the values as w byte planes: all low
bytes, then all second bytes, and so on. Its length follows from n and the
kinds, so it needs no length field.

Why this shape: splitting by column puts like next to like, the narrowest
width drops the zero bytes, and byte planes put the near-constant high bytes
together and the noisy low bytes together, which is what lets zstd reach a
few bytes per event. `tick_us` is the greatest common divisor of the time
deltas: a stream stamped in whole milliseconds pays for milliseconds only.
Times are kept in microseconds: a hook stamps events when they are delivered,
so the nanoseconds below that are scheduling jitter, and jitter does not
compress. All of it costs a few C-level passes (comprehensions, slicing,
`map`), never Python code per event beyond the `Event` constructor.
"""

from __future__ import annotations

import contextlib
import gc
import math
import operator
import struct
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, compress, pairwise, repeat
from typing import Any, TypeVar

from cleartrace.errors import CodecError
from cleartrace.events import Event, FocusText, Kind, RawEvent

__all__ = ["CODEC_VERSION", "decode_events", "decode_raw", "encode_events"]

_T = TypeVar("_T")
_V = TypeVar("_V")

CODEC_VERSION = 2
_HEAD = struct.Struct("<BIqI")
_U32 = struct.Struct("<I")
_WIDTH_CODE = {1: "b", 2: "h", 4: "i", 8: "q"}
_KEYS = (int(Kind.KEY_DOWN), int(Kind.KEY_UP))
_POINTER = (int(Kind.MOVE), int(Kind.BUTTON_DOWN), int(Kind.BUTTON_UP), int(Kind.SCROLL))
_FOCUS = int(Kind.FOCUS)
_MARKERS = (int(Kind.EXCLUDED_START), int(Kind.EXCLUDED_END))
# bytes.translate tables turning a kinds column into 0/1 selectors for
# itertools.compress: keys, pointer events, focus changes, markers.
_MASKS = tuple(
    bytes(1 if k in group else 0 for k in range(256))
    for group in (_KEYS, _POINTER, (_FOCUS,), _MARKERS)
)
_KIND_OF = {int(k): k for k in Kind}
_VALID_KINDS = bytes(_KIND_OF)
_TICK_MAX = 0xFFFFFFFF


# -- encoding ---------------------------------------------------------------------


def _deltas(values: Sequence[int]) -> list[int]:
    if not values:
        return []
    return [values[0], *(y - x for x, y in pairwise(values))]


def _int_col(values: Sequence[int]) -> bytes:
    """Width byte + byte planes of the narrowest signed type holding `values`."""
    lo, hi = (min(values), max(values)) if values else (0, 0)
    width = next((w for w in _WIDTH_CODE if -(1 << (8 * w - 1)) <= lo and hi < 1 << (8 * w - 1)), 0)
    if not width:
        raise ValueError("an event field does not fit in a signed 64-bit integer")
    raw = array(_WIDTH_CODE[width], values).tobytes()
    return bytes([width]) + b"".join(raw[i::width] for i in range(width))


def _texts(texts: Iterable[FocusText | None]) -> bytes:
    out = bytearray()
    for pair in texts:
        for s in pair or (None, None):
            if s is None:
                out += _U32.pack(0)
            else:
                raw = s.encode("utf-8", "surrogatepass")
                out += _U32.pack(len(raw) + 1)
                out += raw
    return _U32.pack(len(out)) + out


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
    key_mask, ptr_mask, focus_mask, _ = (kind_bytes.translate(m) for m in _MASKS)
    parts = [
        _HEAD.pack(CODEC_VERSION, n, us[0] if n else 0, tick),
        kind_bytes,
        _int_col(dts),
        _int_col(list(compress(a, key_mask))),
        _int_col(_deltas(list(compress(a, ptr_mask)))),
        _int_col(_deltas(list(compress(b, ptr_mask)))),
        _int_col(list(compress(c, ptr_mask))),
        _int_col(list(compress(d, ptr_mask))),
        _texts(compress(texts, focus_mask)),
    ]
    return b"".join(parts)


# -- decoding ---------------------------------------------------------------------


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos = data, pos

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise CodecError("batch is truncated")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def ints(self, count: int) -> list[int]:
        width = self.take(1)[0]
        code = _WIDTH_CODE.get(width)
        if code is None:
            raise CodecError(f"unknown integer width {width}")
        planes = self.take(count * width)
        if width == 1:
            return array(code, planes).tolist()
        buf = bytearray(count * width)
        for i in range(width):
            buf[i::width] = planes[i * count : (i + 1) * count]
        return array(code, buf).tolist()


def _read_texts(raw: bytes, count: int) -> tuple[list[str | None], list[str | None]]:
    r = _Reader(raw, 0)
    apps: list[str | None] = []
    titles: list[str | None] = []
    try:
        for _ in range(count):
            for column in (apps, titles):
                (size,) = _U32.unpack(r.take(4))
                column.append(
                    None if size == 0 else r.take(size - 1).decode("utf-8", "surrogatepass")
                )
    except UnicodeDecodeError as exc:
        raise CodecError("a focus text is not valid UTF-8") from exc
    if r.pos != len(raw):
        raise CodecError("the focus texts have trailing bytes")
    return apps, titles


@dataclass(frozen=True, slots=True)
class _Columns:
    """A parsed batch: the kinds column, absolute times and the sparse columns."""

    kinds: bytes
    times: list[int]
    keys: list[int]
    px: list[int]
    py: list[int]
    pc: list[int]
    pd: list[int]
    apps: list[str | None]
    titles: list[str | None]

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


def _parse(data: bytes) -> _Columns:
    if len(data) < _HEAD.size:
        raise CodecError("batch is truncated")
    version, n, t0, tick = _HEAD.unpack_from(data)
    if version != CODEC_VERSION:
        raise CodecError(f"unknown batch version {version}")
    if tick == 0:
        raise CodecError("batch has a zero time tick")
    r = _Reader(data, _HEAD.size)
    kinds = r.take(n)
    counts = {k: kinds.count(k) for k in _KIND_OF}
    if sum(counts.values()) != n:
        raise CodecError("batch holds an unknown event kind")
    n_keys = sum(counts[k] for k in _KEYS)
    n_ptr = sum(counts[k] for k in _POINTER)
    dts = r.ints(max(n - 1, 0))
    keys = r.ints(n_keys)
    px, py = list(accumulate(r.ints(n_ptr))), list(accumulate(r.ints(n_ptr)))
    pc, pd = r.ints(n_ptr), r.ints(n_ptr)
    (text_size,) = _U32.unpack(r.take(4))
    apps, titles = _read_texts(r.take(text_size), counts[_FOCUS])
    if r.pos != len(data):
        raise CodecError("batch has trailing bytes")
    us = accumulate(map(operator.mul, dts, repeat(tick)) if tick > 1 else dts, initial=t0)
    times = list(map(operator.mul, us, repeat(1000))) if n else []
    return _Columns(kinds, times, keys, px, py, pc, pd, apps, titles)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a batch is decoded.

    Building a million tuples triggers a full generation scan every few
    thousand objects, half the cost of decoding; events hold only ints,
    strings and enum members, so they form no cycles to collect.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def decode_events(data: bytes) -> list[Event]:
    """Decode a batch written by `encode_events` into typed events.

    Raises:
        CodecError: unknown version, truncated or inconsistent columns.
    """
    with _gc_paused():
        return _decode_events(data)


def _decode_events(data: bytes) -> list[Event]:
    c = _parse(data)
    kind_of = _KIND_OF.__getitem__
    key, ptr, focus, marker = _MASKS
    # One lazy stream of Events per group of kinds, merged back into order.
    return c.merge(
        {
            _KEYS: map(Event, c.select(c.times, key), map(kind_of, c.select(c.kinds, key)), c.keys),
            _POINTER: map(
                Event,
                c.select(c.times, ptr),
                map(kind_of, c.select(c.kinds, ptr)),
                c.px,
                c.py,
                c.pc,
                c.pd,
            ),
            (_FOCUS,): map(
                Event,
                c.select(c.times, focus),
                repeat(Kind.FOCUS),
                *([repeat(0)] * 4),
                c.apps,
                c.titles,
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
    with _gc_paused():
        return _decode_raw(data)


def _decode_raw(data: bytes) -> list[RawEvent]:
    c = _parse(data)
    key, ptr, focus, marker = _MASKS
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
            _POINTER: zip(
                c.select(c.times, ptr),
                c.select(c.kinds, ptr),
                c.px,
                c.py,
                c.pc,
                c.pd,
                repeat(None),
            ),
            (_FOCUS,): zip(
                c.select(c.times, focus),
                repeat(_FOCUS),
                zero,
                zero,
                zero,
                zero,
                zip(c.apps, c.titles, strict=True),
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
