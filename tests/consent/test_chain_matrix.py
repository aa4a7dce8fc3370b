"""Every way to break a ledger, through both of its readers.

`audit verify` (an export) and ingest (bundle segments) walk the chain with
one function; each vector here must be refused by both at the same record and
for the same reason id, so that the two cannot drift apart again.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cleartrace.consent.ledger import EXPORT_TYPE, EXPORT_VERSION
from cleartrace.consent.records import GENESIS, make_record, record_hash, sign_record
from cleartrace.consent.verify import verify_export
from cleartrace.errors import LedgerBroken
from cleartrace.formats import b64url, canonical, key_fingerprint
from cleartrace.org.segments import Segment, assemble_ledger

Record = dict[str, Any]
Head = tuple[int, str]

KEY = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()
SESSION = secrets.token_hex(16)
POLICY = {"id": "acme-research", "version": 1, "sha256": "ab" * 32}
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
#: An honest ledger: consent, a session started, ended and deleted, a pause.
STEPS: list[tuple[str, dict[str, Any]]] = [
    ("consent.given", {"categories": ["keys"], "policy": POLICY}),
    ("session.started", {"session": SESSION}),
    ("session.ended", {"session": SESSION}),
    ("session.deleted", {"session": SESSION}),
    ("recording.paused", {"until": None}),
]


def record(
    seq: int,
    prev: str,
    kind: str,
    *,
    key: Ed25519PrivateKey = KEY,
    time: str | None = None,
    **fields: Any,
) -> Record:
    unsigned = make_record(
        seq=seq, prev=prev, kind=kind, fields=fields, now=T0 + timedelta(minutes=seq)
    )
    if time is not None:
        unsigned["time"] = time
    return sign_record(unsigned, key)


def after(
    records: list[Record], *tail: tuple[str, dict[str, Any]], key: Ed25519PrivateKey = KEY
) -> list[Record]:
    """`records` continued by `tail` (kind, fields), each signed by `key` (the device's)."""
    out = list(records)
    for kind, fields in tail:
        out.append(record(out[-1]["seq"] + 1, record_hash(out[-1]), kind, key=key, **fields))
    return out


HONEST = after([record(1, GENESIS, STEPS[0][0], **STEPS[0][1])], *STEPS[1:])


def head_of(base: Head, records: list[Record]) -> Head:
    return base if not records else (records[-1]["seq"], record_hash(records[-1]))


@dataclass(frozen=True)
class Vector:
    """The export's records in file order, the same records as ingest gets them
    (each bundle's base and segment), and the refusal both must report."""

    stream: list[Record]
    bundles: list[tuple[Head, list[Record]]]
    reason: str
    seq: int


def cut(stream: list[Record], at: int, reason: str, seq: int) -> Vector:
    """Two bundles: records before index `at`, then the rest on the one before."""
    base = (0, GENESIS) if at == 0 else (stream[at - 1]["seq"], record_hash(stream[at - 1]))
    return Vector(stream, [((0, GENESIS), stream[:at]), (base, stream[at:])], reason, seq)


def bad_signature() -> Vector:
    # Without the device's key, the forger signs what follows with its own too.
    forged = record(3, record_hash(HONEST[1]), "session.ended", key=OTHER, session=SESSION)
    stream = after([*HONEST[:2], forged], *STEPS[3:], key=OTHER)
    return cut(stream, 2, "ledger-bad-signature", 3)


def bad_last_signature() -> Vector:
    forged = record(5, record_hash(HONEST[3]), "recording.paused", key=OTHER, until=None)
    return cut([*HONEST[:4], forged], 2, "ledger-bad-signature", 5)


def vouched_bad_signature() -> Vector:
    """A record not signed by the device, which the device's key then signed on top
    of: what `Ledger.append` refuses to do (tests/consent/test_ledger.py)."""
    forged = record(3, record_hash(HONEST[1]), "session.ended", key=OTHER, session=SESSION)
    return cut(after([*HONEST[:2], forged], *STEPS[3:]), 2, "ledger-bad-signature", 3)


def gap() -> Vector:
    stream = [*HONEST[:2], *HONEST[3:]]
    lost = (3, record_hash(HONEST[2]))
    return Vector(stream, [((0, GENESIS), HONEST[:2]), (lost, HONEST[3:])], "ledger-gap", 3)


def reordered() -> Vector:
    return cut([*HONEST[:2], HONEST[3], HONEST[2], *HONEST[4:]], 2, "ledger-gap", 3)


def rewritten_prev() -> Vector:
    replaced = record(3, "1" * 64, "session.ended", session=SESSION)
    return cut(after([*HONEST[:2], replaced], *STEPS[3:]), 2, "ledger-rewritten", 3)


def fork() -> Vector:
    other = record(3, record_hash(HONEST[1]), "recording.paused", until=None)
    stream = [*HONEST[:3], other]
    bundles = [((0, GENESIS), HONEST[:3]), ((2, record_hash(HONEST[1])), [other])]
    return Vector(stream, bundles, "ledger-fork", 4)


def bad_format() -> Vector:
    malformed = record(
        3, record_hash(HONEST[1]), "session.ended", time="yesterday", session=SESSION
    )
    return cut(after([*HONEST[:2], malformed], *STEPS[3:]), 2, "ledger-bad-record", 3)


def act_after_deletion() -> Vector:
    # The deletion travels in the first bundle, the forged approval in the second.
    stream = after(HONEST, ("session.approved", {"session": SESSION, "by": "person"}))
    return cut(stream, 4, "ledger-after-deletion", 6)


def wrong_base() -> Vector:
    other = record(3, record_hash(HONEST[1]), "recording.paused", until=None)
    built_on_other = after([*HONEST[:2], other], STEPS[3])[3]
    stream = [*HONEST[:3], built_on_other]
    bundles = [((0, GENESIS), HONEST[:3]), ((3, record_hash(other)), [built_on_other])]
    return Vector(stream, bundles, "ledger-rewritten", 4)


VECTORS: list[Callable[[], Vector]] = [
    bad_signature,
    bad_last_signature,
    gap,
    reordered,
    rewritten_prev,
    fork,
    bad_format,
    act_after_deletion,
    wrong_base,
]


def export(records: list[Record]) -> list[str]:
    """The lines `Ledger.export` writes for `records` signed by KEY."""
    raw = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    header = {
        "v": EXPORT_VERSION,
        "type": EXPORT_TYPE,
        "device_public_key": b64url(raw),
        "device": key_fingerprint(raw),
    }
    return [canonical(r).decode("utf-8") for r in [header, *records]]


def by_verify(vector: Vector, every_signature: bool) -> LedgerBroken:
    with pytest.raises(LedgerBroken) as info:
        verify_export(export(vector.stream), every_signature=every_signature)
    return info.value


def by_ingest(vector: Vector, every_signature: bool) -> LedgerBroken:
    with pytest.raises(LedgerBroken) as info:
        assemble_ledger(KEY.public_key(), segments(vector), every_signature=every_signature)
    return info.value


def by_ingest_lines(vector: Vector, every_signature: bool) -> LedgerBroken:
    """Ingest as the fleet reads bundles: with each record's line as sealed."""
    with pytest.raises(LedgerBroken) as info:
        assemble_ledger(
            KEY.public_key(), segments(vector, lines=True), every_signature=every_signature
        )
    return info.value


def segments(vector: Vector, *, lines: bool = False) -> list[Segment]:
    return [
        Segment(
            f"{n:064x}",
            base,
            head_of(base, records),
            records,
            [canonical(r) for r in records] if lines else None,
        )
        for n, (base, records) in enumerate(vector.bundles)
    ]


@pytest.mark.parametrize("make", VECTORS, ids=[v.__name__ for v in VECTORS])
@pytest.mark.parametrize(
    "entry",
    [by_verify, by_ingest, by_ingest_lines],
    ids=["audit-verify", "ingest", "ingest-lines"],
)
@pytest.mark.parametrize("every_signature", [False, True], ids=["last-signature", "every"])
def test_both_readers_refuse_each_broken_ledger_at_the_same_record_for_the_same_reason(
    make: Callable[[], Vector],
    entry: Callable[[Vector, bool], LedgerBroken],
    every_signature: bool,
) -> None:
    vector = make()
    refused = entry(vector, every_signature)
    assert (refused.reason, refused.seq) == (vector.reason, vector.seq)


def test_a_record_the_device_signed_on_top_of_is_vouched_for_unless_every_signature_is_asked() -> (
    None
):
    """One rule for both readers: the last signature of a linked run commits the
    device to the records under it (consent/chain.py); a device never signs on
    top of a record it did not sign, and the full check still names the record."""
    vector = vouched_bad_signature()
    assert verify_export(export(vector.stream)).records == len(vector.stream)
    assert assemble_ledger(KEY.public_key(), segments(vector)).records == vector.stream
    for entry in (by_verify, by_ingest):
        refused = entry(vector, True)
        assert (refused.reason, refused.seq) == (vector.reason, vector.seq)


def test_the_honest_ledger_passes_both_readers_whole_and_in_overlapping_bundles() -> None:
    assert verify_export(export(HONEST)).records == len(HONEST)
    overlapping = [
        # Both hold the deletion: a record seen twice is not an act after itself.
        ("a" * 64, (0, GENESIS), head_of((0, GENESIS), HONEST[:4]), HONEST[:4]),
        ("b" * 64, (2, record_hash(HONEST[1])), head_of((0, GENESIS), HONEST), HONEST[2:]),
    ]
    assembled = assemble_ledger(KEY.public_key(), overlapping)
    assert assembled.records == HONEST
    # Each record once, as the bytes its hash is of: what the audit exports.
    assert assembled.lines == [canonical(r) for r in HONEST]


def test_lines_not_in_canonical_form_are_read_from_their_records() -> None:
    """A line is hashed as read only when it is the bytes the device hashed; any
    other spelling of an honest record is walked again from the record itself."""
    canonical_lines = [canonical(r) for r in HONEST]
    head = head_of((0, GENESIS), HONEST)
    for spelled in (
        [json.dumps(r, indent=1).encode() for r in HONEST],
        [*canonical_lines[:-1], json.dumps(HONEST[-1]).encode()],  # only the last, unlinked
    ):
        segment = Segment("a" * 64, (0, GENESIS), head, HONEST, spelled)
        assembled = assemble_ledger(KEY.public_key(), [segment])
        assert assembled.records == HONEST
        assert assembled.lines == canonical_lines
