"""Every tampering the officer must catch, each named at the first bad record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.consent.ledger import Ledger
from cleartrace.consent.policy import DEFAULT_POLICY
from cleartrace.consent.records import canonical, make_record, record_hash
from cleartrace.consent.verify import parse_head, verify_export
from cleartrace.errors import LedgerBroken, UsageError
from cleartrace.store.keys import device_fingerprint


@pytest.fixture
def export(ledger: Ledger, tmp_path: Path) -> list[str]:
    ledger.append("consent.given", categories=["keys"], policy=DEFAULT_POLICY.reference())
    for i in range(2, 7):
        ledger.append("session.started", session=f"{i:032x}")
    out = tmp_path / "ledger.jsonl"
    ledger.export(out)
    return out.read_text().splitlines()


def broken_at(lines: list[str], **kwargs: object) -> LedgerBroken:
    with pytest.raises(LedgerBroken) as info:
        verify_export(lines, **kwargs)  # type: ignore[arg-type]
    return info.value


def test_untouched_export_verifies(export: list[str], device_key: Ed25519PrivateKey) -> None:
    fp = device_fingerprint(device_key.public_key())
    report = verify_export(export, expect_device=fp)
    assert report.records == 6
    assert report.device == fp
    assert report.head_hash == record_hash(json.loads(export[-1]))


def test_modified_field(export: list[str]) -> None:
    record = json.loads(export[3])
    record["session"] = "f" * 32
    export[3] = json.dumps(record)
    assert broken_at(export).seq == 3


def test_bad_signature(export: list[str]) -> None:
    record = json.loads(export[4])
    record["sig"] = record["sig"][:-4] + ("AAAA" if not record["sig"].endswith("AAAA") else "BBBB")
    export[4] = json.dumps(record)
    err = broken_at(export)
    assert err.seq == 4
    assert "signature" in err.reason


def test_deleted_record(export: list[str]) -> None:
    del export[2]
    err = broken_at(export)
    assert err.seq == 2
    assert "missing" in err.reason


def test_two_records_swapped(export: list[str]) -> None:
    export[2], export[3] = export[3], export[2]
    assert broken_at(export).seq == 2


def test_duplicated_record(export: list[str]) -> None:
    export.insert(4, export[3])
    err = broken_at(export)
    assert err.seq == 4
    assert "duplicated" in err.reason


def test_foreign_device_key_in_header(export: list[str]) -> None:
    other = device_fingerprint(Ed25519PrivateKey.generate().public_key())
    err = broken_at(export, expect_device=other)
    assert err.seq == 0
    assert "foreign device key" in err.reason


def test_record_signed_by_a_foreign_key_with_a_correct_chain(export: list[str]) -> None:
    intruder = Ed25519PrivateKey.generate()
    prev = record_hash(json.loads(export[4]))
    forged = make_record(
        intruder, seq=5, prev=prev, kind="session.deleted", fields={"session": "0" * 32}
    )
    export[5] = canonical(forged).decode()
    assert broken_at(export).seq == 5


def test_whole_ledger_re_signed_by_a_foreign_key_needs_the_expected_device(
    export: list[str], device_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    from cleartrace.store.db import connect

    intruder = Ed25519PrivateKey.generate()
    forged = Ledger(connect(tmp_path / "forged.db"), tmp_path / "forged.db", intruder)
    forged.append("consent.given", categories=["keys"], policy=DEFAULT_POLICY.reference())
    forged.export(tmp_path / "forged.jsonl")
    forged.close()
    lines = (tmp_path / "forged.jsonl").read_text().splitlines()
    verify_export(lines)  # internally consistent
    err = broken_at(lines, expect_device=device_fingerprint(device_key.public_key()))
    assert "foreign device key" in err.reason


def test_truncated_tail_against_a_witnessed_head(export: list[str]) -> None:
    head = (6, record_hash(json.loads(export[6])))
    verify_export(export, head=head)
    err = broken_at(export[:5], head=head)
    assert err.seq == 5
    assert "truncated" in err.reason


def test_rewritten_ledger_differs_from_the_witnessed_head(export: list[str]) -> None:
    head = (3, "ab" * 32)
    err = broken_at(export, head=head)
    assert err.seq == 3
    assert "witnessed head" in err.reason


@pytest.mark.parametrize("first", ["", "not json", '{"v": 1, "type": "something-else"}'])
def test_missing_header(first: str, export: list[str]) -> None:
    assert broken_at([first, *export[1:]]).seq == 0


def test_garbage_record_line(export: list[str]) -> None:
    export[2] = "{broken"
    assert broken_at(export).seq == 2


@pytest.mark.parametrize("text", ["5", "x:" + "a" * 64, "5:abc", "0:" + "a" * 64])
def test_bad_head_argument(text: str) -> None:
    with pytest.raises(UsageError):
        parse_head(text)
