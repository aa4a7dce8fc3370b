"""Ledger records: canonical, chained, signed. See docs/adr/0002.

A record is a JSON object; its bytes are RFC 8785 canonical JSON, so every
verifier hashes and checks the same bytes whatever JSON library wrote it::

    {"v": 1, "seq": 7, "time": "2026-11-24T09:14:03.120Z", "kind": "consent.given",
     "categories": ["clicks", "keys"], "policy": {"id": ..., "version": 1, "sha256": ...},
     "prev": "<hex SHA-256 of record 6>", "sig": "<base64url Ed25519 over the record without sig>"}

The record hash (what the next record's `prev` holds) covers the signature too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import UTC, datetime
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cleartrace.errors import LedgerBroken

__all__ = [
    "GENESIS",
    "KIND_FIELDS",
    "RECORD_VERSION",
    "b64url",
    "canonical",
    "check_signature",
    "make_record",
    "record_hash",
    "unb64url",
]

RECORD_VERSION = 1
GENESIS = "0" * 64
_ENVELOPE = frozenset({"v", "seq", "time", "kind", "prev", "sig"})

#: The only fields each kind may carry besides the envelope: never captured content.
KIND_FIELDS: dict[str, frozenset[str]] = {
    "consent.given": frozenset({"categories", "policy"}),
    "consent.refused": frozenset({"categories", "policy"}),
    "consent.withdrawn": frozenset({"categories", "policy"}),
    "recording.paused": frozenset({"until"}),
    "recording.resumed": frozenset({"reason"}),
    "exclusion.added": frozenset({"app"}),
    "exclusion.removed": frozenset({"app"}),
    "session.started": frozenset({"session"}),
    "session.ended": frozenset({"session"}),
    "session.deleted": frozenset({"session"}),
}


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    """Raises ValueError on bad input."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, TypeError) as exc:
        raise ValueError("not base64url") from exc


def utc_now() -> str:
    return _rfc3339(datetime.now(UTC))


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def canonical(record: dict[str, Any]) -> bytes:
    return rfc8785.dumps(record)


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


def make_record(
    key: Ed25519PrivateKey,
    *,
    seq: int,
    prev: str,
    kind: str,
    fields: dict[str, Any],
    now: datetime | None = None,
) -> dict[str, Any]:
    """Build and sign one record.

    Raises:
        ValueError: an unknown kind, or a field that kind may not carry.
    """
    allowed = KIND_FIELDS.get(kind)
    if allowed is None:
        raise ValueError(f"unknown ledger record kind '{kind}'")
    extra = set(fields) - allowed
    if extra:
        raise ValueError(f"a '{kind}' record may not carry {sorted(extra)}")
    record: dict[str, Any] = {
        "v": RECORD_VERSION,
        "seq": seq,
        "time": _rfc3339(now or datetime.now(UTC)),
        "kind": kind,
        "prev": prev,
        **fields,
    }
    record["sig"] = b64url(key.sign(canonical(record)))
    return record


def check_signature(record: dict[str, Any], public_key: Ed25519PublicKey) -> None:
    """Raises LedgerBroken when the signature is missing or does not verify."""
    seq = record.get("seq", 0) if isinstance(record.get("seq"), int) else 0
    sig = record.get("sig")
    if not isinstance(sig, str):
        raise LedgerBroken(seq, "record has no signature")
    unsigned = {k: v for k, v in record.items() if k != "sig"}
    try:
        public_key.verify(unb64url(sig), canonical(unsigned))
    except (InvalidSignature, ValueError):
        raise LedgerBroken(
            seq, "signature does not verify (record modified or signed by another key)"
        ) from None
