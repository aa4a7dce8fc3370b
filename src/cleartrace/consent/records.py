"""Ledger records: canonical, chained, signed. See docs/adr/0002-ledger-records.md.

A record is a JSON object; its bytes are RFC 8785 canonical JSON, so every
verifier hashes and checks the same bytes whatever JSON library wrote it::

    {"v": 1, "seq": 7, "time": "2026-11-24T09:14:03.120Z", "kind": "consent.given",
     "categories": ["clicks", "keys"], "policy": {"id": ..., "version": 1, "sha256": ...},
     "prev": "<hex SHA-256 of record 6>", "sig": "<base64url Ed25519 over the record without sig>"}

The record hash (what the next record's `prev` holds) covers the signature too,
so a record cannot be swapped for another validly signed one without breaking
the chain.

Records must never carry captured content. That is enforced here rather than
trusted to callers: each kind has a fixed set of fields, and each field has a
check on its value's shape (record_fields.py: a session id is 32 hex digits, a category is a
known category name, ...), so a window title or typed text has nowhere to go.
An application the person excludes is named only by its `app_tag`, a keyed
hash whose key stays on the device; `LEGACY_KINDS` (which carried the name)
are still verified in ledgers written before, and never written again.
Further kinds can be added with `register_field` and `register_kind`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cleartrace.consent.record_fields import (
    APPROVERS,
    FIELD_CHECKS,
    HEX64,
    MAX_INT,
    RESUME_REASONS,
    FieldCheck,
    check_app_name,
)
from cleartrace.errors import LedgerBroken
from cleartrace.formats import canonical, rfc3339, sign_canonical, unb64url, verify_ed25519

__all__ = [
    "APPROVERS",
    "ENVELOPE",
    "GENESIS",
    "KIND_FIELDS",
    "LEGACY_KINDS",
    "OPTIONAL_FIELDS",
    "RECORD_VERSION",
    "RESUME_REASONS",
    "FieldCheck",
    "check_app_name",
    "check_fields",
    "check_signature",
    "make_record",
    "record_hash",
    "register_field",
    "register_kind",
    "sign_record",
]

RECORD_VERSION = 1
#: `prev` of the first record: there is no record before it.
GENESIS = "0" * 64
#: Fields every record carries, whatever its kind.
ENVELOPE = frozenset({"v", "seq", "time", "kind", "prev", "sig"})
#: The reason id of a signature that does not verify (see consent/chain.py).
_BAD_SIGNATURE = "ledger-bad-signature"


def record_hash(record: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the canonical bytes of the full record, signature included.

    Raises:
        ValueError: as `canonical`.
    """
    return hashlib.sha256(canonical(record)).hexdigest()


_KIND_FIELDS: dict[str, frozenset[str]] = {
    "consent.given": frozenset({"categories", "policy"}),
    "consent.refused": frozenset({"categories", "policy"}),
    "consent.withdrawn": frozenset({"categories", "policy"}),
    "recording.paused": frozenset({"until"}),
    "recording.resumed": frozenset({"reason"}),
    # Written before app tags: the application's name itself. Verified, never
    # written again (see LEGACY_KINDS).
    "exclusion.added": frozenset({"app"}),
    "exclusion.removed": frozenset({"app"}),
    # The person excluded an application, or let it be recorded again: named by
    # HMAC-SHA256 under a key kept on the device (consent/exclusions.py), so the
    # organisation can tell the same application apart but never read it.
    "app.excluded": frozenset({"app_tag"}),
    "app.included": frozenset({"app_tag"}),
    "session.started": frozenset({"session"}),
    "session.ended": frozenset({"session"}),
    "session.deleted": frozenset({"session"}),
    # What went (how many events of which categories, from when to when) and
    # how it was chosen; never what it was, nor the pattern that found it.
    "session.redacted": frozenset({"session", "method", "events", "categories", "interval"}),
    # How many spans of each kind of personal data the detectors found were
    # left out of the session's bundle (review/withheld.py); never what or where.
    "upload.redacted": frozenset({"session", "spans"}),
    # The person said a detection is not personal data, so it is uploaded as
    # typed: its kind and the times of its first and last event, nothing typed.
    "detection.released": frozenset({"session", "pii", "interval"}),
    "session.approved": frozenset({"session", "by"}),
    "session.held": frozenset({"session"}),
    # The device enrolled with an organisation and installed this policy.
    "device.enrolled": frozenset({"policy"}),
    # The collector acknowledged a bundle and witnessed this ledger head.
    "bundle.uploaded": frozenset({"bundle", "witnessed"}),
    # The local copy of an uploaded session was removed under the policy's
    # retention. Not a deletion: the uploaded data stays in the dataset.
    "session.shredded": frozenset({"session"}),
    # The master key was replaced and every key it wrapped rewrapped
    # (`cleartrace keys rotate`). Nothing about either key is recorded.
    "key.rotated": frozenset(),
    # The collector witnessed a head this device's ledger does not contain
    # (the store was restored from an old backup, or rewritten): nothing more
    # is uploaded from this ledger. Heads only, no content.
    "ledger.rollback": frozenset({"witnessed", "local"}),
}

