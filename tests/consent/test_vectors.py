"""Known-answer vectors in tests/vectors/ledger/ (written by generate.py there).

The library must reproduce them byte for byte: a change here means the format
changed, which needs a new `v` and an ADR update, not new vectors.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.consent.exclusions import app_tag
from cleartrace.consent.ledger import Ledger
from cleartrace.consent.records import (
    GENESIS,
    check_signature,
    make_record,
    record_hash,
    sign_record,
)
from cleartrace.consent.verify import parse_head, verify_export
from cleartrace.errors import LedgerBroken
from cleartrace.formats import canonical
from cleartrace.store.db import connect
from tests.support import VECTORS

VECTORS = VECTORS / "ledger"
VECTOR: dict[str, Any] = json.loads((VECTORS / "v1.json").read_text(encoding="utf-8"))
NEGATIVE: list[dict[str, Any]] = json.loads((VECTORS / "negative.json").read_text(encoding="utf-8"))


def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(VECTOR["device_seed"]))


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_records_reproduce_unsigned_bytes_signatures_canonical_bytes_and_hashes() -> None:
    prev = GENESIS
    for expected in VECTOR["records"]:
        unsigned = make_record(
            seq=expected["seq"],
            prev=prev,
            kind=expected["kind"],
            fields=expected["fields"],
            now=when(expected["time"]),
        )
        assert canonical(unsigned).decode() == expected["unsigned"]
        record = sign_record(unsigned, key())
        assert record["sig"] == expected["sig"]
        assert canonical(record).decode() == expected["canonical"]
        assert record_hash(record) == expected["hash"]
        check_signature(record, key().public_key())
        prev = expected["hash"]
    assert VECTOR["head"] == f"{len(VECTOR['records'])}:{prev}"


def test_ledger_export_reproduces_the_export_file(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    ledger = Ledger(connect(db), db, key())
    try:
        for r in VECTOR["records"]:
            ledger.append(r["kind"], now=when(r["time"]), **r["fields"])
        ledger.export(tmp_path / "out.jsonl")
    finally:
        ledger.close()
    expected = (VECTORS / "export.jsonl").read_bytes()
    assert (tmp_path / "out.jsonl").read_bytes() == expected


def test_the_export_file_verifies_against_its_head() -> None:
    with (VECTORS / "export.jsonl").open(encoding="utf-8") as fh:
        report = verify_export(fh, head=parse_head(VECTOR["head"]))
    assert report.head == VECTOR["head"]
    assert (
        json.loads((VECTORS / "export.jsonl").read_text().splitlines()[0])["device_public_key"]
        == VECTOR["device_public_key"]
    )


@pytest.mark.parametrize("case", NEGATIVE, ids=[c["file"] for c in NEGATIVE])
def test_each_negative_vector_fails_at_its_sequence_number(case: dict[str, Any]) -> None:
    head = None if case["head"] is None else parse_head(case["head"])
    with (VECTORS / case["file"]).open(encoding="utf-8") as fh, pytest.raises(LedgerBroken) as info:
        verify_export(fh, head=head, expect_device=case["expect_device"])
    assert info.value.seq == case["seq"]


def test_every_negative_file_is_listed() -> None:
    assert {p.name for p in VECTORS.glob("bad-*.jsonl")} == {c["file"] for c in NEGATIVE}


APP_TAGS: dict[str, Any] = json.loads((VECTORS / "app-tags.json").read_text(encoding="utf-8"))


def test_app_tags_and_their_record_reproduce_and_extend_the_export() -> None:
    key_bytes = bytes.fromhex(APP_TAGS["exclusions_key"])
    for entry in APP_TAGS["tags"]:
        assert app_tag(key_bytes, entry["name"]) == entry["tag"]
    expected = APP_TAGS["record"]
    unsigned = make_record(
        seq=4,
        prev=VECTOR["head"].split(":")[1],
        kind="app.excluded",
        fields={"app_tag": APP_TAGS["tags"][0]["tag"]},
        now=when(expected["time"]),
    )
    assert canonical(unsigned).decode() == expected["unsigned"]
    record = sign_record(unsigned, key())
    assert canonical(record).decode() == expected["canonical"]
    assert record_hash(record) == expected["hash"]
    lines = (VECTORS / "export.jsonl").read_text(encoding="utf-8").splitlines()
    report = verify_export([*lines, expected["canonical"]])
    assert report.head == f"4:{expected['hash']}"
    assert not any(entry["name"] in expected["canonical"] for entry in APP_TAGS["tags"])
