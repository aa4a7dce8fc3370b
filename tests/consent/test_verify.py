"""Every tampering the officer must catch, each named at the first unproven record."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.consent.ledger import Ledger
from cleartrace.consent.policy import DEFAULT_POLICY
from cleartrace.consent.records import make_record, record_hash, sign_record
from cleartrace.consent.verify import parse_device, parse_head, verify_export
from cleartrace.errors import LedgerBroken, UsageError
from cleartrace.formats import canonical
from cleartrace.store.db import connect
from cleartrace.store.keys import device_fingerprint


@pytest.fixture
def export(ledger: Ledger, export_of: Callable[[Ledger], list[str]]) -> list[str]:
    """Header + records 1..6; lines[i] is record i."""
    ledger.append("consent.given", categories=["keys"], policy=DEFAULT_POLICY.reference())
    for i in range(2, 7):
        ledger.append("session.started", session=f"{i:032x}")
    return export_of(ledger)


def broken_at(lines: list[str], **kwargs: Any) -> LedgerBroken:
    with pytest.raises(LedgerBroken) as info:
        verify_export(lines, **kwargs)
    err = info.value
    assert "\n" not in str(err)
    assert str(err).startswith(f"ledger broken at record {err.seq}: ")
    return err


def resign(line: str, key: Ed25519PrivateKey, **changes: Any) -> str:
    record = {k: v for k, v in json.loads(line).items() if k != "sig"}
    return canonical(sign_record({**record, **changes}, key)).decode()


def test_untouched_export_verifies(export: list[str], device_key: Ed25519PrivateKey) -> None:
    fp = device_fingerprint(device_key.public_key())
    report = verify_export(export, expect_device=fp)
    assert (report.records, report.head_seq, report.device) == (6, 6, fp)
    assert report.head_hash == record_hash(json.loads(export[6]))
    assert report.as_dict()["head"] == f"6:{report.head_hash}"
    assert verify_export(export, head=parse_head(report.head)).records == 6


def test_an_export_read_from_a_file_with_crlf_and_a_trailing_blank_line_verifies(
    export: list[str],
) -> None:
    assert verify_export([line + "\r\n" for line in export] + ["\n"]).records == 6


def test_an_empty_ledger_verifies_with_zero_records(
    ledger: Ledger, export_of: Callable[[Ledger], list[str]]
) -> None:
    report = verify_export(export_of(ledger))
    assert (report.records, report.head_hash) == (0, "0" * 64)


def test_modified_field(export: list[str]) -> None:
    record = json.loads(export[3])
    record["session"] = "f" * 32
    export[3] = canonical(record).decode()
    err = broken_at(export)
    assert err.seq == 3
    assert "signature does not verify" in err.detail


def test_bad_signature(export: list[str]) -> None:
    record = json.loads(export[4])
    record["sig"] = ("B" if record["sig"][0] == "A" else "A") + record["sig"][1:]
    export[4] = canonical(record).decode()
    err = broken_at(export)
    assert err.seq == 4
    assert "signature" in err.detail


def test_deleted_record_names_the_missing_seq(export: list[str]) -> None:
    del export[2]
    err = broken_at(export)
    assert err.seq == 2
    assert "record 2 is missing" in err.detail


def test_deleted_last_record_is_invisible_without_a_head_but_caught_with_one(
    export: list[str],
) -> None:
    head = (6, record_hash(json.loads(export[6])))
    assert verify_export(export[:6]).records == 5
    err = broken_at(export[:6], head=head)
    assert err.seq == 6
    assert "truncated" in err.detail


def test_two_records_swapped(export: list[str]) -> None:
    export[2], export[3] = export[3], export[2]
    err = broken_at(export)
    assert err.seq == 2
    assert "out of order" in err.detail


def test_a_swap_is_told_from_a_deletion_even_with_an_unreadable_line_between(
    export: list[str],
) -> None:
    # Header, 1, 3, garbage, 2: record 2 is not missing, it comes after record 3.
    export[2], export[3] = export[3], export[2]
    export.insert(3, "not a record")
    err = broken_at(export)
    assert err.seq == 2
    assert "out of order: record 3 comes before record 2" in err.detail


def test_duplicated_record(export: list[str]) -> None:
    export.insert(4, export[3])
    err = broken_at(export)
    assert err.seq == 4
    assert "record 3 appears again" in err.detail
    assert "duplicated" in err.detail


def test_an_earlier_record_replayed_later(export: list[str]) -> None:
    export.insert(5, export[1])
    err = broken_at(export)
    assert err.seq == 5
    assert "duplicated" in err.detail


def test_a_fork_signed_by_the_device_itself_breaks_the_chain(
    export: list[str], device_key: Ed25519PrivateKey
) -> None:
    # The device (or someone holding its key) rewrote record 3: record 4 still
    # points at the old one.
    export[3] = resign(export[3], device_key, session="e" * 32)
    err = broken_at(export)
    assert err.seq == 4
    assert "hash chain broken" in err.detail


def test_a_second_different_record_with_the_same_seq(
    export: list[str], device_key: Ed25519PrivateKey
) -> None:
    export.insert(4, resign(export[3], device_key, session="e" * 32))
    err = broken_at(export)
    assert err.seq == 4
    assert "a second, different record 3" in err.detail


def test_foreign_device_key_in_header(export: list[str]) -> None:
    other = device_fingerprint(Ed25519PrivateKey.generate().public_key())
    err = broken_at(export, expect_device=other)
    assert err.seq == 0
    assert "foreign device key" in err.detail


def test_expected_device_may_be_written_in_upper_case(
    export: list[str], device_key: Ed25519PrivateKey
) -> None:
    fp = device_fingerprint(device_key.public_key())
    assert verify_export(export, expect_device="sha256:" + fp[7:].upper()).records == 6


def test_header_swapped_for_another_key(export: list[str], tmp_path: Path) -> None:
    intruder = Ledger(connect(tmp_path / "i.db"), tmp_path / "i.db", Ed25519PrivateKey.generate())
    try:
        export[0] = intruder.export_lines()[0]
    finally:
        intruder.close()
    err = broken_at(export)
    assert err.seq == 1
    assert "another key" in err.detail


def test_record_signed_by_a_foreign_key_with_a_correct_chain(export: list[str]) -> None:
    export[5] = resign(export[5], Ed25519PrivateKey.generate())
    err = broken_at(export)
    assert err.seq == 5
    assert "another key" in err.detail


def test_whole_ledger_re_signed_by_a_foreign_key_needs_the_expected_device(
    device_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    forged = Ledger(connect(tmp_path / "f.db"), tmp_path / "f.db", Ed25519PrivateKey.generate())
    try:
        forged.append("consent.given", categories=["keys"], policy=DEFAULT_POLICY.reference())
        lines = forged.export_lines()
    finally:
        forged.close()
    assert verify_export(lines).records == 1  # internally consistent
    err = broken_at(lines, expect_device=device_fingerprint(device_key.public_key()))
    assert (err.seq, "foreign device key" in err.detail) == (0, True)


def test_truncated_tail_against_a_witnessed_head(export: list[str]) -> None:
    head = (6, record_hash(json.loads(export[6])))
    err = broken_at(export[:4], head=head)
    assert err.seq == 4
    assert "ends at record 3, but record 6 was witnessed" in err.detail


def test_rewritten_ledger_differs_from_the_witnessed_head(
    export: list[str], device_key: Ed25519PrivateKey
) -> None:
    witnessed = (3, record_hash(json.loads(export[3])))
    # Rewritten from record 3 on, consistently and with the real key.
    prev = record_hash(json.loads(export[2]))
    for seq in range(3, 7):
        unsigned = make_record(
            seq=seq, prev=prev, kind="session.deleted", fields={"session": f"{seq:032x}"}
        )
        export[seq] = canonical(sign_record(unsigned, device_key)).decode()
        prev = record_hash(json.loads(export[seq]))
    assert verify_export(export).records == 6
    err = broken_at(export, head=witnessed)
    assert err.seq == 3
    assert "witnessed head" in err.detail


@pytest.mark.parametrize(
    "first",
    [
        "",
        "not json",
        '{"v": 1, "type": "something-else"}',
        '{"v": 2, "type": "cleartrace-ledger"}',
        '{"v": 1, "type": "cleartrace-ledger", "device_public_key": "AAAA", "device": "x"}',
    ],
)
def test_missing_or_bad_header_is_broken_at_zero(first: str, export: list[str]) -> None:
    assert broken_at([first, *export[1:]]).seq == 0


def test_header_fingerprint_must_match_its_key(export: list[str]) -> None:
    header = json.loads(export[0])
    header["device"] = "sha256:" + "0" * 64
    err = broken_at([json.dumps(header), *export[1:]])
    assert (err.seq, "does not match its public key" in err.detail) == (0, True)


def test_empty_file_is_broken_at_zero() -> None:
    assert "empty" in broken_at([]).detail


@pytest.mark.parametrize(
    "line",
    [
        "{broken",
        "[1, 2]",
        '{"seq": "2"}',
        '{"seq": true}',
        '{"seq": 2, "seq": 2}',
        '{"seq": 2, "x": NaN}',
    ],
)
def test_garbage_record_line(export: list[str], line: str) -> None:
    export[2] = line
    err = broken_at(export)
    assert err.seq == 2
    assert "line 3 is not a JSON record" in err.detail


def test_duplicate_keys_are_refused_even_when_the_last_value_verifies(export: list[str]) -> None:
    # Parsers disagree on which duplicate wins: an officer's tool could show "f…f".
    export[3] = export[3].replace('"session":', '"session":"' + "f" * 32 + '","session":', 1)
    assert broken_at(export).seq == 3


def test_whitespace_that_json_ignores_is_tolerated(export: list[str]) -> None:
    export[3] = json.dumps(json.loads(export[3]), indent=1).replace("\n", " ")
    assert verify_export(export).records == 6


def test_a_signed_record_that_carries_content_breaks_format_v1(
    export: list[str], device_key: Ed25519PrivateKey
) -> None:
    # A buggy device build signs a title into a record: the chain is fine, the format is not.
    export[6] = resign(export[6], device_key, title="Inbox")
    err = broken_at(export)
    assert err.seq == 6
    assert "breaks format v1" in err.detail
    assert "Inbox" not in str(err)


def test_a_kind_from_a_newer_version_verifies_and_is_reported(
    export: list[str], device_key: Ed25519PrivateKey
) -> None:
    last = json.loads(export[6])
    newer = {
        "v": 1,
        "seq": 7,
        "time": "2026-11-24T09:00:00.000Z",
        "kind": "audit.reported",
        "prev": record_hash(last),
        "report": "c" * 64,
    }
    export.append(canonical(sign_record(newer, device_key)).decode())
    report = verify_export(export)
    assert (report.records, report.unknown_kinds) == (7, ("audit.reported",))


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("time", "2026-11-24 09:00:00", "UTC time"),
        ("kind", "Not A Kind", "area.event"),
        ("v", 2, "not v1"),
    ],
)
def test_a_signed_record_with_a_bad_envelope_is_broken(
    export: list[str], device_key: Ed25519PrivateKey, field: str, value: Any, reason: str
) -> None:
    export[2] = resign(export[2], device_key, **{field: value})
    export[3] = resign(export[3], device_key, prev=record_hash(json.loads(export[2])))
    err = broken_at(export)
    assert err.seq == 2
    assert reason in err.detail


@pytest.mark.parametrize("text", ["5", "x:" + "a" * 64, "5:abc", "0:" + "a" * 64, "٣:" + "a" * 64])
def test_bad_head_argument(text: str) -> None:
    with pytest.raises(UsageError, match="SEQ:HASH"):
        parse_head(text)


def test_head_argument_is_parsed_and_lower_cased() -> None:
    assert parse_head(" 12:" + "AB" * 32 + "\n") == (12, "ab" * 32)


@pytest.mark.parametrize("text", ["abc", "sha256:abc", "md5:" + "a" * 64])
def test_bad_expected_device_is_a_usage_error(export: list[str], text: str) -> None:
    with pytest.raises(UsageError, match="sha256:<64 hex digits>"):
        verify_export(export, expect_device=text)
    with pytest.raises(UsageError):
        parse_device(text)


SESSION = "5e" * 16
ACTS_ON_A_SESSION: list[tuple[str, dict[str, Any]]] = [
    ("session.approved", {"by": "person"}),
    ("session.approved", {"by": "hold_period"}),
    ("session.held", {}),
    (
        "session.redacted",
        {
            "method": "match",
            "events": 2,
            "categories": ["keys"],
            "interval": {"start": "2026-11-24T09:00:00Z", "end": "2026-11-24T09:00:01Z"},
        },
    ),
    ("session.deleted", {}),
    ("session.shredded", {}),
    ("session.ended", {}),
    ("session.started", {}),
]


@pytest.mark.parametrize("gone", ["session.deleted", "session.shredded"])
@pytest.mark.parametrize(("kind", "fields"), ACTS_ON_A_SESSION)
def test_an_act_on_a_session_after_it_was_deleted_breaks_the_ledger(
    ledger: Ledger,
    export_of: Callable[[Ledger], list[str]],
    gone: str,
    kind: str,
    fields: dict[str, Any],
) -> None:
    # Signed by the device itself, chain intact: only the order is impossible.
    ledger.append("session.started", session=SESSION)
    ledger.append(gone, session=SESSION)
    ledger.append(kind, session=SESSION, **fields)
    err = broken_at(export_of(ledger))
    assert err.seq == 3
    assert "was deleted at record 2" in err.detail or "was removed at record 2" in err.detail


def test_acts_on_other_sessions_after_a_deletion_verify(
    ledger: Ledger, export_of: Callable[[Ledger], list[str]]
) -> None:
    ledger.append("session.deleted", session=SESSION)
    ledger.append("session.approved", session="ab" * 16, by="person")
    ledger.append("session.deleted", session="ab" * 16)
    assert verify_export(export_of(ledger)).records == 3


def test_the_report_says_whether_a_witnessed_head_anchors_the_tail(export: list[str]) -> None:
    loose = verify_export(export[:6])
    assert loose.anchored is False
    assert loose.as_dict()["anchored"] is False
    head = (6, record_hash(json.loads(export[6])))
    assert verify_export(export, head=head).anchored is True


def test_a_ledger_written_before_app_tags_still_verifies(
    export: list[str], device_key: Ed25519PrivateKey
) -> None:
    # exclusion.added / removed carried the name; a new Ledger no longer writes them.
    prev = record_hash(json.loads(export[6]))
    for seq, (kind, fields) in enumerate(
        [("exclusion.added", {"app": "slack"}), ("app.included", {"app_tag": "a5" * 32})], 7
    ):
        record = sign_record(make_record(seq=seq, prev=prev, kind=kind, fields=fields), device_key)
        export.append(canonical(record).decode())
        prev = record_hash(record)
    report = verify_export(export)
    assert (report.records, report.unknown_kinds) == (8, ())
