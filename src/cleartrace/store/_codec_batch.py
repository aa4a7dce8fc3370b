"""A batch of events held by column: what the codec parses into and encodes from.

Events arrive as tuples and are read back as tuples or `Event`s, but between
the two a batch is a handful of columns (`Batch`): the kinds as bytes, the
times in microseconds, and one list per field of each group of kinds. Encoding
and parsing go through this form, and so does compaction, which parses many
small batches, joins their columns and encodes them again as a few large
ones, never building a tuple per event (`store/codec.py`'s `Recoder`). The
byte layout is described in `store/codec.py`.
"""

from __future__ import annotations

import math
import operator
import struct
import sys
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate, chain, compress, repeat
from typing import Any

from cleartrace.errors import CodecError
from cleartrace.events import Kind, RawEvent
from cleartrace.store._codec_columns import Reader, int_col, texts_block

__all__ = [
    "CODEC_VERSION",
    "FOCUS",
    "KEYS",
    "LAYOUT",
    "MARKERS",
    "MASKS",
    "PLACES",
    "POINTER",
    "Batch",
    "assemble",
    "encode",
    "from_events",
    "parse",
    "select",
    "valid_kinds",
]

CODEC_VERSION = 4
_READABLE = (2, 3, 4)
HEAD = struct.Struct("<BIqI")
KEYS = (int(Kind.KEY_DOWN), int(Kind.KEY_UP))
POINTER = (int(Kind.MOVE), int(Kind.BUTTON_DOWN), int(Kind.BUTTON_UP), int(Kind.SCROLL))
FOCUS = int(Kind.FOCUS)
LAYOUT = int(Kind.LAYOUT)
PLACES = (FOCUS, int(Kind.SCREEN), int(Kind.MONITOR))  # four numbers each
MARKERS = (int(Kind.EXCLUDED_START), int(Kind.EXCLUDED_END))
_ALL_KINDS = tuple(int(k) for k in Kind)


def _mask(group: Iterable[int]) -> bytes:
    """A bytes.translate table turning a kinds column into 0/1 selectors."""
    members = set(group)
    return bytes(1 if k in members else 0 for k in range(256))


#: Selectors for itertools.compress: keys, pointer events, focus/screen/monitor,
#: layouts, markers.
MASKS = tuple(_mask(g) for g in (KEYS, POINTER, PLACES, (LAYOUT,), MARKERS))
_FOCUS_ONLY = _mask((FOCUS,))
_ONE_KIND = {k: _mask((k,)) for k in _ALL_KINDS}
_GROUP_MASK: dict[tuple[int, ...], bytes] = {
    g: _mask(g) for g in (KEYS, POINTER, PLACES, (LAYOUT,), MARKERS)
}
#: A group with fewer than one event in this many is found by `bytes.find`.
_RARE = 64
_VALID_KINDS = bytes(_ALL_KINDS)
_CONTEXT_KINDS = (int(Kind.SCREEN), int(Kind.MONITOR), LAYOUT)  # not in version 2
_TICK_MAX = 0xFFFFFFFF
_US_PER_MS = 1000
_NS_PER_MS = 1000 * _US_PER_MS
_SUB_NS = [us * 1000 for us in range(_US_PER_MS)]  # ints made once, shared
_BIG_ENDIAN = sys.byteorder == "big"
#: bytes.translate tables: a value 0-3 moved to bits 2k, 2k+1 of a byte, and back.
_SHIFT = tuple(bytes((v << 2 * k) & 0xFF for v in range(256)) for k in range(4))
_FIELD = tuple(bytes((v >> 2 * k) & 3 for v in range(256)) for k in range(4))
_IS_THREE = bytes(1 if v == 3 else 0 for v in range(256))


@dataclass(slots=True)
class Batch:
    """A batch by column: every event's kind and time, and per group of kinds
    its fields, in the batch's order. Pointer x and y are absolute here (the
    bytes hold their deltas)."""

    kinds: bytes
    us: list[int]  # time of each event, µs (ns when parsed for decoding)
    keys: list[int]  # keysym of KEY_DOWN/KEY_UP
    pointer: list[list[int]]  # x, y, button, scroll steps of MOVE/BUTTON/SCROLL
    places: list[list[int]]  # a, b, c, d of FOCUS/SCREEN/MONITOR
    groups: list[int]  # XKB group of LAYOUT
    apps: list[str | None]  # of FOCUS
    titles: list[str | None]  # of FOCUS
    layouts: list[str | None]  # name of LAYOUT

    def __len__(self) -> int:
        return len(self.kinds)


def _counts(kinds: bytes) -> list[int]:
    """Events per kind, indexed by kind (0 for an index that is no kind)."""
    counts = [0] * (max(_ALL_KINDS) + 1)
    for k in _ALL_KINDS:
        counts[k] = kinds.count(k)
    return counts


