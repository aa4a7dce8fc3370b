"""Sealed chunks: a batch of events, compressed, encrypted, bound to its place.

    chunk = version (1 byte) || nonce (12) || AES-256-GCM(zstd(encode_events(batch)))
    aad   = b"cleartrace-chunk" || version || session id (16 bytes) || index (u32 BE)

The AAD binds a chunk to its session and position: a chunk copied to another
session or swapped with its neighbour no longer opens. See docs/adr/0001.
"""

from __future__ import annotations

import json
import struct
import threading
from collections.abc import Iterable, Sequence

import zstandard
from cryptography.exceptions import InvalidTag

from cleartrace.errors import CodecError, StoreCorrupt
from cleartrace.events import Event, RawEvent
from cleartrace.store.codec import decode_events, decode_raw, encode_events
from cleartrace.store.crypto import _seal_with_nonce, seal, unseal

__all__ = [
    "CHUNK_VERSION",
    "SealedChunk",
    "chunk_aad",
    "open_chunk",
    "open_chunk_raw",
    "open_summary",
    "reseal",
    "seal_chunk",
    "seal_summary",
]

#: (index, number of events, first t_ns, last t_ns, sealed chunk)
SealedChunk = tuple[int, int, int, int, bytes]

CHUNK_VERSION = 1
_VERSION_BYTE = bytes([CHUNK_VERSION])
_AAD_PREFIX = b"cleartrace-chunk"
_INDEX = struct.Struct(">I")
_MAX_PLAINTEXT = 1 << 31
_local = threading.local()
_FIX = "restore the store from a backup or delete the session"


def chunk_aad(session_id: str, index: int) -> bytes:
    """The associated data that binds a chunk to its session and position.

    Raises:
        ValueError: `session_id` is not 32 hex digits or `index` not a u32.
    """
    raw_id = bytes.fromhex(session_id)
    if len(raw_id) != 16:
        raise ValueError("a session id is 32 hex digits")
    if not 0 <= index < 1 << 32:
        raise ValueError("a chunk index is an unsigned 32-bit number")
    return _AAD_PREFIX + _VERSION_BYTE + raw_id + _INDEX.pack(index)


def _compressor(level: int) -> zstandard.ZstdCompressor:
    # Building a compressor allocates its context; the writer thread seals a
    # chunk every 200 ms, so keep one per thread and level.
    cache: dict[int, zstandard.ZstdCompressor] = _local.__dict__.setdefault("c", {})
    if level not in cache:
        cache[level] = zstandard.ZstdCompressor(level=level)
    return cache[level]


def _decompressor() -> zstandard.ZstdDecompressor:
    found: zstandard.ZstdDecompressor | None = getattr(_local, "d", None)
    if found is None:
        found = _local.d = zstandard.ZstdDecompressor()
    return found


def _pack(events: Sequence[RawEvent], level: int) -> bytes:
    return _compressor(level).compress(encode_events(events))


def seal_chunk(
    session_key: bytes,
    session_id: str,
    index: int,
    events: Sequence[RawEvent],
    level: int = 3,
) -> bytes:
    """Encode, compress and seal one batch under a fresh random nonce.

    Raises:
        ValueError: a bad key, session id or index, or a field beyond 64 bits.
    """
    aad = chunk_aad(session_id, index)
    return _VERSION_BYTE + seal(session_key, _pack(events, level), aad)


def _seal_chunk_with_nonce(
    session_key: bytes,
    session_id: str,
    index: int,
    events: Sequence[RawEvent],
    nonce: bytes,
    level: int = 3,
) -> bytes:
    """`seal_chunk` with a fixed nonce: for known-answer vectors only."""
    aad = chunk_aad(session_id, index)
    return _VERSION_BYTE + _seal_with_nonce(session_key, nonce, _pack(events, level), aad)


