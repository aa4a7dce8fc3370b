from __future__ import annotations

import stat
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from cleartrace.consent.ledger import Ledger
from cleartrace.consent.records import GENESIS, KIND_FIELDS, canonical, make_record
from cleartrace.consent.verify import verify_export
from cleartrace.paths import Paths
from cleartrace.store.db import connect


def test_records_chain_from_genesis(ledger: Ledger) -> None:
    first = ledger.append("session.started", session="a" * 32)
    second = ledger.append("session.ended", session="a" * 32)
    assert (first["seq"], first["prev"]) == (1, GENESIS)
    head = ledger.head()
    assert head is not None
    assert second["seq"] == 2
    assert head[0] == 2
    assert ledger.records() == [first, second]


def test_two_writers_at_once_never_fork_the_chain(
    private_home: Paths, device_key: Ed25519PrivateKey, ledger: Ledger, tmp_path: Path
) -> None:
    def writer(n: int) -> None:
        own = Ledger(connect(private_home.db), private_home.db, device_key)
        try:
            for i in range(50):
                own.append("session.started", session=f"{n:016x}{i:016x}")
        finally:
            own.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r["seq"] for r in ledger.records()] == list(range(1, 101))
    ledger.export(tmp_path / "out.jsonl")
    assert verify_export((tmp_path / "out.jsonl").read_text().splitlines()).records == 100


def test_export_is_private_and_starts_with_the_device_key(ledger: Ledger, tmp_path: Path) -> None:
    ledger.append("recording.paused", until=None)
    out = tmp_path / "ledger.jsonl"
    ledger.export(out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert '"type":"cleartrace-ledger"' in out.read_text().splitlines()[0]


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("session.started", {"text": "typed words"}),
        ("consent.given", {"title": "x"}),
        ("keys.typed", {}),
    ],
)
def test_records_refuse_fields_that_could_carry_content(kind: str, fields: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"may not carry|unknown"):
        make_record(Ed25519PrivateKey.generate(), seq=1, prev=GENESIS, kind=kind, fields=fields)


def test_every_kind_lists_only_non_content_fields() -> None:
    allowed = {"categories", "policy", "until", "reason", "app", "session"}
    assert set().union(*KIND_FIELDS.values()) <= allowed


SAFE_INT = st.integers(-(2**53) + 1, 2**53 - 1)  # I-JSON, which RFC 8785 requires


@given(st.dictionaries(st.text(max_size=8), SAFE_INT | st.text(max_size=8), max_size=8))
def test_canonical_bytes_do_not_depend_on_key_order(obj: dict[str, object]) -> None:
    reordered = dict(reversed(list(obj.items())))
    assert canonical(obj) == canonical(reordered)


def test_record_time_is_utc_with_milliseconds() -> None:
    when = datetime(2026, 11, 24, 9, 14, 3, 120000, tzinfo=UTC)
    record = make_record(
        Ed25519PrivateKey.generate(),
        seq=1,
        prev=GENESIS,
        kind="session.started",
        fields={"session": "a" * 32},
        now=when,
    )
    assert record["time"] == "2026-11-24T09:14:03.120Z"