def from_events(events: Sequence[RawEvent]) -> Batch:
    """Columns of a batch of `RawEvent` tuples.

    Raises:
        ValueError: an unknown kind.
    """
    columns: list[tuple[Any, ...]] = list(zip(*events, strict=True)) or [()] * 7
    ts, kind_col, a, b, c, d, texts = columns
    kinds = bytes(kind_col)
    if kinds.translate(None, _VALID_KINDS):
        raise ValueError("an event has an unknown kind")
    focus = [pair or (None, None) for pair in compress(texts, kinds.translate(_FOCUS_ONLY))]
    layouts = [(pair or (None,))[0] for pair in compress(texts, kinds.translate(MASKS[3]))]
    return assemble(
        kinds,
        [t // 1000 for t in ts],
        (a, b, c, d),
        [pair[0] for pair in focus],
        [pair[1] for pair in focus],
        layouts,
    )


def assemble(
    kinds: bytes,
    us: list[int],
    fields: tuple[Sequence[int], Sequence[int], Sequence[int], Sequence[int]],
    apps: list[str | None],
    titles: list[str | None],
    layouts: list[str | None],
) -> Batch:
    """A batch from whole columns: each event's kind, time and four numbers
    (kept only where its kind has them), and the texts of its FOCUS and
    LAYOUT events. `kinds` must hold known kinds only."""
    a, b, c, d = fields
    return Batch(
        kinds,
        us,
        select(a, kinds, KEYS),
        [select(col, kinds, POINTER) for col in (a, b, c, d)],
        [select(col, kinds, PLACES) for col in (a, b, c, d)],
        select(a, kinds, (LAYOUT,)),
        apps,
        titles,
        layouts,
    )


def select(values: Sequence[Any], kinds: bytes, group: tuple[int, ...]) -> list[Any]:
    """The values of the events whose kind is in `group`, in order.

    A pass of `itertools.compress` over every event costs a few ns each;
    a group as rare as focus changes is found faster by `bytes.find`.
    """
    n = sum(map(kinds.count, group))
    if not n:
        return []
    if n * _RARE > len(kinds):
        mask = _ONE_KIND[group[0]] if len(group) == 1 else _GROUP_MASK[group]
        return list(compress(values, kinds.translate(mask)))
    at: list[int] = []
    for k in group:
        i = kinds.find(k)
        while i >= 0:
            at.append(i)
            i = kinds.find(k, i + 1)
    at.sort()
    return [values[i] for i in at]


def valid_kinds(kinds: bytes) -> bool:
    return not kinds.translate(None, _VALID_KINDS)


def encode(batch: Batch) -> bytes:
    """The version 4 bytes of a batch.

    Raises:
        ValueError: a field or a delta beyond a signed 64-bit integer.
    """
    kinds, us = batch.kinds, batch.us
    n = len(kinds)
    ms = list(map(operator.floordiv, us, repeat(_US_PER_MS)))
    sub = list(map(operator.mod, us, repeat(_US_PER_MS)))
    dms = [0, *map(operator.sub, ms[1:], ms)] if n else []
    tick = math.gcd(*dms)
    if not 0 < tick <= _TICK_MAX:
        tick = 1  # no deltas, or so far apart that one would not fit
    if tick > 1:
        dms = [x // tick for x in dms]
    present = [k for k in _ALL_KINDS if k in kinds]
    if len(present) > 1:
        # Each kind's deltas together: a move follows 8-16 ms after the event
        # before it, a key release 30-90 ms; apart, each range compresses well.
        dms = list(chain.from_iterable(select(dms, kinds, (k,)) for k in present))
    x, y, button, steps = batch.pointer
    parts = [
        HEAD.pack(CODEC_VERSION, n, ms[0] if n else 0, tick),
        _sub_bytes(sub),  # noise: first, apart from the columns zstd can model
        kinds,
        int_col(dms),
        int_col(batch.keys),
    ]
    if x:
        parts.append(int_col([x[0], y[0]]))
    parts += [
        int_col(list(map(operator.sub, x[1:], x))),
        int_col(list(map(operator.sub, y[1:], y))),
        int_col(button),
        int_col(steps),
        texts_block(
            chain(chain.from_iterable(zip(batch.apps, batch.titles, strict=True)), batch.layouts)
        ),
    ]
    if batch.places[0]:
        parts += map(int_col, batch.places)
    if batch.groups:
        parts.append(int_col(batch.groups))
    return b"".join(parts)


def _sub_bytes(sub: list[int]) -> bytes:
    """The microseconds within the millisecond (0-999): their low bytes, then
    their high two bits four to a byte (the first event's lowest).

    Each is about ten bits of noise, which zstd cannot compress: as ten bits
    exactly it stores them as they are; as two whole bytes its entropy coder
    wastes ~0.6 bits a value.
    """
    values = array("H", sub)
    if _BIG_ENDIAN:
        values.byteswap()
    raw = values.tobytes()
    low, high = raw[0::2], raw[1::2] + bytes(-len(sub) % 4)
    packed = 0
    for shift in range(4):
        packed |= int.from_bytes(high[shift::4].translate(_SHIFT[shift]), "little")
    return low + packed.to_bytes(len(high) // 4, "little")


def _read_sub(r: Reader, n: int) -> list[int]:
    """The `n` microseconds `_sub_bytes` wrote."""
    low = r.take(n)
    packed = r.take(-(-n // 4))
    high = bytearray(len(packed) * 4)
    for shift in range(4):
        high[shift::4] = packed.translate(_FIELD[shift])
    both = bytearray(2 * n)
    both[0::2], both[1::2] = low, high[:n]
    # 1000 = 3 * 256 + 232: beyond 999 only where the high bits are 3.
    if 3 in high and max(compress(low, high[:n].translate(_IS_THREE)), default=0) >= 232:
        raise CodecError("batch has a time beyond its millisecond")
    values = array("H", both)
    if _BIG_ENDIAN:
        values.byteswap()
    return values.tolist()


def _by_kind(values: list[int], kinds: bytes, counts: list[int]) -> list[int]:
    """`values` grouped by kind (as `encode` writes them) back in the batch's order."""
    present = [k for k in _ALL_KINDS if counts[k]]
    if len(present) <= 1:
        return values
    pick: dict[int, Callable[[], int]] = {}
    pos = 0
    for k in present:
        pick[k] = iter(values[pos : pos + counts[k]]).__next__
        pos += counts[k]
    return list(map(operator.call, map(pick.__getitem__, kinds)))


def _times(r: Reader, n: int, t0: int, tick: int, unit: int) -> list[int]:
    """Every event's time in units of `unit` µs (1 or 1000, ns), from older
    versions' µs deltas in order."""
    dts = r.ints(max(n - 1, 0))
    scaled = map(operator.mul, dts, repeat(tick * unit)) if tick * unit > 1 else dts
    return list(accumulate(scaled, initial=t0 * unit)) if n else []


def _times_v4(
    r: Reader, n: int, t0: int, tick: int, kinds: bytes, counts: list[int], sub: list[int], ns: bool
) -> list[int]:
    """Every event's time in µs, or with `ns` in ns: version 4's ms deltas by
    kind, and the µs within each ms (`sub`, read before the kinds). Each pass
    makes an int per event; in ns the µs are looked up, not multiplied."""
    dms = _by_kind(r.ints(n), kinds, counts)
    per_tick = tick * (_NS_PER_MS if ns else _US_PER_MS)
    ms = accumulate(map(operator.mul, dms, repeat(per_tick)), initial=t0 * (per_tick // tick))
    next(ms)  # the first delta is from t0 itself
    return list(map(operator.add, ms, map(_SUB_NS.__getitem__, sub) if ns else sub))


def parse(data: bytes, *, ns: bool = False) -> Batch:
    """The columns of a batch written by `encode` (version 4) or an older
    store (versions 2 and 3). With `ns`, `us` holds nanoseconds instead:
    for decoding, which gives them, one pass fewer.

    Raises:
        CodecError: unknown version, truncated or inconsistent columns.
    """
    if len(data) < HEAD.size:
        raise CodecError("batch is truncated")
    version, n, t0, tick = HEAD.unpack_from(data)
    if version not in _READABLE:
        raise CodecError(f"unknown batch version {version}")
    if tick == 0:
        raise CodecError("batch has a zero time tick")
    r = Reader(data, HEAD.size)
    sub = _read_sub(r, n) if version >= 4 else []
    kinds = r.take(n)
    counts = _counts(kinds)
    if sum(counts) != n or (version == 2 and any(counts[k] for k in _CONTEXT_KINDS)):
        raise CodecError("batch holds an unknown event kind")
    if version >= 4:
        us = _times_v4(r, n, t0, tick, kinds, counts, sub, ns)
    else:
        us = _times(r, n, t0, tick, 1000 if ns else 1)
    keys = r.ints(counts[KEYS[0]] + counts[KEYS[1]])
    n_ptr = sum(counts[k] for k in POINTER)
    if version < 4:
        x, y = (list(accumulate(r.ints(n_ptr))) for _ in "xy")
    else:
        x0, y0 = r.ints(2) if n_ptr else (0, 0)
        x, y = (list(accumulate(r.ints(max(n_ptr - 1, 0)), initial=v0)) for v0 in (x0, y0))
        if not n_ptr:
            x, y = [], []
    pointer = [x, y, r.ints(n_ptr), r.ints(n_ptr)]
    n_focus, n_layout = counts[FOCUS], counts[LAYOUT]
    texts = r.texts(2 * n_focus + n_layout)
    n_places = sum(counts[k] for k in PLACES)
    if version == 2:
        places = [[0] * n_places for _ in range(4)]
    else:
        places = [r.optional_ints(n_places) for _ in range(4)]
    groups = r.optional_ints(n_layout)
    if r.pos != len(data):
        raise CodecError("batch has trailing bytes")
    return Batch(
        kinds,
        us,
        keys,
        pointer,
        places,
        groups,
        texts[0 : 2 * n_focus : 2],
        texts[1 : 2 * n_focus : 2],
        texts[2 * n_focus :],
    )
