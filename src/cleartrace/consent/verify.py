"""Officer-side verification of an exported ledger; needs no local store.

Checks, in order, for each line: parseable canonical JSON, the expected
sequence number (a gap is a deleted record, a smaller number a swap or a
duplicate), the hash chain, the signature by the header's device key. A
given head (witnessed earlier, e.g. by the collector) must be reached with
the same hash, or the tail was truncated or rewritten. Each failure raises
`LedgerBroken` naming the first bad sequence number.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cleartrace.consent.ledger import EXPORT_TYPE
from cleartrace.consent.records import GENESIS, check_signature, record_hash, unb64url
from cleartrace.errors import LedgerBroken, UsageError

__all__ = ["VerifyReport", "parse_head", "verify_export"]


@dataclass(frozen=True, slots=True)
class VerifyReport:
    records: int
    device: str
    head_seq: int
    head_hash: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "records": self.records,
            "device": self.device,
            "head": f"{self.head_seq}:{self.head_hash}",
        }


def parse_head(text: str) -> tuple[int, str]:
    """Parse SEQ:HASH.

    Raises:
        UsageError: not a positive number, a colon and 64 hex digits.
    """
    seq, _, digest = text.partition(":")
    if (
        not seq.isdigit()
        or int(seq) < 1
        or len(digest) != 64
        or not all(c in "0123456789abcdef" for c in digest)
    ):
        raise UsageError(f"'{text}' is not a head; write it as SEQ:HASH (64 hex digits)")
    return int(seq), digest


def _header(line: str) -> tuple[Ed25519PublicKey, str]:
    try:
        header = json.loads(line)
        raw = unb64url(header["device_public_key"])
        if header.get("type") != EXPORT_TYPE or header.get("v") != 1:
            raise ValueError("not a ledger export header")
        key = Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, KeyError, TypeError) as exc:
        raise LedgerBroken(0, f"the first line is not a ledger export header ({exc})") from None
    fingerprint = "sha256:" + hashlib.sha256(raw).hexdigest()
    if header.get("device") != fingerprint:
        raise LedgerBroken(0, "the header's device fingerprint does not match its public key")
    return key, fingerprint


def verify_export(
    lines: Iterable[str],
    *,
    expect_device: str | None = None,
    head: tuple[int, str] | None = None,
) -> VerifyReport:
    """Verify an export written by `Ledger.export`.

    Raises:
        LedgerBroken: at the first bad record (seq 0 for the header).
    """
    it = iter(lines)
    first = next(it, None)
    if first is None or not first.strip():
        raise LedgerBroken(0, "the file is empty; expected a ledger export")
    key, device = _header(first)
    if expect_device is not None and device != expect_device:
        raise LedgerBroken(
            0, f"foreign device key: the ledger is signed by {device}, not {expect_device}"
        )
    expected_seq, prev, count = 1, GENESIS, 0
    for line in it:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            seq = record["seq"]
            if not isinstance(record, dict) or not isinstance(seq, int):
                raise TypeError("no sequence number")
        except (ValueError, KeyError, TypeError):
            raise LedgerBroken(
                expected_seq, "record is not valid JSON with a sequence number"
            ) from None
        if seq > expected_seq:
            raise LedgerBroken(expected_seq, f"record missing (the next record is {seq})")
        if seq < expected_seq:
            what = "duplicated" if seq == expected_seq - 1 else "out of order (swapped)"
            raise LedgerBroken(expected_seq, f"record {seq} appears here: {what}")
        check_signature(record, key)
        if record.get("prev") != prev:
            raise LedgerBroken(seq, "hash chain broken: 'prev' is not the previous record's hash")
        prev = record_hash(record)
        if head is not None and seq == head[0] and prev != head[1]:
            raise LedgerBroken(seq, "differs from the witnessed head (ledger rewritten)")
        expected_seq += 1
        count += 1
    if head is not None and count < head[0]:
        raise LedgerBroken(
            count + 1, f"truncated: the ledger ends at {count}, the witnessed head is {head[0]}"
        )
    return VerifyReport(records=count, device=device, head_seq=count, head_hash=prev)
