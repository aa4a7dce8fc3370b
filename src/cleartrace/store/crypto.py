"""AES-256-GCM sealing with the guard rails `AESGCM` itself does not have.

`AESGCM` accepts 8-byte nonces and `None` as associated data; here a nonce is
always 12 fresh random bytes and the associated data is always explicit.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["KEY_BYTES", "NONCE_BYTES", "TAG_BYTES", "seal", "unseal", "unwrap_key", "wrap_key"]

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
_WRAP_AAD = b"cleartrace-wrap-v1"


def _check_key(key: bytes) -> None:
    if len(key) != KEY_BYTES:
        raise ValueError("AES-256-GCM needs a 32-byte key")


def seal(key: bytes, plaintext: bytes, aad: bytes, *, _nonce: bytes | None = None) -> bytes:
    """nonce (12 random bytes) || ciphertext || tag. `_nonce` is for test vectors only."""
    _check_key(key)
    nonce = os.urandom(NONCE_BYTES) if _nonce is None else _nonce
    if len(nonce) != NONCE_BYTES:
        raise ValueError("the nonce must be 12 bytes")
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """Inverse of `seal`.

    Raises:
        cryptography.exceptions.InvalidTag: wrong key, wrong aad or altered bytes.
    """
    _check_key(key)
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise InvalidTag
    return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)


def wrap_key(master: bytes, session_id: str, session_key: bytes) -> bytes:
    """Seal a session key under the master key, bound to its session id."""
    return seal(master, session_key, _WRAP_AAD + session_id.encode())


def unwrap_key(master: bytes, session_id: str, wrapped: bytes) -> bytes:
    """Raises InvalidTag when `master` is not the key that wrapped it."""
    return unseal(master, wrapped, _WRAP_AAD + session_id.encode())
