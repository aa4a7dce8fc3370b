"""Sealed chunks: a batch of events, compressed, encrypted, bound to its place.

    chunk = version (1 byte) || nonce (12) || AES-256-GCM(zstd(encode_events(batch)))
    aad   = b"cleartrace-chunk" || version || session id (16 bytes) || index (u32 BE)

The AAD binds a chunk to its session and position: a chunk copied to another
session or swapped with its neighbour no longer opens. See docs/adr/0001.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Sequence

import zstandard
from cryptography.exceptions import InvalidTag

from cleartrace.errors import StoreCorrupt
from cleartrace.events import Event, RawEvent
from cleartrace.store.codec import CodecError, decode_events, encode_events
from cleartrace.store.crypto import seal, unseal

__all__ = ["CHUNK_VERSION", "chunk_aad", "open_chunk", "seal_chunk"]

CHUNK_VERSION = 1
_VERSION_BYTE = bytes([CHUNK_VERSION])
_AAD_PREFIX = b"cleartrace-chunk"
_INDEX = struct.Struct(">I")
_MAX_PLAINTEXT = 1 << 31
_local = threading.local()


def chunk_aad(session_id: str, index: int) -> bytes:
    return _AAD_PREFIX + _VERSION_BYTE + bytes.fromhex(session_id) + _INDEX.pack(index)


def _compressor(level: int) -> zstandard.ZstdCompressor:
    cache: dict[int, zstandard.ZstdCompressor] = _local.__dict__.setdefault("c", {})
    if level not in cache:
        cache[level] = zstandard.ZstdCompressor(level=level)
    return cache[level]


def seal_chunk(
    session_key: bytes,
    session_id: str,
    index: int,
    events: Sequence[RawEvent],
    level: int = 3,
    *,
    _nonce: bytes | None = None,
) -> bytes:
    """Encode, compress and seal one batch. `_nonce` is for test vectors only."""
    packed = _compressor(level).compress(encode_events(events))
    return _VERSION_BYTE + seal(session_key, packed, chunk_aad(session_id, index), _nonce=_nonce)


def open_chunk(session_key: bytes, session_id: str, index: int, blob: bytes) -> list[Event]:
    """Open a chunk sealed by `seal_chunk`.

    Raises:
        StoreCorrupt: the chunk was altered, moved, truncated or is of an
            unknown version (the message names the session and the index).
    """
    where = f"chunk {index} of session {session_id[:12]}"
    fix = "restore the store from a backup or delete the session"
    if not blob or blob[0] != CHUNK_VERSION:
        raise StoreCorrupt(f"{where} has an unknown format version; {fix}")
    try:
        packed = unseal(session_key, blob[1:], chunk_aad(session_id, index))
    except InvalidTag:
        raise StoreCorrupt(f"{where} fails authentication (altered or moved); {fix}") from None
    try:
        raw = zstandard.ZstdDecompressor().decompress(packed, max_output_size=_MAX_PLAINTEXT)
        return decode_events(raw)
    except (zstandard.ZstdError, CodecError) as exc:
        raise StoreCorrupt(f"{where} cannot be decoded ({exc}); {fix}") from None