#: Fields a kind may carry beyond its required ones. Old records lack them and
#: stay valid; a record carrying one is read only by a version that knows it
#: (docs/adr/0002). `timing` on `bundle.uploaded`: "raw" or "even", which key
#: timing the acknowledged bundle carried (its header says the same); absent
#: on a ledger-only bundle, which carries no events.
_OPTIONAL_FIELDS: dict[str, frozenset[str]] = {"bundle.uploaded": frozenset({"timing"})}

#: Kinds a verifier accepts in old ledgers but `Ledger` no longer writes: they
#: carry an application's name, which must not leave the device.
LEGACY_KINDS = frozenset({"exclusion.added", "exclusion.removed"})

#: Read-only view: kind -> the fields (all required) its records carry besides the envelope.
KIND_FIELDS: Mapping[str, frozenset[str]] = MappingProxyType(_KIND_FIELDS)
#: Read-only view: kind -> the fields its records may also carry.
OPTIONAL_FIELDS: Mapping[str, frozenset[str]] = MappingProxyType(_OPTIONAL_FIELDS)


def register_field(name: str, check: FieldCheck) -> None:
    """Declare a new record field and the check its values must pass.

    A field name means one thing in every kind, so it is declared once.

    Raises:
        ValueError: the name is an envelope field or already declared.
    """
    if name in ENVELOPE or name in FIELD_CHECKS:
        raise ValueError(f"ledger field '{name}' is already declared")
    FIELD_CHECKS[name] = check


def register_kind(kind: str, fields: Iterable[str]) -> None:
    """Declare a new record kind ("area.event") carrying exactly `fields`.

    Raises:
        ValueError: the kind exists, is not of the form "area.event", or names
            an undeclared field.
    """
    wanted = frozenset(fields)
    if kind in _KIND_FIELDS or not re.fullmatch(r"[a-z]+\.[a-z]+", kind):
        raise ValueError(f"ledger kind '{kind}' exists already or is not 'area.event'")
    unknown = wanted - set(FIELD_CHECKS)
    if unknown:
        raise ValueError(f"declare ledger fields {sorted(unknown)} with register_field first")
    _KIND_FIELDS[kind] = wanted


def check_fields(kind: str, fields: Mapping[str, Any]) -> None:
    """Check that `fields` are exactly what a `kind` record carries, in shape.

    Raises:
        ValueError: unknown kind, a missing or extra field, or a value of the
            wrong shape. Messages never repeat the value.
    """
    allowed = _KIND_FIELDS.get(kind)
    if allowed is None:
        raise ValueError(f"unknown ledger record kind '{kind}'")
    optional = _OPTIONAL_FIELDS.get(kind, frozenset())
    extra, missing = set(fields) - allowed - optional, allowed - set(fields)
    if extra:
        raise ValueError(f"a '{kind}' record may not carry {sorted(extra)}")
    if missing:
        raise ValueError(f"a '{kind}' record needs {sorted(missing)}")
    for name, value in fields.items():
        FIELD_CHECKS[name](value)


# -- building, signing, checking --------------------------------------------------------


def make_record(
    *,
    seq: int,
    prev: str,
    kind: str,
    fields: Mapping[str, Any],
    now: datetime | None = None,
) -> dict[str, Any]:
    """Build one unsigned record; `sign_record` adds the signature.

    Raises:
        ValueError: a bad sequence number or `prev`, a naive `now`, an unknown
            kind, or fields that kind may not carry (see `check_fields`).
    """
    if type(seq) is not int or not 1 <= seq <= MAX_INT:
        raise ValueError("'seq' must be a positive integer")
    if not HEX64.fullmatch(prev):
        raise ValueError("'prev' must be 64 lower-case hex digits")
    check_fields(kind, fields)
    return {
        "v": RECORD_VERSION,
        "seq": seq,
        "time": rfc3339(now if now is not None else datetime.now(UTC)),
        "kind": kind,
        "prev": prev,
        **fields,
    }


def sign_record(unsigned: Mapping[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """A copy of `unsigned` with "sig": Ed25519 over its canonical bytes.

    Raises:
        ValueError: `unsigned` already has a signature, or cannot be canonicalised.
    """
    if "sig" in unsigned:
        raise ValueError("the record is already signed")
    signed = dict(unsigned)
    signed["sig"] = sign_canonical(key, unsigned)
    return signed


def check_signature(record: Mapping[str, Any], public_key: Ed25519PublicKey) -> None:
    """Check the record's signature by `public_key`.

    Raises:
        LedgerBroken: the signature is missing, malformed or does not verify
            (the record was modified, or signed by another key).
    """
    seq = record.get("seq")
    seq = seq if type(seq) is int else 0
    sig = record.get("sig")
    if not isinstance(sig, str):
        raise LedgerBroken(seq, "the record has no signature", _BAD_SIGNATURE)
    unsigned = {k: v for k, v in record.items() if k != "sig"}
    try:
        ok = verify_ed25519(public_key, unb64url(sig), canonical(unsigned))
    except ValueError:  # not base64url, or not canonicalisable: not this record's signature
        ok = False
    if not ok:
        raise LedgerBroken(
            seq,
            "signature does not verify (record modified or signed by another key)",
            _BAD_SIGNATURE,
        ) from None
