"""The codec's building blocks: integer columns as byte planes, length-prefixed
texts, and a bounds-checked reader; kept apart from the batch layout
(`store/codec.py`) so each stays small enough to read whole."""

from __future__ import annotations

import contextlib
import gc
import struct
import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence

from cleartrace.errors import CodecError

__all__ = ["U32", "Reader", "gc_paused", "int_col", "read_texts", "texts_block"]

U32 = struct.Struct("<I")
_WIDTH_CODE = {1: "b", 2: "h", 4: "i", 8: "q"}
_BIG_ENDIAN = sys.byteorder == "big"


def int_col(values: Sequence[int]) -> bytes:
    """Width byte + byte planes of the narrowest signed type holding `values`.

    The narrowest width that `array` accepts: one C-level pass when the
    first fits (most columns), never a Python step per value.
    """
    for width, code in _WIDTH_CODE.items():
        try:
            packed = array(code, values)
        except OverflowError:
            continue
        if width == 1:
            return b"\x01" + packed.tobytes()
        if _BIG_ENDIAN:
            packed.byteswap()
        raw = packed.tobytes()
        return bytes([width]) + b"".join(raw[i::width] for i in range(width))
    raise ValueError("an event field does not fit in a signed 64-bit integer")


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
        values = array(code, buf)
        if _BIG_ENDIAN:
            values.byteswap()
        return values.tolist()

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
