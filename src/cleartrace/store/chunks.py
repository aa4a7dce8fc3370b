"""Sealed chunks: a batch of events, compressed, encrypted, bound to its place.

    chunk = version (1 byte) || nonce (12) || AES-256-GCM(zstd(batch))
    aad   = b"cleartrace-chunk" || version || session id (16 bytes) || index (u32 BE)

The AAD binds a chunk to its session and position: a chunk copied to another
session or swapped with its neighbour no longer opens. See docs/adr/0001.
`batch` is a flush's events as rows (`codec.encode_rows`) or, once the
session is compacted, by column (`codec.encode_events`); readers take both.
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
from cleartrace.store._codec_columns import gc_paused
from cleartrace.store.codec import Recoder, decode_events, decode_raw, encode_events, encode_rows
from cleartrace.store.crypto import Aead, seal, unseal

__all__ = [
    "CHUNK_VERSION",
    "ChunkCipher",
    "SealedChunk",
    "chunk_aad",
    "open_chunk",
    "open_chunk_raw",
    "open_summary",
    "reseal",
    "seal_chunk",
    "seal_summary",
    "zstd_compressor",
]

#: (index, number of events, first t_ns, last t_ns, sealed chunk)
SealedChunk = tuple[int, int, int, int, bytes]

CHUNK_VERSION = 1
_VERSION_BYTE = bytes([CHUNK_VERSION])
_AAD_PREFIX = b"cleartrace-chunk"
_INDEX = struct.Struct(">I")
_MAX_PLAINTEXT = 1 << 31
#: zstd's shortest match: at 6 rather than its default 3-5 it stops paying
#: for short matches found by chance among noisy low bytes (µs, deltas),
#: which cost more than the literals they replace (~1 % smaller chunks).
_MIN_MATCH = 6
_local = threading.local()
_FIX = "restore the store from a backup or delete the session"


def _session_bytes(session_id: str) -> bytes:
    raw_id = bytes.fromhex(session_id)
    if len(raw_id) != 16:
        raise ValueError("a session id is 32 hex digits")
    return raw_id


def _check_index(index: int) -> None:
    if not 0 <= index < 1 << 32:
        raise ValueError("a chunk index is an unsigned 32-bit number")


def chunk_aad(session_id: str, index: int) -> bytes:
    """The associated data that binds a chunk to its session and position.

    Raises:
        ValueError: `session_id` is not 32 hex digits or `index` not a u32.
    """
    raw_id = _session_bytes(session_id)
    _check_index(index)
    return _AAD_PREFIX + _VERSION_BYTE + raw_id + _INDEX.pack(index)


def zstd_compressor(level: int) -> zstandard.ZstdCompressor:
    """The compressor chunks are sealed with at `level`, one per thread.

    Building one allocates its context; the writer thread seals a chunk every
    200 ms, so it is kept per thread and level.
    """
    cache: dict[int, zstandard.ZstdCompressor] = _local.__dict__.setdefault("c", {})
    if level not in cache:
        params = zstandard.ZstdCompressionParameters.from_level(level, min_match=_MIN_MATCH)
        cache[level] = zstandard.ZstdCompressor(compression_params=params)
    return cache[level]


def _decompressor() -> zstandard.ZstdDecompressor:
    found: zstandard.ZstdDecompressor | None = getattr(_local, "d", None)
    if found is None:
        found = _local.d = zstandard.ZstdDecompressor()
    return found


class ChunkCipher:
    """Sealing and opening the chunks of one session under one key.

    The AES-GCM context and the session's part of the AAD are made once:
    a writer seals a chunk every 200 ms, and compaction opens an 8-hour
    day's 144,000. Every seal still takes a fresh random nonce.

    Raises (from the constructor):
        ValueError: a bad key or session id.
    """

    __slots__ = ("_aead", "_prefix", "session_id")

    def __init__(self, session_key: bytes, session_id: str) -> None:
        self._aead = Aead(session_key)
        self._prefix = _AAD_PREFIX + _VERSION_BYTE + _session_bytes(session_id)
        self.session_id = session_id

    def __repr__(self) -> str:
        return f"ChunkCipher(<key>, {self.session_id[:12]})"

    def _aad(self, index: int) -> bytes:
        _check_index(index)
        return self._prefix + _INDEX.pack(index)

    def seal(self, index: int, encoded: bytes, level: int) -> bytes:
        """Compress and seal an encoded batch as chunk `index`, under a fresh nonce.

        Raises:
            ValueError: `index` is not a u32.
        """
        aad = self._aad(index)
        return _VERSION_BYTE + self._aead.seal(zstd_compressor(level).compress(encoded), aad)

    def _seal_with_nonce(self, index: int, encoded: bytes, level: int, nonce: bytes) -> bytes:
        packed = zstd_compressor(level).compress(encoded)
        return _VERSION_BYTE + self._aead._seal_with_nonce(nonce, packed, self._aad(index))

    def open(self, index: int, blob: bytes) -> bytes:
        """The encoded batch inside chunk `index`.

        Raises:
            StoreCorrupt: the chunk was altered, moved, truncated or is of an
                unknown version (the message names the session and the index).
        """
        if not blob or blob[0] != CHUNK_VERSION:
            raise StoreCorrupt(f"{self.where(index)} has an unknown format version; {_FIX}")
        try:
            packed = self._aead.unseal(memoryview(blob)[1:], self._aad(index))
        except InvalidTag:
            raise StoreCorrupt(
                f"{self.where(index)} fails authentication (altered or moved); {_FIX}"
            ) from None
        try:
            return _decompressor().decompress(packed, max_output_size=_MAX_PLAINTEXT)
        except zstandard.ZstdError as exc:
            raise StoreCorrupt(
                f"{self.where(index)} cannot be decompressed ({exc}); {_FIX}"
            ) from None

    def where(self, index: int) -> str:
        return f"chunk {index} of session {self.session_id[:12]}"


def seal_chunk(
    session_key: bytes,
    session_id: str,
    index: int,
    events: Sequence[RawEvent],
    level: int = 3,
    *,
    rows: bool = False,
) -> bytes:
    """Encode, compress and seal one batch under a fresh random nonce; by
    column, or with `rows` as a flush writes it (store/_codec_rows.py).

    Raises:
        ValueError: a bad key, session id or index, or a field beyond 64 bits.
    """
    encoded = encode_rows(events) if rows else encode_events(events)
    return ChunkCipher(session_key, session_id).seal(index, encoded, level)


def _seal_chunk_with_nonce(
    session_key: bytes,
    session_id: str,
    index: int,
    events: Sequence[RawEvent],
    nonce: bytes,
    level: int = 3,
    *,
    rows: bool = False,
) -> bytes:
    """`seal_chunk` with a fixed nonce: for known-answer vectors only."""
    encoded = encode_rows(events) if rows else encode_events(events)
    return ChunkCipher(session_key, session_id)._seal_with_nonce(index, encoded, level, nonce)


def open_chunk(session_key: bytes, session_id: str, index: int, blob: bytes) -> list[Event]:
    """Open a chunk sealed by `seal_chunk`.

    Raises:
        StoreCorrupt: the chunk was altered, moved, truncated or is of an
            unknown version (the message names the session and the index).
    """
    cipher = ChunkCipher(session_key, session_id)
    raw = cipher.open(index, blob)
    try:
        return decode_events(raw)
    except CodecError as exc:
        raise StoreCorrupt(f"{cipher.where(index)} cannot be decoded ({exc}); {_FIX}") from None


def open_chunk_raw(session_key: bytes, session_id: str, index: int, blob: bytes) -> list[RawEvent]:
    """`open_chunk` giving `RawEvent` tuples: several times faster.

    Raises:
        StoreCorrupt: as `open_chunk`.
    """
    cipher = ChunkCipher(session_key, session_id)
    raw = cipher.open(index, blob)
    try:
        return decode_raw(raw)
    except CodecError as exc:
        raise StoreCorrupt(f"{cipher.where(index)} cannot be decoded ({exc}); {_FIX}") from None


def reseal(
    session_key: bytes,
    session_id: str,
    chunks: Iterable[tuple[int, bytes]],
    first_index: int,
    per_chunk: int,
    level: int,
    stride: int = 1,
    into: bytes | None = None,
    kinds: list[bytes] | None = None,
) -> list[SealedChunk]:
    """Re-seal a session's (index, chunk) pairs as chunks of `per_chunk` events.

    Compaction: many small chunks sealed at flush time become a few large
    ones at a higher zstd level, under fresh nonces and indices
    `first_index`, `first_index + stride`, ... The gaps let a redaction
    replace one chunk by a new one between its neighbours. The batches are
    joined by column (`codec.Recoder`), about `per_chunk` events held at a
    time, with the cyclic garbage collector paused (it would scan the
    columns' lists over and over, finding nothing). With `into`, the new
    chunks are sealed under that key instead (a session key's rotation,
    store/seals.py). With `kinds`, the kinds of every event re-sealed are
    appended to it, in order (the session's counts, store/compaction.py).

    Raises:
        StoreCorrupt: an input chunk does not open.
    """
    opener = ChunkCipher(session_key, session_id)
    sealer = opener if into is None else ChunkCipher(into, session_id)
    recoder = Recoder(per_chunk)
    out: list[SealedChunk] = []

    def seal_parts(parts: list[tuple[int, int, int, bytes]]) -> None:
        for n, first, last, encoded in parts:
            index = first_index + len(out) * stride
            out.append((index, n, first, last, sealer.seal(index, encoded, level)))

    with gc_paused():
        index = -1
        try:
            for index, blob in chunks:
                seal_parts(recoder.add(opener.open(index, blob)))
            seal_parts(recoder.finish())
        except CodecError as exc:
            where = opener.where(index) if index >= 0 else f"session {session_id[:12]}"
            raise StoreCorrupt(f"{where} cannot be decoded ({exc}); {_FIX}") from None
    if kinds is not None:
        kinds += recoder.kinds
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
