"""What decoding an Arrow IPC stream would allocate, known before anything is decoded.

A compressed Arrow buffer starts with its uncompressed length, and Arrow
allocates that much before it decompresses: a few kilobytes of zstd can
claim gigabytes (a decompression bomb). pyarrow has no option that bounds
this, so the record batches' buffer tables are read first, from each
message's metadata (a FlatBuffers `Message` whose header is a `RecordBatch`,
format/Message.fbs in the Arrow repository), and their declared sizes are
added up. pyarrow still does the framing (`MessageReader`) and all decoding.

Only what the encoder writes is let through, because Arrow has more than one
way to say "compressed": besides a record batch's `compression` field, it
decompresses a V4 message whose custom metadata names
`ARROW:experimental_compression`. So every message must be of metadata
version V5 without custom metadata, and every record batch must carry the
`compression` field (the encoder compresses all of them with zstd). And the
number of messages is capped: a batch of no rows declares nothing to
decompress, yet each costs memory and time to decode.
"""

from __future__ import annotations

import struct

import pyarrow as pa

from cleartrace.errors import BundleInvalid

__all__ = ["MAX_STREAM_MESSAGES", "check_stream_size"]

#: The most messages (the schema and record batches) an event stream may have. The
#: encoder writes batches of 2**20 rows, and 512 MiB decoded holds fewer than 64 of
#: them (a row takes at least its 8-byte time): 1024 leaves room for any event count.
MAX_STREAM_MESSAGES = 1024

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")
_PAIR = struct.Struct("<qq")  # FieldNode and Buffer structs: two int64 each
#: Field slots (format/Message.fbs): Message.header is slot 2 (slot 1 is its union
#: type), Message.custom_metadata slot 4; RecordBatch.buffers is slot 2,
#: RecordBatch.compression slot 3.
_MESSAGE_HEADER = 2
_MESSAGE_CUSTOM_METADATA = 4
_BATCH_BUFFERS = 2
_BATCH_COMPRESSION = 3
#: The only messages an event stream has (no dictionaries, tensors).
_ALLOWED = frozenset({"schema", "record batch"})


class _Malformed(Exception):
    pass


def _read(fmt: struct.Struct, buf: bytes, at: int) -> int:
    if at < 0 or at + fmt.size > len(buf):
        raise _Malformed
    value: int = fmt.unpack_from(buf, at)[0]
    return value


class _Table:
    """A FlatBuffers table: a position and its vtable of field offsets."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf = buf
        self.pos = pos
        self.vtable = pos - _read(_I32, buf, pos)
        self.vtable_size = _read(_U16, buf, self.vtable)

    def has(self, slot: int) -> bool:
        return self._field(slot) is not None

    def _field(self, slot: int) -> int | None:
        entry = 4 + 2 * slot
        if entry + 2 > self.vtable_size:
            return None
        offset = _read(_U16, self.buf, self.vtable + entry)
        return None if offset == 0 else self.pos + offset

    def _target(self, slot: int) -> int | None:
        at = self._field(slot)
        return None if at is None else at + _read(_U32, self.buf, at)

    def table(self, slot: int) -> _Table | None:
        at = self._target(slot)
        return None if at is None else _Table(self.buf, at)

    def pairs(self, slot: int) -> list[tuple[int, int]]:
        at = self._target(slot)
        if at is None:
            return []
        count = _read(_U32, self.buf, at)
        if at + 4 + count * _PAIR.size > len(self.buf):
            raise _Malformed
        return [_PAIR.unpack_from(self.buf, at + 4 + i * _PAIR.size) for i in range(count)]


def _message(metadata: bytes) -> _Table:
    """The message's table, refused if it carries custom metadata (any compression
    Arrow would apply that its `compression` field does not declare)."""
    message = _Table(metadata, _read(_U32, metadata, 0))
    if message.has(_MESSAGE_CUSTOM_METADATA):
        raise BundleInvalid("the bundle's event part has Arrow messages with custom metadata")
    return message


def _batch_size(message: _Table, body: memoryview) -> int:
    """Bytes the record batch's buffers take once decompressed."""
    batch = message.table(_MESSAGE_HEADER)
    if batch is None:
        raise _Malformed
    if not batch.has(_BATCH_COMPRESSION):
        raise BundleInvalid("the bundle's event part has a record batch not compressed")
    total = 0
    for offset, length in batch.pairs(_BATCH_BUFFERS):
        if offset < 0 or length < 0 or offset + length > len(body):
            raise _Malformed
        if length == 0:
            continue
        declared = _read(_I64, bytes(body[offset : offset + 8]), 0)
        if declared < -1:
            raise _Malformed
        # -1: this buffer was left uncompressed (it follows the length).
        total += length - 8 if declared == -1 else declared
    return total


def check_stream_size(data: bytes | memoryview, max_bytes: int) -> None:
    """Refuse a stream whose record batches would take more than `max_bytes` decoded.

    Raises:
        BundleInvalid: the stream would decode to more than `max_bytes`, has more
            than `MAX_STREAM_MESSAGES` messages, holds messages an event stream
            does not (other kinds, other than V5, custom metadata, uncompressed
            batches), or its metadata is malformed.
    """
    total = 0
    try:
        for count, message in enumerate(pa.ipc.MessageReader.open_stream(pa.py_buffer(data))):
            if count >= MAX_STREAM_MESSAGES:
                raise BundleInvalid(
                    f"the bundle's event part has more than {MAX_STREAM_MESSAGES} Arrow messages",
                    "too-large",
                )
            if message.type not in _ALLOWED:
                raise BundleInvalid("the bundle's event part holds other than record batches")
            if message.metadata_version != pa.ipc.MetadataVersion.V5:
                raise BundleInvalid("the bundle's event part is not Arrow IPC metadata version V5")
            parsed = _message(message.metadata.to_pybytes())
            if message.type != "record batch":
                continue
            body = memoryview(message.body) if message.body is not None else memoryview(b"")
            total += _batch_size(parsed, body)
            if total > max_bytes:
                raise BundleInvalid(
                    f"the bundle's events would take more than {max_bytes} bytes decoded",
                    "too-large",
                )
    except (pa.ArrowException, OSError, _Malformed):
        raise BundleInvalid("the bundle's event part is not a readable Arrow stream") from None