def _open(session_key: bytes, session_id: str, index: int, blob: bytes) -> tuple[str, bytes]:
    where = f"chunk {index} of session {session_id[:12]}"
    if not blob or blob[0] != CHUNK_VERSION:
        raise StoreCorrupt(f"{where} has an unknown format version; {_FIX}")
    try:
        packed = unseal(session_key, bytes(blob[1:]), chunk_aad(session_id, index))
    except InvalidTag:
        raise StoreCorrupt(f"{where} fails authentication (altered or moved); {_FIX}") from None
    try:
        return where, _decompressor().decompress(packed, max_output_size=_MAX_PLAINTEXT)
    except zstandard.ZstdError as exc:
        raise StoreCorrupt(f"{where} cannot be decompressed ({exc}); {_FIX}") from None


def open_chunk(session_key: bytes, session_id: str, index: int, blob: bytes) -> list[Event]:
    """Open a chunk sealed by `seal_chunk`.

    Raises:
        StoreCorrupt: the chunk was altered, moved, truncated or is of an
            unknown version (the message names the session and the index).
    """
    where, raw = _open(session_key, session_id, index, blob)
    try:
        return decode_events(raw)
    except CodecError as exc:
        raise StoreCorrupt(f"{where} cannot be decoded ({exc}); {_FIX}") from None


def open_chunk_raw(session_key: bytes, session_id: str, index: int, blob: bytes) -> list[RawEvent]:
    """`open_chunk` giving `RawEvent` tuples: for re-sealing, several times faster.

    Raises:
        StoreCorrupt: as `open_chunk`.
    """
    where, raw = _open(session_key, session_id, index, blob)
    try:
        return decode_raw(raw)
    except CodecError as exc:
        raise StoreCorrupt(f"{where} cannot be decoded ({exc}); {_FIX}") from None


def reseal(
    session_key: bytes,
    session_id: str,
    chunks: Iterable[tuple[int, bytes]],
    first_index: int,
    per_chunk: int,
    level: int,
    stride: int = 1,
    into: bytes | None = None,
) -> list[SealedChunk]:
    """Re-seal a session's (index, chunk) pairs as chunks of `per_chunk` events.

    Compaction: many small chunks sealed at flush time become a few large
    ones at a higher zstd level, under fresh nonces and indices
    `first_index`, `first_index + stride`, ... The gaps let a redaction
    replace one chunk by a new one between its neighbours. Only `per_chunk`
    events are held decoded at a time. With `into`, the new chunks are sealed
    under that key instead (a session key's rotation, store/seals.py).

    Raises:
        StoreCorrupt: an input chunk does not open.
    """
    out: list[SealedChunk] = []
    pending: list[RawEvent] = []
    sealing_key = session_key if into is None else into

    def seal_part(part: list[RawEvent]) -> None:
        index = first_index + len(out) * stride
        blob = seal_chunk(sealing_key, session_id, index, part, level)
        out.append((index, len(part), part[0][0], part[-1][0], blob))

    for index, blob in chunks:
        pending += open_chunk_raw(session_key, session_id, index, blob)
        while len(pending) >= per_chunk:
            seal_part(pending[:per_chunk])
            del pending[:per_chunk]
    if pending:
        seal_part(pending)
    return out


def _summary_aad(session_id: str) -> bytes:
    return b"summary" + bytes.fromhex(session_id)


def seal_summary(session_key: bytes, session_id: str, applications: Iterable[str]) -> bytes:
    """Seal a session's summary (the application classes seen) with its key.

    Application classes are content too (they say what someone worked on),
    so the list the review screen shows without decrypting chunks is sealed.
    """
    return seal(session_key, json.dumps(sorted(applications)).encode(), _summary_aad(session_id))


def open_summary(session_key: bytes, session_id: str, blob: bytes) -> list[str]:
    """The application classes sealed by `seal_summary`.

    Raises:
        StoreCorrupt: the summary was altered or belongs to another session.
    """
    try:
        apps: list[str] = json.loads(unseal(session_key, blob, _summary_aad(session_id)))
    except InvalidTag:
        raise StoreCorrupt(f"the summary of session {session_id[:12]} is damaged; {_FIX}") from None
    return apps
