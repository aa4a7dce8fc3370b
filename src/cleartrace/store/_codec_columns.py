"""The codec's building blocks: integer columns as byte planes, length-prefixed
texts, and a bounds-checked reader; kept apart from the batch layout
(`store/codec.py`) so each stays small enough to read whole."""

from __future__ import annotations

import contextlib
import gc
import struct
from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import pairwise

from cleartrace.errors import CodecError

__all__ = ["U32", "Reader", "deltas", "gc_paused", "int_col", "read_texts", "texts_block"]

U32 = struct.Struct("<I")
_WIDTH_CODE = {1: "b", 2: "h", 4: "i", 8: "q"}


def deltas(values: Sequence[int]) -> list[int]:
    """The first value, then each value's difference from the one before."""
    if not values:
        return []
    return [values[0], *(y - x for x, y in pairwise(values))]


def int_col(values: Sequence[int]) -> bytes:
    """Width byte + byte planes of the narrowest signed type holding `values`.

    Written for small batches as much as large ones (a flush is ~20 events):
    the common widths are tested in line, without a generator.
    """
    if not values:
        return b"\x01"
    lo, hi = min(values), max(values)
    if lo >= -0x80 and hi < 0x80:
        return b"\x01" + array("b", values).tobytes()
    if lo >= -0x8000 and hi < 0x8000:
        raw = array("h", values).tobytes()
        return b"\x02" + raw[0::2] + raw[1::2]
    width = 4 if lo >= -(1 << 31) and hi < 1 << 31 else 8
    if width == 8 and not (lo >= -(1 << 63) and hi < 1 << 63):
        raise ValueError("an event field does not fit in a signed 64-bit integer")
    raw = array(_WIDTH_CODE[width], values).tobytes()
    return bytes([width]) + b"".join(raw[i::width] for i in range(width))


def texts_block(texts: Iterable[str | None]) -> bytes:
    """u32 byte length, then each text as u32 (UTF-8 length + 1, 0 = None) and its UTF-8."""
    out = bytearray()
    for s in texts:
        if s is None:
            out += U32.pack(0)
        else:
            raw = s.encode("utf-8", "surrogatepass")
            out += U32.pack(len(raw) + 1)
            out += raw
    return U32.pack(len(out)) + out


class Reader:
    """A cursor over a batch that refuses to read past its end."""

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
        data, pos = self.data, self.pos
        if pos >= len(data):
            raise CodecError("batch is truncated")
        width = data[pos]
        code = _WIDTH_CODE.get(width)
        if code is None:
            raise CodecError(f"unknown integer width {width}")
        end = pos + 1 + count * width
        if end > len(data):
            raise CodecError("batch is truncated")
        self.pos = end
        planes = data[pos + 1 : end]
        if width == 1:
            return array(code, planes).tolist()
        buf = bytearray(count * width)
        for i in range(width):
            buf[i::width] = planes[i * count : (i + 1) * count]
        return array(code, buf).tolist()

    def optional_ints(self, count: int) -> list[int]:
        """A column that is left out whole when it has no entries."""
        return self.ints(count) if count else []

    def texts(self, count: int) -> list[str | None]:
        """A `texts_block` of exactly `count` texts."""
        (size,) = U32.unpack(self.take(4))
        return read_texts(self.take(size), count)


def read_texts(raw: bytes, count: int) -> list[str | None]:
    r = Reader(raw, 0)
    out: list[str | None] = []
    try:
        for _ in range(count):
            (size,) = U32.unpack(r.take(4))
            out.append(None if size == 0 else r.take(size - 1).decode("utf-8", "surrogatepass"))
    except UnicodeDecodeError as exc:
        raise CodecError("a focus or layout text is not valid UTF-8") from exc
    if r.pos != len(raw):
        raise CodecError("the focus texts have trailing bytes")
    return out


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
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
