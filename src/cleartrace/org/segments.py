"""A device's ledger rebuilt from the segments its bundles carry.

Each bundle holds the records from the one it builds on (its base) to its
head. Ordered by base, the segments must continue one another: no records
missing between them, the base a record already seen with the same hash,
overlapping records identical. Each segment is walked with the checks
`audit verify` runs (consent/chain.py), so a ledger ingest accepts is one an
officer's verifier accepts too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cleartrace.consent.chain import BAD_RECORD, FORK, GAP, REWRITTEN, RemovedSessions, walk
from cleartrace.consent.records import GENESIS
from cleartrace.errors import LedgerBroken

__all__ = ["Assembled", "Segment", "assemble_ledger"]


class Segment(NamedTuple):
    """One bundle's part of a device's ledger: the records after `base` up to `head`
    ((seq, hash) each), and, as read from the bundle, each record's line."""

    name: str
    base: tuple[int, str]
    head: tuple[int, str]
    records: Sequence[Mapping[str, Any]]
    lines: Sequence[bytes] | None = None


class Assembled(NamedTuple):
    """A device's rebuilt ledger: its records and each one's canonical bytes (those
    its hash is of, and what `cleartrace ledger export` writes a line of)."""

    records: list[dict[str, Any]]
    lines: list[bytes]


class _Fork(Exception):
    """A segment's record `seq` differs from the one an earlier segment held."""

    def __init__(self, seq: int) -> None:
        super().__init__(seq)
        self.seq = seq


def assemble_ledger(
    key: Ed25519PublicKey,
    segments: Sequence[Segment],
    *,
    every_signature: bool = False,
) -> Assembled:
    """Rebuild a device's ledger from its bundles' segments, ordered by base then
    head. Each segment is walked from its base with the checks `audit verify`
    runs (consent/chain.py), its lines hashed as read when it has them;
    overlapping segments must hold the same records. Each segment's last
    signature vouches for the rest (consent/chain.py, "One signature per run"),
    or with `every_signature` each record's own.

    Raises:
        LedgerBroken: a gap, a fork, a rewritten, badly signed or malformed
            record, an act on a deleted session, or a segment that does not
            match its bundle's header; `seq` is the first record not proven.
    """
    records: list[dict[str, Any]] = []
    hashes: list[str] = []
    removed = RemovedSessions()
    lines: list[bytes] = []
    for name, base, (head_seq, head_hash), segment, given in (Segment(*s) for s in segments):
        short = name[:16]
        base_seq = base[0]
        if base_seq > len(records):
            raise LedgerBroken(
                len(records) + 1,
                f"records {len(records) + 1}..{base_seq} are in no bundle (bundle {short} "
                "builds on them)",
                GAP,
            )
        if base[1] != (GENESIS if base_seq == 0 else hashes[base_seq - 1]):
            raise LedgerBroken(
                base_seq + 1,
                f"bundle {short} builds on another record {base_seq} than the earlier bundles "
                "(the ledger was rewritten)",
                REWRITTEN,
            )
        if len(segment) != head_seq - base_seq:
            raise LedgerBroken(
                base_seq + 1,
                f"bundle {short} holds {len(segment)} records, its header says "
                f"{head_seq - base_seq}",
                BAD_RECORD,
            )

        def join(seq: int, record: Mapping[str, Any], digest: str) -> None:
            if seq > len(records):
                records.append(cast(dict[str, Any], record))  # the segment's own dicts
                hashes.append(digest)
            elif hashes[seq - 1] != digest:
                raise _Fork(seq)

        encoded: list[bytes] = []
        before = len(records)
        # Continuing the records so far exactly (no overlap), every record is new.
        follows = base_seq == before
        try:
            digests = walk(
                segment,
                key,
                base=base,
                removed=removed,
                each=None if follows else join,
                every_signature=every_signature,
                encoded=encoded,
                lines=given,
            )
        except _Fork as fork:
            raise LedgerBroken(
                len(records) + 1, f"bundle {short} holds another record {fork.seq} (a fork)", FORK
            ) from None
        except LedgerBroken as exc:
            raise LedgerBroken(exc.seq, f"bundle {short}: {exc.detail}", exc.reason) from None
        if (digests[-1] if digests else base[1]) != head_hash:
            raise LedgerBroken(
                head_seq, f"bundle {short}: its header's head is not its last record", BAD_RECORD
            )
        if follows:
            records.extend(cast(Sequence[dict[str, Any]], segment))
            hashes.extend(digests)
        lines += encoded[before - base_seq :]
    return Assembled(records, lines)
