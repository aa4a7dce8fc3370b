"""Officer-side verification of an exported ledger; needs no local store.

The export is JSON Lines: a header naming the device key, then one record per
line (see docs/adr/0002-ledger-records.md). Each line must parse as one JSON
object (no duplicate keys, no NaN) with an integer `seq`; the records are then
walked from the genesis value by `consent.chain.walk`, the same walk ingest
runs on bundles, which names what it checks.

A head witnessed earlier (by the collector, or written down by the officer)
must be reached with the same hash, or the tail was truncated or rewritten.
Without one, records cut off the end leave a shorter ledger that verifies:
the report says so (`anchored` is False) rather than claiming more.

Every failure raises `LedgerBroken(seq, detail, reason)` where `seq` is the
first sequence number the file does not prove: records 1..seq-1 verified
intact. Problems with the file as a whole (empty, no header, a foreign device)
are `seq` 0 and reason `ledger-bad-export`; they exit 1 like any other failed
check, because an officer cannot tell a mangled file from a tampered one and
should not have to.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cleartrace.consent.chain import BAD_RECORD, walk
from cleartrace.consent.ledger import EXPORT_TYPE, EXPORT_VERSION
from cleartrace.consent.records import GENESIS, KIND_FIELDS
from cleartrace.errors import LedgerBroken, UsageError
from cleartrace.formats import key_fingerprint, unb64url

__all__ = [
    "BAD_EXPORT",
    "UNANCHORED",
    "VerifyReport",
    "parse_device",
    "parse_head",
    "verify_export",
]

_HEX64 = re.compile(r"[0-9a-f]{64}")
#: The reason id of a file that is not a ledger export, or not the expected device's.
BAD_EXPORT = "ledger-bad-export"
#: What `audit verify` says when no witnessed head anchors the end of the ledger.
UNANCHORED = "unanchored tail: truncation cannot be excluded without a witnessed head"


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
            BAD_EXPORT,
        )
    if header.get("v") != EXPORT_VERSION:
        raise LedgerBroken(
            0, "the export format is newer than this verifier; update cleartrace", BAD_EXPORT
        )
    try:
        raw = unb64url(str(header.get("device_public_key", "")))
        key = Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise LedgerBroken(
            0, "the header's device public key is not a base64url Ed25519 key", BAD_EXPORT
        ) from None
    fingerprint = key_fingerprint(raw)
    if header.get("device") != fingerprint:
        raise LedgerBroken(
            0, "the header's device fingerprint does not match its public key", BAD_EXPORT
        )
    return key, fingerprint


def verify_export(
    lines: Iterable[str],
    *,
    expect_device: str | None = None,
    head: tuple[int, str] | None = None,
    every_signature: bool = False,
) -> VerifyReport:
    """Verify an export written by `Ledger.export` (lines with or without newlines).

    `expect_device`: the fingerprint the officer knows for this device; without
    it, a ledger wholly re-signed by another key is internally consistent.
    `head`: (seq, hash) witnessed earlier; the export must contain it.
    `every_signature`: check each record's signature, not only the last's
    (consent/chain.py, "One signature per run").

    Raises:
        LedgerBroken: at the first sequence number not proven (0: the file or
            its header); see the module docstring.
        UsageError: `expect_device` is not a fingerprint.
    """
    expected_device = None if expect_device is None else parse_device(expect_device)
    numbered = [(n, line.rstrip("\r\n")) for n, line in enumerate(lines, 1)]
    numbered = [(n, line) for n, line in numbered if line.strip()]
    if not numbered:
        raise LedgerBroken(0, "the file is empty; expected a ledger export", BAD_EXPORT)
    key, device = _header(numbered[0][1])
    if expected_device is not None and device != expected_device:
        raise LedgerBroken(
            0,
            f"foreign device key: the export is signed by {device}, not {expected_device}",
            BAD_EXPORT,
        )
    parsed = [_object(line) for _, line in numbered[1:]]
    records: list[dict[str, Any]] = []
    for record in parsed:
        if record is None or type(record.get("seq")) is not int:
            break
        records.append(record)
    bad_line = len(records) + 1 < len(numbered)
    # Past an unreadable line nothing is proven, so a head beyond it is not
    # "truncated": the line is what the officer must hear about.
    reach = None if head is None or (bad_line and head[0] > len(records)) else head
    beyond = [r for r in parsed[len(records) + 1 :] if r is not None]
    hashes = walk(records, key, head=reach, beyond=beyond, every_signature=every_signature)
    count = len(records)
    if bad_line:
        raise LedgerBroken(
            count + 1,
            f"line {numbered[count + 1][0]} is not a JSON record with a sequence number",
            BAD_RECORD,
        )
    return VerifyReport(
        records=count,
        device=device,
        head_seq=count,
        head_hash=hashes[-1] if hashes else GENESIS,
        unknown_kinds=tuple(sorted({r["kind"] for r in records} - set(KIND_FIELDS))),
        anchored=head is not None,
    )
