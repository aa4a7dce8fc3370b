"""Officer-side verification of an exported ledger; needs no local store.

The export is JSON Lines: a header naming the device key, then one record per
line (see docs/adr/0002-ledger-records.md). For each record, in file order:

1. it parses as one JSON object (no duplicate keys, no NaN) with an integer `seq`;
2. `seq` is the next number: a larger one is a deleted record, or a swap when
   the expected record comes later; a smaller one is a duplicate or a swap;
3. its signature verifies with the header's device key (else the record was
   modified, or signed by another key);
4. its `prev` is the hash of the record before (else records were replaced,
   or two forks were spliced);
5. its envelope and, for kinds this version knows, its fields follow format v1;
6. it does not act on a session an earlier record deleted or shredded: once a
   session is gone from the device, nothing can approve, hold, redact, delete
   or upload it again, so such a record is forged or the device is broken.

A head witnessed earlier (by the collector, or written down by the officer)
must be reached with the same hash, or the tail was truncated or rewritten.
Without one, records cut off the end leave a shorter ledger that verifies:
the report says so (`anchored` is False) rather than claiming more.

Every failure raises `LedgerBroken(seq, reason)` where `seq` is the first
sequence number the file does not prove: records 1..seq-1 verified intact.
Problems with the file as a whole (empty, no header, a foreign device) are
`seq` 0; they exit 1 like any other failed check, because an officer cannot
tell a mangled file from a tampered one and should not have to.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cleartrace.consent.ledger import EXPORT_TYPE, EXPORT_VERSION
from cleartrace.consent.records import (
    ENVELOPE,
    GENESIS,
    KIND_FIELDS,
    RECORD_VERSION,
    check_fields,
    check_signature,
    record_hash,
)
from cleartrace.errors import LedgerBroken, UsageError
from cleartrace.formats import key_fingerprint, unb64url

__all__ = [
    "RemovedSessions",
    "VerifyReport",
    "format_problem",
    "parse_device",
    "parse_head",
    "verify_export",
]

_HEX64 = re.compile(r"[0-9a-f]{64}")
_RECORD_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
_KIND = re.compile(r"[a-z]+\.[a-z]+")
#: Kinds after which a session no longer exists on the device, and how to say so.
_REMOVING = {"session.deleted": "deleted", "session.shredded": "removed"}
#: What `audit verify` says when no witnessed head anchors the end of the ledger.
UNANCHORED = "unanchored tail: truncation cannot be excluded without a witnessed head"


class RemovedSessions:
    """The sessions a ledger deleted or shredded so far, walking it in order.

    A deleted session's key is destroyed in the transaction that writes its
    record, so no later act on it (approve, hold, redact, a second deletion)
    can be genuine; the org side can walk its stitched ledgers with this too.
    """

    __slots__ = ("_gone",)

    def __init__(self) -> None:
        self._gone: dict[str, tuple[int, str]] = {}

    def problem(self, record: Mapping[str, Any]) -> str | None:
        """Why `record` cannot follow the records seen so far, or None; then
        remembers it when it removes a session."""
        session, kind = record.get("session"), record.get("kind")
        if not isinstance(session, str):
            return None
        gone = self._gone.get(session)
        if gone is not None:
            return (
                f"'{kind}' acts on session {session[:12]}, which was {gone[1]} at record "
                f"{gone[0]} (a forged record, or a deletion that did not complete)"
            )
        if kind in _REMOVING:
            self._gone[session] = (int(record["seq"]), _REMOVING[str(kind)])
        return None


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What a verified export proves: `records` intact records by `device`."""

    records: int
    device: str
    head_seq: int
    head_hash: str
    #: Kinds this verifier does not know (written by a newer ClearTrace): their
    #: signatures and chain verified, their fields could not be checked.
    unknown_kinds: tuple[str, ...] = ()
    #: A witnessed head was given and reached: records cut off the end would
    #: have been caught. Without one, truncation cannot be excluded.
    anchored: bool = False

    @property
    def head(self) -> str:
        """SEQ:HASH, the form `--head` takes, to check a later export against."""
        return f"{self.head_seq}:{self.head_hash}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "records": self.records,
            "device": self.device,
            "head": self.head,
            "unknown_kinds": list(self.unknown_kinds),
            "anchored": self.anchored,
        }


def parse_head(text: str) -> tuple[int, str]:
    """Parse a witnessed head written as SEQ:HASH.

    Raises:
        UsageError: not a positive number, a colon and 64 hex digits.
    """
    seq, _, digest = text.strip().partition(":")
    digest = digest.lower()
    if not seq.isascii() or not seq.isdigit() or int(seq) < 1 or not _HEX64.fullmatch(digest):
        raise UsageError(
            f"'{text}' is not a ledger head; write it as SEQ:HASH, e.g. 42:<64 hex digits>, "
            "as 'cleartrace audit verify' or 'ledger export' printed it"
        )
    return int(seq), digest


def parse_device(text: str) -> str:
    """Parse an expected device fingerprint, 'sha256:' and 64 hex digits.

    Raises:
        UsageError: not of that form.
    """
    prefix, _, digest = text.strip().partition(":")
    if prefix != "sha256" or not _HEX64.fullmatch(digest.lower()):
        raise UsageError(
            f"'{text}' is not a device fingerprint; write it as sha256:<64 hex digits>, "
            "as 'cleartrace status' shows it on the device"
        )
    return "sha256:" + digest.lower()


