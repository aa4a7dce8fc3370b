"""AES-256-GCM sealing with the guard rails `AESGCM` itself does not have.

`AESGCM` accepts 16- and 24-byte keys, 8-byte nonces and `None` as associated
data; a slip in any of those weakens every chunk silently. Here the key is
always 32 bytes, the nonce always 12 fresh random bytes, and the associated
data always explicit bytes. The public API takes no nonce: a caller cannot
reuse one. Known-answer tests reach a fixed nonce through `_seal_with_nonce`.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "KEY_BYTES",
    "NONCE_BYTES",
    "TAG_BYTES",
    "Aead",
    "seal",
    "unseal",
    "unwrap_key",
    "wrap_aad",
    "wrap_key",
]

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
_WRAP_AAD = b"cleartrace-wrap-v1"


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise ValueError("AES-256-GCM needs a 32-byte key (bytes)")


def _check_aad(aad: bytes) -> None:
    if not isinstance(aad, bytes):
        raise TypeError("the associated data must be given explicitly as bytes")


class Aead:
    """AES-256-GCM under one key, with `seal`'s and `unseal`'s guard rails,
    built once: a writer seals a chunk every 200 ms and compaction opens
    thousands, under the same key. The key stays out of `repr()`."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        """Raises: ValueError: the key is not 32 bytes."""
        _check_key(key)
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "Aead(<key>)"

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        """nonce (12 fresh random bytes) || ciphertext || tag; see `seal`."""
        _check_aad(aad)
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def _seal_with_nonce(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        _check_aad(aad)
        if len(nonce) != NONCE_BYTES:
            raise ValueError("the nonce must be 12 bytes")
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def unseal(self, blob: bytes | memoryview, aad: bytes) -> bytes:
        """Inverse of `seal`; see `unseal`."""
        _check_aad(aad)
        if len(blob) < NONCE_BYTES + TAG_BYTES:
            raise InvalidTag
        view = memoryview(blob)
        return self._aead.decrypt(view[:NONCE_BYTES], view[NONCE_BYTES:], aad)


def _seal_with_nonce(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """`seal` with a caller's nonce: for known-answer vectors only, never for data."""
    return Aead(key)._seal_with_nonce(nonce, plaintext, aad)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt and authenticate: nonce (12 random bytes) || ciphertext || tag.

    A random 96-bit nonce per call is safe for up to 2^32 calls per key
    (NIST SP 800-38D); the store counts a session key's seals and replaces
    the key before that (store/seals.py).

    Raises:
        ValueError: the key is not 32 bytes.
        TypeError: `aad` is not bytes.
    """
    return Aead(key).seal(plaintext, aad)


def unseal(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """Inverse of `seal`; callers translate a failure into their own error.

    Raises:
        cryptography.exceptions.InvalidTag: wrong key, wrong aad, altered or
            truncated bytes.
        ValueError: the key is not 32 bytes.
        TypeError: `aad` is not bytes.
    """
    return Aead(key).unseal(blob, aad)


def wrap_aad(session_id: str) -> bytes:
    """The associated data binding a wrapped session key to its session."""
    return _WRAP_AAD + session_id.encode("ascii")


def wrap_key(master: bytes, session_id: str, session_key: bytes) -> bytes:
    """Seal a session key under the master key, bound to its session id.

    The binding stops a wrapped key being copied onto another session's row.

    Raises:
        ValueError: a key is not 32 bytes.
    """
    if len(session_key) != KEY_BYTES:
        raise ValueError("a session key must be 32 bytes")
    return seal(master, session_key, wrap_aad(session_id))


def unwrap_key(master: bytes, session_id: str, wrapped: bytes) -> bytes:
    """The session key sealed by `wrap_key`.

    Raises:
        cryptography.exceptions.InvalidTag: `master` is not the key that
            wrapped it, or the wrapped key belongs to another session.
    """
    key = unseal(master, wrapped, wrap_aad(session_id))
    if len(key) != KEY_BYTES:
        raise InvalidTag
    return key
