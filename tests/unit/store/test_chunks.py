from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cleartrace.errors import StoreCorrupt
from cleartrace.events import Kind, RawEvent
from cleartrace.store.chunks import chunk_aad, open_chunk, seal_chunk
from cleartrace.store.codec import encode_events

VECTOR: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "vectors" / "chunk" / "v1.json").read_text()
)
KEY = bytes.fromhex(VECTOR["key"])
SID = VECTOR["session_id"]
IDX = VECTOR["index"]
CHUNK = bytes.fromhex(VECTOR["chunk"])
EVENTS: list[RawEvent] = [
    (*e[:6], tuple(e[6]) if e[6] else None)
    for e in VECTOR["events"]  # type: ignore[misc]
]


def test_known_answer_codec_bytes() -> None:
    assert encode_events(EVENTS).hex() == VECTOR["encoded"]


def test_known_answer_aad_and_sealing() -> None:
    assert chunk_aad(SID, IDX).hex() == VECTOR["aad"]
    nonce = bytes.fromhex(VECTOR["nonce"])
    sealed = AESGCM(KEY).encrypt(nonce, bytes.fromhex(VECTOR["zstd_frame"]), chunk_aad(SID, IDX))
    assert b"\x01" + nonce + sealed == CHUNK


def test_known_answer_chunk_opens_to_the_events() -> None:
    events = open_chunk(KEY, SID, IDX, CHUNK)
    assert [(e.t_ns, int(e.kind), e.a, e.b, e.c, e.d) for e in events] == [ev[:6] for ev in EVENTS]
    assert (events[0].app, events[0].title) == ("Gedit", "notes.txt – Gedit")


def test_each_seal_uses_a_fresh_nonce() -> None:
    a, b = seal_chunk(KEY, SID, IDX, EVENTS), seal_chunk(KEY, SID, IDX, EVENTS)
    assert a[1:13] != b[1:13]
    assert a != b


def _flip(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0x01
    return bytes(out)


@pytest.mark.parametrize(
    ("label", "key", "sid", "idx", "blob"),
    [
        ("flipped ciphertext bit", KEY, SID, IDX, _flip(CHUNK, 20)),
        ("flipped nonce bit", KEY, SID, IDX, _flip(CHUNK, 3)),
        ("flipped tag bit", KEY, SID, IDX, _flip(CHUNK, len(CHUNK) - 1)),
        ("wrong index", KEY, SID, IDX + 1, CHUNK),
        ("wrong session", KEY, "ff" * 16, IDX, CHUNK),
        ("wrong key", bytes(32), SID, IDX, CHUNK),
        ("truncated", KEY, SID, IDX, CHUNK[:-5]),
        ("too short", KEY, SID, IDX, CHUNK[:10]),
        ("unknown version", KEY, SID, IDX, b"\x02" + CHUNK[1:]),
        ("empty", KEY, SID, IDX, b""),
    ],
)
def test_tampered_chunks_do_not_open(
    label: str, key: bytes, sid: str, idx: int, blob: bytes
) -> None:
    with pytest.raises(StoreCorrupt, match=f"chunk {idx} of session {sid[:12]}"):
        open_chunk(key, sid, idx, blob)


def test_focus_text_is_not_in_the_sealed_bytes() -> None:
    raw = [(0, int(Kind.FOCUS), 0, 0, 0, 0, ("Gedit", "canarytitle"))]
    assert b"canarytitle" not in seal_chunk(KEY, SID, 0, raw)