def _object(line: str) -> dict[str, Any] | None:
    """The line as a JSON object, or None. Duplicate keys and NaN are refused:
    two parsers must never read two different records from one line."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for k, v in items:
            if k in obj:
                raise ValueError("duplicate key")
            obj[k] = v
        return obj

    def constant(name: str) -> Any:
        raise ValueError("not a finite number")

    try:
        obj = json.loads(line, object_pairs_hook=pairs, parse_constant=constant)
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def _header(line: str) -> tuple[Ed25519PublicKey, str]:
    header = _object(line)
    if header is None or header.get("type") != EXPORT_TYPE:
        raise LedgerBroken(
            0,
            "the first line is not a ledger export header; export with 'cleartrace ledger export'",
        )
    if header.get("v") != EXPORT_VERSION:
        raise LedgerBroken(0, "the export format is newer than this verifier; update cleartrace")
    try:
        raw = unb64url(str(header.get("device_public_key", "")))
        key = Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise LedgerBroken(
            0, "the header's device public key is not a base64url Ed25519 key"
        ) from None
    fingerprint = key_fingerprint(raw)
    if header.get("device") != fingerprint:
        raise LedgerBroken(0, "the header's device fingerprint does not match its public key")
    return key, fingerprint


def _misplaced(
    seq: int, expected: int, line: str, seen: dict[int, str], rest: Sequence[str]
) -> str:
    """Why record `seq` sits where `expected` should: missing, swapped or duplicated."""
    if seq > expected:
        for later in rest:
            other = _object(later)
            if other is not None and other.get("seq") == expected:
                return f"out of order: record {seq} comes before record {expected} (swapped)"
        return f"record {expected} is missing (deleted); the next record is {seq}"
    if seen.get(seq) == line:
        return f"record {seq} appears again where record {expected} should be (duplicated)"
    if seq in seen:
        return (
            f"a second, different record {seq} appears where record {expected} should be "
            "(out of order, or a forked ledger)"
        )
    return f"record number {seq} is not valid here; record {expected} was expected"


def _check_record(record: dict[str, Any], key: Ed25519PublicKey, prev: str) -> None:
    seq: int = record["seq"]
    check_signature(record, key)
    if record.get("prev") != prev:
        before = "the genesis value (64 zeros)" if seq == 1 else f"the hash of record {seq - 1}"
        raise LedgerBroken(
            seq, f"hash chain broken: 'prev' is not {before} (a replaced record or a forked ledger)"
        )
    problem = format_problem(record)
    if problem is not None:
        raise LedgerBroken(seq, problem)


def format_problem(record: Mapping[str, Any]) -> str | None:
    """What keeps `record` from being a well-formed v1 record (version, time,
    kind, that kind's fields), or None; the signature and chain are checked apart."""
    if record.get("v") != RECORD_VERSION:
        return "the record format is not v1; update cleartrace"
    time, kind = record.get("time"), record.get("kind")
    if not isinstance(time, str) or not _RECORD_TIME.fullmatch(time):
        return "'time' is not a UTC time with milliseconds"
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        return "'kind' is not of the form 'area.event'"
    if kind in KIND_FIELDS:
        try:
            check_fields(kind, {k: v for k, v in record.items() if k not in ENVELOPE})
        except ValueError as exc:
            return f"the '{kind}' record breaks format v1: {exc}"
    return None


def verify_export(
    lines: Iterable[str],
    *,
    expect_device: str | None = None,
    head: tuple[int, str] | None = None,
) -> VerifyReport:
    """Verify an export written by `Ledger.export` (lines with or without newlines).

    `expect_device`: the fingerprint the officer knows for this device; without
    it, a ledger wholly re-signed by another key is internally consistent.
    `head`: (seq, hash) witnessed earlier; the export must contain it.

    Raises:
        LedgerBroken: at the first sequence number not proven (0: the file or
            its header); see the module docstring.
        UsageError: `expect_device` is not a fingerprint.
    """
    expected_device = None if expect_device is None else parse_device(expect_device)
    numbered = [(n, line.rstrip("\r\n")) for n, line in enumerate(lines, 1)]
    numbered = [(n, line) for n, line in numbered if line.strip()]
    if not numbered:
        raise LedgerBroken(0, "the file is empty; expected a ledger export")
    key, device = _header(numbered[0][1])
    if expected_device is not None and device != expected_device:
        raise LedgerBroken(
            0, f"foreign device key: the export is signed by {device}, not {expected_device}"
        )
    body = [line for _, line in numbered[1:]]
    expected, prev = 1, GENESIS
    seen: dict[int, str] = {}
    unknown: set[str] = set()
    removed = RemovedSessions()
    for index, line in enumerate(body):
        record = _object(line)
        seq = None if record is None else record.get("seq")
        if record is None or type(seq) is not int:
            raise LedgerBroken(
                expected,
                f"line {numbered[index + 1][0]} is not a JSON record with a sequence number",
            )
        if seq != expected:
            raise LedgerBroken(expected, _misplaced(seq, expected, line, seen, body[index + 1 :]))
        _check_record(record, key, prev)
        problem = removed.problem(record)
        if problem is not None:
            raise LedgerBroken(seq, problem)
        prev = record_hash(record)
        if head is not None and seq == head[0] and prev != head[1]:
            raise LedgerBroken(
                seq, "differs from the witnessed head (the ledger was rewritten from here)"
            )
        if record["kind"] not in KIND_FIELDS:
            unknown.add(record["kind"])
        seen[seq] = line
        expected += 1
    count = expected - 1
    if head is not None and count < head[0]:
        raise LedgerBroken(
            count + 1,
            f"truncated: the export ends at record {count}, but record {head[0]} was witnessed",
        )
    return VerifyReport(
        records=count,
        device=device,
        head_seq=count,
        head_hash=prev,
        unknown_kinds=tuple(sorted(unknown)),
        anchored=head is not None,
    )
