"""Columnar encoding of an event batch, shaped for zstd.

Layout (little-endian), version 1::

    u8  version            u32 n               i64 t0_us
    col kinds              n bytes, one Kind per event, in order
    col dt_us              i64 x (n-1), time deltas in microseconds
    col keysyms            u32 x keys, for KEY_DOWN/KEY_UP in order
    col dx, dy             i32 x pointer, position deltas of MOVE/BUTTON/SCROLL
    col c, d               i32 x pointer, button / scroll steps (0 for moves)
    col texts              per FOCUS: app, title as u32 (len+1, 0 = None) + UTF-8

Each `col` is a u32 byte length followed by the bytes. Splitting by column
puts like next to like (small pointer deltas, repeated keysyms, near-constant
time gaps), which zstd then squeezes to a few bytes per event; the split costs
a handful of list comprehensions, not per-event Python code.

Times are kept in microseconds: X servers stamp input in milliseconds, so
nanoseconds would store only jitter, and jitter does not compress.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Sequence
from itertools import accumulate, pairwise

from cleartrace.events import Event, FocusText, Kind, RawEvent

__all__ = ["CODEC_VERSION", "CodecError", "decode_events", "encode_events"]

CODEC_VERSION = 1
_HEAD = struct.Struct("<BIq")
_U32 = struct.Struct("<I")
_KEY_MAX = int(Kind.KEY_UP)
_PTR_MIN, _PTR_MAX = int(Kind.MOVE), int(Kind.SCROLL)
_FOCUS = int(Kind.FOCUS)
_KINDS = {int(k): k for k in Kind}


class CodecError(ValueError):
    """The bytes are not a batch this codec wrote."""


def _deltas(values: Sequence[int]) -> list[int]:
    if not values:
        return []
    return [values[0], *(y - x for x, y in pairwise(values))]


def _col(data: bytes) -> bytes:
    return _U32.pack(len(data)) + data


def _texts(texts: Sequence[FocusText]) -> bytes:
    out = bytearray()
    for pair in texts:
        for s in pair:
            if s is None:
                out += _U32.pack(0)
            else:
                raw = s.encode("utf-8", "surrogatepass")
                out += _U32.pack(len(raw) + 1)
                out += raw
    return bytes(out)


def encode_events(events: Sequence[RawEvent]) -> bytes:
    """Encode a batch; events must be in time order (they are, from one queue)."""
    n = len(events)
    if n == 0:
        return _HEAD.pack(CODEC_VERSION, 0, 0)
    ts, kinds, a, b, c, d, texts = zip(*events, strict=True)
    us = [t // 1000 for t in ts]
    dts = [y - x for x, y in pairwise(us)]
    keys = [x for k, x in zip(kinds, a, strict=True) if k <= _KEY_MAX]
    is_ptr = [_PTR_MIN <= k <= _PTR_MAX for k in kinds]
    px = [x for p, x in zip(is_ptr, a, strict=True) if p]
    py = [y for p, y in zip(is_ptr, b, strict=True) if p]
    pc = [x for p, x in zip(is_ptr, c, strict=True) if p]
    pd = [x for p, x in zip(is_ptr, d, strict=True) if p]
    focus = [t for k, t in zip(kinds, texts, strict=True) if k == _FOCUS]
    parts = [
        _HEAD.pack(CODEC_VERSION, n, us[0]),
        _col(bytes(kinds)),
        _col(array("q", dts).tobytes()),
        _col(array("I", keys).tobytes()),
        _col(array("i", _deltas(px)).tobytes()),
        _col(array("i", _deltas(py)).tobytes()),
        _col(array("i", pc).tobytes()),
        _col(array("i", pd).tobytes()),
        _col(_texts([t if t is not None else (None, None) for t in focus])),
    ]
    return b"".join(parts)


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

    def col(self) -> bytes:
        (size,) = _U32.unpack(self.take(4))
        return self.take(size)

    def ints(self, code: str) -> list[int]:
        arr = array(code)
        raw = self.col()
        if len(raw) % arr.itemsize:
            raise CodecError("column length is not a multiple of its item size")
        arr.frombytes(raw)
        return arr.tolist()


def _read_texts(raw: bytes, count: int) -> list[FocusText]:
    r = _Reader(raw, 0)
    out: list[FocusText] = []
    for _ in range(count):
        pair: list[str | None] = []
        for _ in range(2):
            (size,) = _U32.unpack(r.take(4))
            pair.append(None if size == 0 else r.take(size - 1).decode("utf-8", "surrogatepass"))
        out.append((pair[0], pair[1]))
    return out


def decode_events(data: bytes) -> list[Event]:
    """Decode a batch written by `encode_events`.

    Raises:
        CodecError: unknown version, truncated or inconsistent columns.
    """
    if len(data) < _HEAD.size:
        raise CodecError("batch is truncated")
    version, n, t0 = _HEAD.unpack_from(data)
    if version != CODEC_VERSION:
        raise CodecError(f"unknown batch version {version}")
    if n == 0:
        return []
    r = _Reader(data, _HEAD.size)
    kinds = r.col()
    dts, keys = r.ints("q"), r.ints("I")
    px, py = list(accumulate(r.ints("i"))), list(accumulate(r.ints("i")))
    pc, pd = r.ints("i"), r.ints("i")
    n_focus = kinds.count(_FOCUS)
    texts = _read_texts(r.col(), n_focus)
    n_ptr = sum(kinds.count(k) for k in range(_PTR_MIN, _PTR_MAX + 1))
    n_keys = kinds.count(int(Kind.KEY_DOWN)) + kinds.count(int(Kind.KEY_UP))
    if (len(kinds), len(dts), len(keys)) != (n, n - 1, n_keys) or not (
        len(px) == len(py) == len(pc) == len(pd) == n_ptr
    ):
        raise CodecError("batch columns do not agree")
    times = accumulate(dts, initial=t0)
    ik, ip, it = iter(keys), iter(zip(px, py, pc, pd, strict=True)), iter(texts)
    out: list[Event] = []
    append = out.append
    try:
        for k, t_us in zip(kinds, times, strict=True):
            kind = _KINDS[k]
            t = t_us * 1000
            if k <= _KEY_MAX:
                append(Event(t, kind, next(ik)))
            elif k <= _PTR_MAX:
                x, y, cc, dd = next(ip)
                append(Event(t, kind, x, y, cc, dd))
            elif k == _FOCUS:
                app, title = next(it)
                append(Event(t, kind, app=app, title=title))
            else:
                append(Event(t, kind))
    except KeyError as exc:
        raise CodecError("unknown event kind") from exc
    return out
