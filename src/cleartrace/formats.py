"""The encodings every ClearTrace format shares, defined once.

Ledger records, bundle headers, head files, enrolment requests, signed
policies and upload signatures all spell bytes, times, JSON and key names the
same way; a second copy of any of these would one day spell them differently
and break a signature or a hash. So they live here, below every package, and
depend on nothing of ClearTrace but `errors`:

- `b64url` / `unb64url`: unpadded base64url, strict on decoding;
- `canonical`: RFC 8785 canonical JSON (docs/adr/0001-canonical-json.md);
- `rfc3339`: one UTC spelling per instant;
- `key_fingerprint`: how an Ed25519 public key is named;
- `sign_canonical` / `verify_ed25519`: Ed25519 over canonical JSON or raw
  bytes, with the one translation of `cryptography`'s verification errors.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "b64url",
    "canonical",
    "key_fingerprint",
    "rfc3339",
    "sign_canonical",
    "unb64url",
    "verify_ed25519",
]


def b64url(raw: bytes) -> str:
    """Base64url without padding, as JOSE writes signatures and keys."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    """Decode strict base64url without padding.

    Strict means one spelling per byte string: characters outside the alphabet,
    padding or non-zero trailing bits are refused, so a signature cannot be
    re-spelled into a different record hash that still verifies.

    Raises:
        ValueError: `text` is not canonical unpadded base64url.
    """
    if not isinstance(text, str):
        raise ValueError("not base64url text")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc
    if b64url(raw) != text:
        raise ValueError("not canonical base64url")
    return raw


def rfc3339(when: datetime, *, timespec: str = "milliseconds") -> str:
    """UTC with 'Z': one spelling for every instant, so times sort as text.

    Ledger records use milliseconds (the default); `timespec` is "seconds" or
    "microseconds" where a format needs another precision.

    Raises:
        ValueError: `when` is naive (its zone would silently be the local one).
    """
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("ledger times need a timezone-aware datetime")
    return when.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


#: RFC 8785 refuses integers a double cannot carry exactly.
_SAFE_INT = 2**53 - 1
#: Sorted compact JSON from the C encoder: RFC 8785's bytes for the values `_plain` allows.
_compact = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), check_circular=False
).encode


def _plain(obj: object) -> bool:
    """Whether `obj` holds only what sorted compact JSON writes exactly as RFC 8785 does:
    dicts with ASCII keys (code-point order is then UTF-16 order), lists and tuples,
    str, bool, None, and int within ±(2**53 - 1) — exact types, no subclasses, no floats
    (whose RFC 8785 form differs from Python's repr)."""
    kind = type(obj)
    if kind is str or kind is bool or obj is None:
        return True
    if kind is int:
        return -_SAFE_INT <= obj <= _SAFE_INT  # type: ignore[operator]
    if kind is dict:
        for key, value in obj.items():  # type: ignore[attr-defined]
            if type(key) is not str or not key.isascii() or not _plain(value):
                return False
        return True
    if kind is list or kind is tuple:
        return all(_plain(value) for value in obj)  # type: ignore[attr-defined]
    return False


def canonical(obj: Mapping[str, Any]) -> bytes:
    """RFC 8785 canonical JSON bytes of `obj` (keys sorted, no whitespace).

    Every ledger record is serialised twice when a chain is walked (its
    signature, its hash), so the shapes the project writes take the C encoder,
    which gives the same bytes for them (tests/test_formats.py holds it to
    rfc8785 on arbitrary values); anything else goes to rfc8785 itself.

    Raises:
        ValueError: a value JSON cannot carry exactly (floats like NaN,
            integers beyond ±2**53, non-string keys, lone surrogates).
    """
    if _plain(obj):
        try:
            return _compact(obj).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: rfc8785 refuses it, with its reason
            pass
    return rfc8785.dumps(obj)


def key_fingerprint(raw_public_key: bytes) -> str:
    """'sha256:' + hex SHA-256 of a raw 32-byte Ed25519 public key: how a device
    (in the ledger, a bundle, the collector) and an organisation's signing key
    are named."""
    return "sha256:" + hashlib.sha256(raw_public_key).hexdigest()


def sign_canonical(key: Ed25519PrivateKey, obj: Mapping[str, Any]) -> str:
    """Base64url Ed25519 signature over the canonical bytes of `obj`.

    Raises:
        ValueError: as `canonical`.
    """
    return b64url(key.sign(canonical(obj)))


def verify_ed25519(
    public_key: Ed25519PublicKey | bytes,
    signature: bytes,
    data: bytes | bytearray | memoryview,
) -> bool:
    """Whether `signature` is `public_key`'s Ed25519 signature over `data`.

    The one place that translates `cryptography`'s verification errors: a
    signature that does not verify, and key or signature bytes that are not
    an Ed25519 key or signature at all (wrong length, not bytes), all answer
    False. Each caller raises its own domain error with its own message, so
    what a refusal says stays with the format it refuses.
    """
    try:
        key = (
            public_key
            if isinstance(public_key, Ed25519PublicKey)
            else Ed25519PublicKey.from_public_bytes(public_key)
        )
        key.verify(signature, data)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
