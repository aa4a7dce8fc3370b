"""A session's events as an Arrow IPC stream: the event part of a bundle body.

Arrow rather than the store's own chunk codec because the reader is the
organisation's pipeline: any Arrow implementation (C++, Rust, Java, Python)
reads it without ClearTrace, and ingest turns it into Parquet without a
per-event step. Times leave the device as wall-clock UTC nanoseconds; the
store's monotonic times are rebased on the session's anchor here.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from operator import itemgetter

import pyarrow as pa
import pyarrow.compute as pc

from cleartrace.errors import BundleInvalid
from cleartrace.events import Event
from cleartrace.upload.arrow_limits import check_stream_size

__all__ = [
    "EVENT_SCHEMA",
    "MAX_EVENT_BYTES",
    "decode_events",
    "encode_events",
    "encode_table",
    "events_table",
]

EVENT_SCHEMA = pa.schema(
    [
        pa.field("t_ns", pa.int64(), nullable=False),
        pa.field("kind", pa.uint8(), nullable=False),
        pa.field("a", pa.int32(), nullable=False),
        pa.field("b", pa.int32(), nullable=False),
        pa.field("c", pa.int32(), nullable=False),
        pa.field("d", pa.int32(), nullable=False),
        pa.field("app", pa.string()),
        pa.field("title", pa.string()),
    ]
)
_OPTIONS = pa.ipc.IpcWriteOptions(compression="zstd")
#: The most a bundle's events may take decoded. A day of input at full detail
#: is some 40 MB; this leaves room for weeks, and bounds what a stream whose
#: compressed buffers claim gigabytes can make a reader allocate.
MAX_EVENT_BYTES = 512 * 2**20


def _fixed(type_: pa.DataType, code: str, events: Sequence[Event], field: int) -> pa.Array:
    # array.array fills in one C loop; pa.array() on Python ints (and IntEnum
    # members), or zip(*events), is several times slower for a day's 1.5 M events.
    buf = pa.py_buffer(array(code, map(itemgetter(field), events)))
    return pa.Array.from_buffers(type_, len(events), [None, buf])


def events_table(events: Sequence[Event], wall_minus_mono_ns: int) -> pa.Table:
    """The events as an `EVENT_SCHEMA` table.

    `wall_minus_mono_ns` is the session's wall-clock anchor minus its
    monotonic anchor, added to every `t_ns`.
    """
    if not events:
        return EVENT_SCHEMA.empty_table()
    n = len(events)
    columns = [
        pc.add(_fixed(pa.int64(), "q", events, 0), pa.scalar(wall_minus_mono_ns, pa.int64())),
        _fixed(pa.uint8(), "B", events, 1),
        *(_fixed(pa.int32(), "i", events, i) for i in (2, 3, 4, 5)),
        pa.array(map(itemgetter(6), events), pa.string(), size=n),
        pa.array(map(itemgetter(7), events), pa.string(), size=n),
    ]
    return pa.Table.from_arrays(columns, schema=EVENT_SCHEMA)


def encode_table(table: pa.Table) -> bytes:
    """An `EVENT_SCHEMA` table as one zstd-compressed Arrow IPC stream."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, EVENT_SCHEMA, options=_OPTIONS) as writer:
        writer.write_table(table, max_chunksize=1 << 20)
    return bytes(sink.getvalue().to_pybytes())


def encode_events(events: Sequence[Event], wall_minus_mono_ns: int) -> bytes:
    """The events as one zstd-compressed Arrow IPC stream (see `events_table`)."""
    return encode_table(events_table(events, wall_minus_mono_ns))


def decode_events(data: bytes | memoryview, max_bytes: int = MAX_EVENT_BYTES) -> pa.Table:
    """The event table of an IPC stream written by `encode_events`.

    The stream's messages and the sizes its buffers declare are checked, and
    its schema, before anything is decompressed.

    Raises:
        BundleInvalid: not an Arrow stream, not of the event schema, or more
            than `max_bytes` decoded.
    """
    check_stream_size(data, max_bytes)
    try:
        reader = pa.ipc.open_stream(pa.py_buffer(data))
        if not reader.schema.equals(EVENT_SCHEMA):
            raise BundleInvalid("the bundle's event part does not have the event schema")
        table = reader.read_all()
        # Signed by an enrolled device is not well formed: the buffers are
        # checked before any compute kernel reads them.
        table.validate(full=True)
    except (pa.ArrowException, OSError):
        raise BundleInvalid("the bundle's event part is not a readable Arrow stream") from None
    return table
