"""The AES-GCM wrapper insists on 32-byte keys and explicit associated data."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag

from cleartrace.store.crypto import seal, unseal, unwrap_key, wrap_key

KEY = bytes(range(32))
SID = "00112233445566778899aabbccddeeff"


def test_seal_round_trips_with_a_random_nonce_each_time() -> None:
    a, b = seal(KEY, b"payload", b"aad"), seal(KEY, b"payload", b"aad")
    assert a[:12] != b[:12]
    assert len(a) == 12 + len(b"payload") + 16
    assert unseal(KEY, a, b"aad") == unseal(KEY, b, b"aad") == b"payload"


@pytest.mark.parametrize(
    ("key", "aad", "mangle"),
    [
        pytest.param(bytes(32), b"aad", lambda x: x, id="wrong key"),
        pytest.param(KEY, b"other", lambda x: x, id="wrong aad"),
        pytest.param(KEY, b"aad", lambda x: x[:-1], id="truncated"),
        pytest.param(KEY, b"aad", lambda x: x[:20], id="shorter than nonce and tag"),
        pytest.param(KEY, b"aad", lambda x: bytes([x[0] ^ 1]) + x[1:], id="altered nonce"),
    ],
)
def test_unseal_raises_invalid_tag(key: bytes, aad: bytes, mangle: object) -> None:
    blob = seal(KEY, b"payload", b"aad")
    with pytest.raises(InvalidTag):
        unseal(key, mangle(blob), aad)  # type: ignore[operator]


@pytest.mark.parametrize("size", [0, 16, 24, 31, 33])
def test_keys_other_than_32_bytes_are_refused(size: int) -> None:
    with pytest.raises(ValueError, match="32-byte key"):
        seal(bytes(size), b"x", b"aad")
    with pytest.raises(ValueError, match="32-byte key"):
        unseal(bytes(size), bytes(40), b"aad")


def test_missing_associated_data_is_refused() -> None:
    with pytest.raises(TypeError, match="associated data"):
        seal(KEY, b"x", None)  # type: ignore[arg-type]


def test_wrapped_key_opens_only_for_its_session_and_master() -> None:
    session_key = bytes(range(100, 132))
    wrapped = wrap_key(KEY, SID, session_key)
    assert session_key not in wrapped
    assert unwrap_key(KEY, SID, wrapped) == session_key
    with pytest.raises(InvalidTag):
        unwrap_key(KEY, "ff" * 16, wrapped)
    with pytest.raises(InvalidTag):
        unwrap_key(bytes(32), SID, wrapped)
