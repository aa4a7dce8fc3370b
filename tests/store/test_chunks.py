"""Sealed chunks: known-answer vector, fresh nonces, and every tampering refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
import zstandard
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cleartrace.errors import StoreCorrupt
from cleartrace.events import Kind, RawEvent
from cleartrace.store.chunks import (
    ChunkCipher,
    _seal_chunk_with_nonce,
    chunk_aad,
    open_chunk,
    open_chunk_raw,
    open_summary,
    reseal,
    seal_chunk,
    seal_summary,
)
from cleartrace.store.codec import encode_events, encode_rows
from cleartrace.store.crypto import unseal
from tests.support import VECTORS


def _vector(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((VECTORS / "chunk" / name).read_text(encoding="utf-8"))
    return loaded


# v3.json holds codec version 4 (by column, as compaction writes), v4.json codec
# version 5 (rows, as a flush writes); v2.json codec version 3 and v1.json
# codec version 2, which stores made before them still hold.
VECTOR = _vector("v3.json")
ROWS = _vector("v4.json")
V3 = _vector("v2.json")
OLD = _vector("v1.json")
CURRENT = pytest.mark.parametrize("vector", [VECTOR, ROWS], ids=["columns", "rows"])
KEY = bytes.fromhex(VECTOR["key"])
SID: str = VECTOR["session_id"]
IDX: int = VECTOR["index"]
NONCE = bytes.fromhex(VECTOR["nonce"])
CHUNK = bytes.fromhex(VECTOR["chunk"])


def vector_events(vector: dict[str, Any]) -> list[RawEvent]:
    return [
        (e[0], e[1], e[2], e[3], e[4], e[5], (e[6][0], e[6][1]) if e[6] else None)
        for e in vector["events"]
    ]


EVENTS = vector_events(VECTOR)


def test_known_answer_codec_bytes() -> None:
    assert encode_events(EVENTS).hex() == VECTOR["encoded"]
    assert encode_rows(EVENTS).hex() == ROWS["encoded"]
    assert vector_events(ROWS) == EVENTS
    assert bytes.fromhex(VECTOR["encoded"])[0] == 4
    assert bytes.fromhex(ROWS["encoded"])[0] == 5


@CURRENT
def test_known_answer_zstd_frame_holds_the_encoded_batch(vector: dict[str, Any]) -> None:
    frame = bytes.fromhex(vector["zstd_frame"])
    assert zstandard.ZstdDecompressor().decompress(frame).hex() == vector["encoded"]


@CURRENT
def test_known_answer_aad_and_aes_gcm_step(vector: dict[str, Any]) -> None:
    # Checked with AESGCM directly, independent of the zstd version that made the frame.
    assert chunk_aad(SID, IDX).hex() == vector["aad"]
    sealed = AESGCM(KEY).encrypt(NONCE, bytes.fromhex(vector["zstd_frame"]), chunk_aad(SID, IDX))
    assert b"\x01" + NONCE + sealed == bytes.fromhex(vector["chunk"])


@CURRENT
def test_known_answer_chunk_opens_to_the_events(vector: dict[str, Any]) -> None:
    events = open_chunk(KEY, SID, IDX, bytes.fromhex(vector["chunk"]))
    got = [(e.t_ns, int(e.kind), e.a, e.b, e.c, e.d, e.app, e.title) for e in events]
    want = [(*ev[:6], *(ev[6] or (None, None))) for ev in EVENTS]
    assert got == want
    assert [e.kind for e in events[:5]] == [
        Kind.SCREEN,
        Kind.MONITOR,
        Kind.MONITOR,
        Kind.LAYOUT,
        Kind.FOCUS,
    ]
    assert (events[3].app, events[7].app, events[7].a) == ("us", "de", 1)
    assert events[4].title == "notes.txt – Gedit"
    assert (events[4].a, events[4].b, events[4].c, events[4].d) == (100, 150, 800, 600)


def test_chunk_of_codec_version_3_still_opens() -> None:
    key, sid, idx = bytes.fromhex(V3["key"]), V3["session_id"], V3["index"]
    chunk = bytes.fromhex(V3["chunk"])
    assert bytes.fromhex(V3["encoded"])[0] == 3
    assert open_chunk_raw(key, sid, idx, chunk) == vector_events(V3)
    events = open_chunk(key, sid, idx, chunk)
    assert (events[4].kind, events[4].title, events[4].c) == (Kind.FOCUS, "notes.txt – Gedit", 800)


def test_chunk_of_codec_version_2_still_opens() -> None:
    key, sid, idx = bytes.fromhex(OLD["key"]), OLD["session_id"], OLD["index"]
    chunk = bytes.fromhex(OLD["chunk"])
    assert bytes.fromhex(OLD["encoded"])[0] == 2
    assert open_chunk_raw(key, sid, idx, chunk) == vector_events(OLD)
    events = open_chunk(key, sid, idx, chunk)
    assert events[0].kind is Kind.FOCUS
    assert (events[0].title, events[0].a, events[0].c) == ("notes.txt – Gedit", 0, 0)


@CURRENT
def test_known_answer_chunk_opens_to_the_raw_tuples(vector: dict[str, Any]) -> None:
    chunk = bytes.fromhex(vector["chunk"])
    assert open_chunk_raw(KEY, SID, IDX, chunk) == EVENTS
    with pytest.raises(StoreCorrupt, match=f"chunk {IDX + 1} of session"):
        open_chunk_raw(KEY, SID, IDX + 1, chunk)


@pytest.mark.parametrize("rows", [(False, False, False), (True, True, True), (True, False, True)])
def test_reseal_merges_chunks_under_new_indices(rows: tuple[bool, bool, bool]) -> None:
    parts = [EVENTS[:5], EVENTS[5:9], EVENTS[9:]]
    small = [
        (i, seal_chunk(KEY, SID, i, part, rows=as_rows))
        for i, (part, as_rows) in enumerate(zip(parts, rows, strict=True))
    ]
    kinds: list[bytes] = []
    big = reseal(KEY, SID, small, first_index=3, per_chunk=11, level=10, kinds=kinds)
    assert [(idx, n, first, last) for idx, n, first, last, _ in big] == [
        (3, 11, EVENTS[0][0], EVENTS[10][0]),
        (4, len(EVENTS) - 11, EVENTS[11][0], EVENTS[-1][0]),
    ]
    assert [ev for idx, *_, blob in big for ev in open_chunk_raw(KEY, SID, idx, blob)] == EVENTS
    assert b"".join(kinds) == bytes(e[1] for e in EVENTS)


def test_reseal_names_a_chunk_that_does_not_decode() -> None:
    # Sealed properly, but holding bytes no codec version reads.
    bad = ChunkCipher(KEY, SID).seal(1, b"\x04\x01", 3)
    small = [(0, seal_chunk(KEY, SID, 0, EVENTS[:3], rows=True)), (1, bad)]
    with pytest.raises(StoreCorrupt, match=f"chunk 1 of session {SID[:12]} cannot be decoded"):
        reseal(KEY, SID, small, first_index=3, per_chunk=100, level=10)


def test_summary_opens_only_for_its_session() -> None:
    blob = seal_summary(KEY, SID, {"Xterm", "Gedit"})
    assert b"Xterm" not in blob
    assert open_summary(KEY, SID, blob) == ["Gedit", "Xterm"]
    with pytest.raises(StoreCorrupt, match="summary of session ffffffffffff"):
        open_summary(KEY, "ff" * 16, blob)


@pytest.mark.parametrize(("vector", "rows"), [(VECTOR, False), (ROWS, True)])
def test_fixed_nonce_helper_seals_the_vector_layout(vector: dict[str, Any], rows: bool) -> None:
    blob = _seal_chunk_with_nonce(KEY, SID, IDX, EVENTS, NONCE, rows=rows)
    assert blob[:13] == b"\x01" + NONCE
    frame = unseal(KEY, blob[1:], chunk_aad(SID, IDX))
    assert zstandard.ZstdDecompressor().decompress(frame).hex() == vector["encoded"]


def test_each_seal_uses_a_fresh_nonce() -> None:
    a, b = seal_chunk(KEY, SID, IDX, EVENTS), seal_chunk(KEY, SID, IDX, EVENTS)
    assert a[1:13] != b[1:13]
    assert open_chunk(KEY, SID, IDX, a) == open_chunk(KEY, SID, IDX, b)


def _flip(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0x01
    return bytes(out)


@pytest.mark.parametrize(
    ("key", "sid", "idx", "blob"),
    [
        pytest.param(KEY, SID, IDX, _flip(CHUNK, 40), id="flipped ciphertext bit"),
        pytest.param(KEY, SID, IDX, _flip(CHUNK, 3), id="flipped nonce bit"),
        pytest.param(KEY, SID, IDX, _flip(CHUNK, len(CHUNK) - 1), id="flipped tag bit"),
        pytest.param(KEY, SID, IDX + 1, CHUNK, id="wrong index"),
        pytest.param(KEY, SID, IDX + (1 << 24), CHUNK, id="index differing in the high byte"),
        pytest.param(KEY, "ff" * 16, IDX, CHUNK, id="wrong session"),
        pytest.param(bytes(32), SID, IDX, CHUNK, id="wrong key"),
        pytest.param(KEY, SID, IDX, CHUNK[:-5], id="truncated"),
        pytest.param(KEY, SID, IDX, CHUNK[:10], id="shorter than nonce and tag"),
        pytest.param(KEY, SID, IDX, CHUNK + b"\x00", id="extended"),
        pytest.param(KEY, SID, IDX, b"\x02" + CHUNK[1:], id="unknown version"),
        pytest.param(KEY, SID, IDX, b"", id="empty"),
    ],
)
def test_tampered_chunks_raise_store_corrupt_naming_session_and_index(
    key: bytes, sid: str, idx: int, blob: bytes
) -> None:
    with pytest.raises(
        StoreCorrupt, match=f"chunk {idx} of session {sid[:12]}.*delete the session"
    ):
        open_chunk(key, sid, idx, blob)


@pytest.mark.parametrize("rows", [False, True])
def test_focus_text_and_keys_are_not_in_the_sealed_bytes(rows: bool) -> None:
    raw: list[RawEvent] = [(0, int(Kind.FOCUS), 0, 0, 0, 0, ("Gedit", "canarytitle" * 4))]
    raw += [(i * 1000, int(Kind.KEY_DOWN), ord(ch), 0, 0, 0, None) for i, ch in enumerate("x" * 64)]
    blob = seal_chunk(KEY, SID, 0, raw, rows=rows)
    assert b"canarytitle" not in blob
    assert b"x" * 8 not in blob


def test_session_id_and_index_are_validated() -> None:
    with pytest.raises(ValueError, match="32 hex"):
        seal_chunk(KEY, "abcd", 0, EVENTS)
    with pytest.raises(ValueError, match="32-bit"):
        seal_chunk(KEY, SID, 1 << 32, EVENTS)
