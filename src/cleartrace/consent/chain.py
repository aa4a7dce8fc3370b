"""The one walk over a device's ledger records, from a base to a head.

`audit verify` walks an export from the genesis value; ingest walks each
bundle's segment from the record its bundle builds on. Both must refuse the
same tampering for the same reason, so both call `walk`, which checks, for
each record in order:

1. `seq` is the next number: a larger one is a deleted record, or a swap when
   the expected record comes later; a smaller one is a duplicate, a swap or,
   when it differs from the record already seen, a fork;
2. its signature verifies with the device key (else the record was modified,
   or signed by another key);
3. its `prev` is the hash of the record before (else records were replaced,
   or two forks were spliced);
4. its envelope and, for kinds this version knows, its fields follow format v1;
5. it does not act on a session an earlier record deleted or shredded: once a
   session is gone from the device, nothing can approve, hold, redact, delete
   or upload it again, so such a record is forged or the device is broken;
6. at a witnessed head's number, its hash is the head's, and the records
   reach that number (else the tail was rewritten or cut off).

Every failure raises `LedgerBroken(seq, detail, reason)`, `seq` the first
record not proven. The reason ids are part of ingest's report
(docs/dataset.md): `ledger-gap` (a record missing, swapped or duplicated),
`ledger-fork`, `ledger-bad-signature`, `ledger-rewritten`,
`ledger-bad-record`, `ledger-after-deletion`, `ledger-truncated`.

One signature per run: a record's hash covers its signature, and the next
record's `prev` is that hash, so a valid signature on the last record of a run
whose links all hold commits the device to every record before it, signatures
included. A device checks the record it builds on before it signs the next
(`Ledger.append`), so every record under a valid last signature was itself
signed by the device: checking that one signature and every link proves what
checking every signature proves, at one Ed25519 check per run instead of one
per record (docs/adr/0006-one-signature-per-run.md). Any failure is walked
again checking every signature, so the record and reason named are those of a
full check; `every_signature=True` asks for the full check outright.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cleartrace.consent.record_fields import FIELD_CHECKS
from cleartrace.consent.records import (
    ENVELOPE,
    GENESIS,
    KIND_FIELDS,
    RECORD_VERSION,
    check_fields,
    check_signature,
)
from cleartrace.errors import LedgerBroken
from cleartrace.formats import canonical

__all__ = [
    "AFTER_DELETION",
    "BAD_RECORD",
    "FORK",
    "GAP",
    "REWRITTEN",
    "TRUNCATED",
    "RemovedSessions",
    "format_problem",
    "walk",
]

GAP = "ledger-gap"
FORK = "ledger-fork"
REWRITTEN = "ledger-rewritten"
BAD_RECORD = "ledger-bad-record"
AFTER_DELETION = "ledger-after-deletion"
TRUNCATED = "ledger-truncated"

_RECORD_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
_KIND = re.compile(r"[a-z]+\.[a-z]+")
#: Kinds after which a session no longer exists on the device, and how to say so.
_REMOVING = {"session.deleted": "deleted", "session.shredded": "removed"}


class RemovedSessions:
    """The sessions a ledger deleted or shredded so far, walking it in order.

    A deleted session's key is destroyed in the transaction that writes its
    record, so no later act on it (approve, hold, redact, a second deletion)
    can be genuine. "Later" is by sequence number: ingest walks overlapping
    segments, and a record seen a second time is not an act after itself.
    """

    __slots__ = ("_gone",)

    def __init__(self) -> None:
        self._gone: dict[str, tuple[int, str]] = {}

    def problem(self, record: Mapping[str, Any]) -> str | None:
        """Why `record` cannot follow the records seen so far, or None; then
        remembers it when it removes a session."""
        session, kind, seq = record.get("session"), record.get("kind"), int(record["seq"])
        if not isinstance(session, str):
            return None
        gone = self._gone.get(session)
        if gone is not None and seq > gone[0]:
            return (
                f"'{kind}' acts on session {session[:12]}, which was {gone[1]} at record "
                f"{gone[0]} (a forged record, or a deletion that did not complete)"
            )
        if gone is None and kind in _REMOVING:
            self._gone[session] = (seq, _REMOVING[str(kind)])
        return None


def format_problem(record: Mapping[str, Any]) -> str | None:
    """What keeps `record` from being a well-formed v1 record (version, time,
    kind, that kind's fields), or None; the signature and chain are checked apart."""
    if record.get("v") != RECORD_VERSION:
        return "the record format is not v1; update cleartrace"
    time, kind = record.get("time"), record.get("kind")
    if not isinstance(time, str) or not _RECORD_TIME.fullmatch(time):
        return "'time' is not a UTC time with milliseconds"
    if not isinstance(kind, str):
        return "'kind' is not of the form 'area.event'"
    # A known kind has the form (`register_kind` makes sure): only others are matched.
    allowed = KIND_FIELDS.get(kind)
    if allowed is None:
        return None if _KIND.fullmatch(kind) else "'kind' is not of the form 'area.event'"
    try:
        if record.keys() - ENVELOPE == allowed:  # each field once, as a walk meets most records
            for name in allowed:
                FIELD_CHECKS[name](record[name])
        else:  # a field missing or extra: said as `check_fields` says it
            check_fields(kind, {k: v for k, v in record.items() if k not in ENVELOPE})
    except ValueError as exc:
        return f"the '{kind}' record breaks format v1: {exc}"
    return None


def _misplaced(
    seq: int,
    expected: int,
    record: Mapping[str, Any],
    before: Sequence[Mapping[str, Any]],
    rest: Sequence[Mapping[str, Any]],
) -> LedgerBroken:
    """Why record `seq` sits where `expected` should: missing, swapped,
    duplicated or forked. `before` holds the records up to `expected - 1`."""
    if seq > expected:
        if any(other.get("seq") == expected for other in rest):
            detail = f"out of order: record {seq} comes before record {expected} (swapped)"
        else:
            detail = f"record {expected} is missing (deleted); the next record is {seq}"
        return LedgerBroken(expected, detail, GAP)
    offset = len(before) - (expected - seq)
    if offset >= 0 and before[offset] == record:
        detail = f"record {seq} appears again where record {expected} should be (duplicated)"
        return LedgerBroken(expected, detail, GAP)
    if offset >= 0:
        detail = (
            f"a second, different record {seq} appears where record {expected} should be "
            "(out of order, or a forked ledger)"
        )
        return LedgerBroken(expected, detail, FORK)
    detail = f"record number {seq} is not valid here; record {expected} was expected"
    return LedgerBroken(expected, detail, GAP)


def walk(
    records: Sequence[Mapping[str, Any]],
    key: Ed25519PublicKey,
    *,
    base: tuple[int, str] = (0, GENESIS),
    head: tuple[int, str] | None = None,
    removed: RemovedSessions | None = None,
    each: Callable[[int, Mapping[str, Any], str], None] | None = None,
    beyond: Sequence[Mapping[str, Any]] = (),
    every_signature: bool = False,
    encoded: list[bytes] | None = None,
    lines: Sequence[bytes] | None = None,
) -> list[str]:
    """Check `records`, which continue the record `base` (seq, hash), against
    the device `key`; returns each record's hash.

    `head`: (seq, hash) witnessed earlier; the records must reach it with that
    hash. `removed`: the deletions of the records before `base`, to carry the
    deleted-session rule across segments; it learns those in `records`.
    `each(seq, record, hash)` runs once a record is proven, before the next is
    looked at, so a caller's own check (ingest's: overlapping segments hold
    the same records) fails at the same record it would in one pass.
    `beyond`: records past an unreadable line, never proven, consulted only to
    tell a swapped record from a deleted one.
    `every_signature`: check each record's signature, not only the last's (see
    "One signature per run" above; then `each` runs once all are proven).
    `encoded`: given a list, each proven record's canonical bytes (those its
    hash is of) are appended to it, for a caller that writes them out.
    `lines`: the records as read (one line each), hashed as they are instead of
    encoding each record again. A device hashes only canonical bytes, so a line
    whose hash is the one the next record (or the head) names is those bytes;
    any other line fails the run, which is then walked again from the records.

    Raises:
        LedgerBroken: at the first record not proven; see the module docstring.
    """
    if lines is not None and len(lines) != len(records):
        raise ValueError("walk: `lines` must hold one line per record")
    if not every_signature and records:
        proven: list[bytes] = []
        try:
            hashes = _walk(records, key, base, head, removed, None, beyond, False, proven, lines)
            check_signature(records[-1], key)
            # The links prove every line but the last to be the bytes the device
            # hashed; the last, no record after it names.
            if lines is not None and lines[-1] != canonical(records[-1]):
                raise LedgerBroken(len(records), "the last line is not canonical", BAD_RECORD)
        except LedgerBroken:
            # Walked again checking every signature, to name the first record not
            # proven exactly as `audit verify` would; `removed` tolerates records
            # seen twice (overlapping segments).
            pass
        else:
            for record, digest in zip(records, hashes, strict=True):
                if each is not None:
                    each(int(record["seq"]), record, digest)
            if encoded is not None:
                encoded += proven
            return hashes
    return _walk(records, key, base, head, removed, each, beyond, True, encoded)


def _walk(
    records: Sequence[Mapping[str, Any]],
    key: Ed25519PublicKey,
    base: tuple[int, str],
    head: tuple[int, str] | None,
    removed: RemovedSessions | None,
    each: Callable[[int, Mapping[str, Any], str], None] | None,
    beyond: Sequence[Mapping[str, Any]],
    every_signature: bool,
    encoded: list[bytes] | None,
    lines: Sequence[bytes] | None = None,
) -> list[str]:
    """`walk`, checking each record's signature or (`every_signature=False`) none,
    hashing `lines` when given."""
    removed = RemovedSessions() if removed is None else removed
    expected, prev = base[0] + 1, base[1]
    hashes: list[str] = []
    for index, record in enumerate(records):
        seq = record.get("seq")
        if type(seq) is not int:
            raise LedgerBroken(expected, "the record has no sequence number", BAD_RECORD)
        if seq != expected:
            later = [*records[index + 1 :], *beyond]
            raise _misplaced(seq, expected, record, records[:index], later)
        if every_signature:
            check_signature(record, key)
        if record.get("prev") != prev:
            before = "the genesis value (64 zeros)" if seq == 1 else f"the hash of record {seq - 1}"
            raise LedgerBroken(
                seq,
                f"hash chain broken: 'prev' is not {before} (a replaced record or a forked ledger)",
                REWRITTEN,
            )
        problem = format_problem(record)
        if problem is not None:
            raise LedgerBroken(seq, problem, BAD_RECORD)
        problem = removed.problem(record)
        if problem is not None:
            raise LedgerBroken(seq, problem, AFTER_DELETION)
        line = canonical(record) if lines is None else lines[index]
        prev = hashlib.sha256(line).hexdigest()
        if head is not None and seq == head[0] and prev != head[1]:
            raise LedgerBroken(
                seq,
                "differs from the witnessed head (the ledger was rewritten from here)",
                REWRITTEN,
            )
        if each is not None:
            each(seq, record, prev)
        hashes.append(prev)
        if encoded is not None:
            encoded.append(line)
        expected += 1
    if head is not None and expected <= head[0]:
        raise LedgerBroken(
            expected,
            f"truncated: the export ends at record {expected - 1}, but record {head[0]} was "
            "witnessed",
            TRUNCATED,
        )
    return hashes
