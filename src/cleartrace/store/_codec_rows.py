"""The rows layout (codec version 5): what a flush writes, cheap to write and
for compaction to join.

Layout (little-endian)::

    u8  version (5)      u32 n
    n rows of six i64    t_us, kind, a, b, c, d of each event, in order
    texts                as in version 4: u32 byte length, then per FOCUS:
                         app, title, and after them per LAYOUT: its name

Why a second layout: a recording writes one small chunk every 200 ms, ~20
events, and closing the session joins an 8-hour day of them (144,000) into
a few columnar batches (version 4). Columns cost a Python call per column
to write and to parse, some twenty per batch whatever its size; rows cost a
few C-level passes to write (`array`), and joining them is concatenating
bytes: compaction parses the whole day's rows at once by striding over them.
Rows compress worse (~10 bytes an event instead of ~5, at zstd level 3), but
they live only until the session is closed. Readers give a rows batch back
as its columnar form would be: times to the microsecond, and only the fields
each kind has (the same `assemble`), so both layouts decode alike.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Sequence
from itertools import chain, compress, repeat
from operator import floordiv, mul

from cleartrace.errors import CodecError
from cleartrace.events import Kind, RawEvent
from cleartrace.store._codec_batch import MASKS, Batch, assemble, valid_kinds
from cleartrace.store._codec_columns import Reader, texts_block

__all__ = ["ROWS_VERSION", "Rows", "encode_rows"]

ROWS_VERSION = 5
_HEAD = struct.Struct("<BI")
_FIELDS = 6
_ROW = 8 * _FIELDS
_ROW_STRUCT = struct.Struct("<6q")
_SLICE = 1024  # rows packed in one C-level pass (about 0.3 ms)
_FOCUS = int(Kind.FOCUS)
_LAYOUT = int(Kind.LAYOUT)
_KIND_AT = 8  # byte offset of a row's kind (its low byte: little-endian)
_BIG_ENDIAN = sys.byteorder == "big"
_FOCUS_MASK = bytes(1 if k == _FOCUS else 0 for k in range(256))
_NO_TEXTS = texts_block(())


def encode_rows(events: Sequence[RawEvent]) -> bytes:
    """The version 5 bytes of a batch.

    Raises:
        ValueError: an unknown kind, or a field beyond a signed 64-bit integer.
    """
    if not events:
        return _HEAD.pack(ROWS_VERSION, 0) + _NO_TEXTS
    ts, kind_col, a, b, c, d, pairs = zip(*events, strict=True)
    try:
        kinds = bytes(kind_col)
    except ValueError:
        kinds = b"\x00"
    if not valid_kinds(kinds):
        raise ValueError("an event has an unknown kind")
    pack, parts = _ROW_STRUCT.pack, []
    try:
        # A slice at a time: one C-level pass over a backlog step's 8,192 rows
        # held the interpreter 2.5 ms, and the hooks' callbacks waited for it.
        for i in range(0, len(kinds), _SLICE):
            j = i + _SLICE
            ms = map(floordiv, ts[i:j], repeat(1000))
            parts.append(b"".join(map(pack, ms, kinds[i:j], a[i:j], b[i:j], c[i:j], d[i:j])))
    except struct.error:
        raise ValueError("an event field does not fit in a signed 64-bit integer") from None
    body = b"".join(parts)
    texts = _NO_TEXTS
    if _FOCUS in kinds or _LAYOUT in kinds:
        focus = (p or (None, None) for p in compress(pairs, kinds.translate(_FOCUS_MASK)))
        layouts = ((p or (None,))[0] for p in compress(pairs, kinds.translate(MASKS[3])))
        texts = texts_block(chain(chain.from_iterable(focus), layouts))
    return _HEAD.pack(ROWS_VERSION, len(kinds)) + body + texts


class Rows:
    """Rows batches joined: their rows as one buffer, their texts as one list.

    `add` costs a few slices per batch; `batch` parses everything added at
    once, striding over the buffer, so a day of small batches is parsed in a
    few passes rather than one Python call per column per batch.
    """

    __slots__ = ("body", "count", "focus", "layouts")

    def __init__(self) -> None:
        self.body = bytearray()
        self.focus: list[str | None] = []  # app, title of each FOCUS
        self.layouts: list[str | None] = []  # name of each LAYOUT
        self.count = 0

    def add(self, data: bytes) -> int:
        """Append one version 5 batch; returns its number of events.

        Raises:
            CodecError: truncated, trailing bytes, or texts that do not match.
        """
        if len(data) < _HEAD.size:
            raise CodecError("batch is truncated")
        n: int = _HEAD.unpack_from(data)[1]
        end = _HEAD.size + n * _ROW
        if len(data) == end + 4 and data.endswith(_NO_TEXTS):
            # No texts (most flushes): its kinds are checked against the texts
            # of every batch at once, in `batch`.
            self.body += memoryview(data)[_HEAD.size : end]
            self.count += n
            return n
        if end > len(data):
            raise CodecError("batch is truncated")
        kinds = data[_HEAD.size + _KIND_AT : end : _ROW]
        n_focus, n_layout = kinds.count(_FOCUS), kinds.count(_LAYOUT)
        r = Reader(data, end)
        if n_focus or n_layout:
            texts = r.texts(2 * n_focus + n_layout)
            self.focus += texts[: 2 * n_focus]
            self.layouts += texts[2 * n_focus :]
        elif r.take(4) != _NO_TEXTS:
            raise CodecError("batch has texts but no focus or layout event")
        if r.pos != len(data):
            raise CodecError("batch has trailing bytes")
        self.body += memoryview(data)[_HEAD.size : end]
        self.count += n
        return n

    def take(self, count: int) -> Batch:
        """The first `count` events added, as one columnar batch; the rest stay.

        Raises:
            CodecError: as `batch`.
        """
        cut = count * _ROW
        kinds = self.body[_KIND_AT:cut:_ROW]  # low bytes: `batch` checks the rest
        n_focus, n_layout = 2 * kinds.count(_FOCUS), kinds.count(_LAYOUT)
        head = Rows()
        head.body, self.body = self.body[:cut], self.body[cut:]
        head.focus, self.focus = self.focus[:n_focus], self.focus[n_focus:]
        head.layouts, self.layouts = self.layouts[:n_layout], self.layouts[n_layout:]
        head.count, self.count = count, self.count - count
        return head.batch()

    def batch(self, *, ns: bool = False) -> Batch:
        """Everything added, as one columnar batch (times in ns with `ns`).

        Raises:
            CodecError: an unknown kind, or texts that do not match the kinds.
        """
        body = array("q")
        body.frombytes(self.body)
        if _BIG_ENDIAN:
            body.byteswap()
        try:
            kinds = bytes(body[1::_FIELDS].tolist())
        except ValueError:
            raise CodecError("batch holds an unknown event kind") from None
        if not valid_kinds(kinds):
            raise CodecError("batch holds an unknown event kind")
        focus = self.focus
        if len(focus) != 2 * kinds.count(_FOCUS) or len(self.layouts) != kinds.count(_LAYOUT):
            raise CodecError("batch texts do not match its focus and layout events")
        # As lists: `assemble` selects from each field several times, and an
        # array would make a new int for every element at every pass.
        a, b, c, d = (body[i::_FIELDS].tolist() for i in range(2, _FIELDS))
        return assemble(
            kinds,
            list(map(mul, body[0::_FIELDS], repeat(1000))) if ns else body[0::_FIELDS].tolist(),
            (a, b, c, d),
            focus[0::2],
            focus[1::2],
            self.layouts,
        )
