"""The ledger table: chain, atomic appends with other changes, concurrency, export."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from cleartrace.consent.ledger import Ledger
from cleartrace.consent.records import GENESIS, check_signature, record_hash
from cleartrace.consent.verify import verify_export
from cleartrace.errors import LedgerBroken, UsageError
from cleartrace.formats import canonical, unb64url
from cleartrace.paths import Paths
from cleartrace.store.db import transaction
from cleartrace.store.keys import device_fingerprint

SESSION = "a" * 32
POLICY = {"id": "acme-research", "version": 1, "sha256": "ab" * 32}


def test_records_chain_from_genesis_and_are_signed(
    ledger: Ledger, device_key: Ed25519PrivateKey
) -> None:
    first = ledger.append("session.started", session=SESSION)
    second = ledger.append("session.ended", session=SESSION)
    assert (first["seq"], first["prev"]) == (1, GENESIS)
    assert (second["seq"], second["prev"]) == (2, record_hash(first))
    assert ledger.head() == (2, record_hash(second))
    assert ledger.records() == [first, second]
    for record in ledger.records():
        check_signature(record, device_key.public_key())


def test_an_empty_ledger_has_no_head(ledger: Ledger) -> None:
    assert ledger.head() is None
    assert ledger.records() == []


def test_rows_hold_the_canonical_record_and_its_hash(ledger: Ledger) -> None:
    record = ledger.append("recording.paused", until=None)
    row = ledger.conn.execute("SELECT seq, hash, record FROM ledger").fetchone()
    assert row == (1, record_hash(record), canonical(record).decode())


def test_append_takes_a_fixed_time_for_known_answers(ledger: Ledger) -> None:
    when = datetime(2026, 11, 24, 9, 0, 0, 7000, tzinfo=UTC)
    assert ledger.append("recording.resumed", reason="person", now=when)["time"] == (
        "2026-11-24T09:00:00.007Z"
    )


def _forge_last(ledger: Ledger, **changes: Any) -> None:
    """What someone who can write the store but has no device key can do: rewrite
    the newest record and its hash column so the chain still links to it."""
    seq, text = ledger.conn.execute(
        "SELECT seq, record FROM ledger ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    forged = {**json.loads(text), **changes}
    ledger.conn.execute(
        "UPDATE ledger SET record=?, hash=? WHERE seq=?",
        (canonical(forged).decode(), record_hash(forged), seq),
    )
    ledger.conn.commit()


@pytest.mark.parametrize(
    "changes",
    [{"categories": ["keys", "clicks"]}, {"sig": "A" * 86}],
    ids=["content-rewritten", "signature-replaced"],
)
def test_the_device_never_signs_on_top_of_a_record_it_did_not_sign(
    ledger: Ledger, changes: dict[str, Any]
) -> None:
    """A forged newest record would otherwise be vouched for by the device's next
    signature, which covers its hash (consent/chain.py, one signature per segment)."""
    ledger.append("consent.given", categories=["keys"], policy=POLICY)
    _forge_last(ledger, **changes)
    with pytest.raises(LedgerBroken) as info:
        ledger.append("recording.paused", until=None)
    assert info.value.seq == 1
    assert "will not add records" in str(info.value)
    assert [r["seq"] for r in ledger.records()] == [1]


def test_the_device_never_signs_on_top_of_a_record_whose_hash_column_lies(
    ledger: Ledger,
) -> None:
    ledger.append("recording.paused", until=None)
    ledger.conn.execute("UPDATE ledger SET hash=? WHERE seq=1", ("1" * 64,))
    ledger.conn.commit()
    with pytest.raises(LedgerBroken):
        ledger.append("recording.resumed", reason="person")


def test_the_device_never_signs_on_top_of_an_older_record_put_in_the_newest_row(
    ledger: Ledger,
) -> None:
    """Record 1 is the device's own, its signature good: copied with its hash over
    record 2, it would have record 3 name record 1 as the one before it."""
    ledger.append("recording.paused", until=None)
    ledger.append("recording.resumed", reason="person")
    first = ledger.conn.execute("SELECT hash, record FROM ledger WHERE seq=1").fetchone()
    ledger.conn.execute("UPDATE ledger SET hash=?, record=? WHERE seq=2", first)
    ledger.conn.commit()
    with pytest.raises(LedgerBroken):
        ledger.append("recording.paused", until=None)
    assert [r["seq"] for r in ledger.records()] == [1, 1]


TAG = "a5" * 32


def test_a_change_and_its_record_commit_together(ledger: Ledger) -> None:
    with transaction(ledger.conn, ledger.path) as conn:
        conn.execute("INSERT INTO excluded_apps(tag, sealed) VALUES (?, x'00')", (TAG,))
        ledger.append_in(conn, "app.excluded", app_tag=TAG)
    assert ledger.conn.execute("SELECT tag FROM excluded_apps").fetchall() == [(TAG,)]
    assert [r["kind"] for r in ledger.records()] == ["app.excluded"]


def _add_slack(ledger: Ledger, *, fail: bool, **extra: Any) -> None:
    with transaction(ledger.conn, ledger.path) as conn:
        conn.execute("INSERT INTO excluded_apps(tag, sealed) VALUES (?, x'00')", (TAG,))
        ledger.append_in(conn, "app.excluded", app_tag=TAG, **extra)
        if fail:
            raise RuntimeError("the change after the record failed")


def test_a_failed_change_leaves_no_record_and_a_failed_record_no_change(ledger: Ledger) -> None:
    with pytest.raises(RuntimeError):
        _add_slack(ledger, fail=True)
    with pytest.raises(ValueError, match="may not carry"):
        _add_slack(ledger, fail=False, title="leak")
    assert ledger.conn.execute("SELECT count(*) FROM excluded_apps").fetchone() == (0,)
    assert ledger.records() == []


def test_append_in_refuses_to_run_outside_a_transaction(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="open transaction"):
        ledger.append_in(ledger.conn, "session.started", session=SESSION)
    assert ledger.records() == []


def test_append_in_works_on_another_connection_to_the_same_store(
    ledger: Ledger, open_ledger: Callable[[], Ledger]
) -> None:
    other = open_ledger()  # e.g. the session store's connection
    ledger.append("session.started", session=SESSION)
    with transaction(other.conn, other.path) as conn:
        ledger.append_in(conn, "session.deleted", session=SESSION)
    assert [r["seq"] for r in ledger.records()] == [1, 2]


def test_two_threads_appending_at_once_never_fork_the_chain(
    ledger: Ledger, open_ledger: Callable[[], Ledger], export_of: Callable[[Ledger], list[str]]
) -> None:
    writers = [open_ledger(), open_ledger()]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            start.wait()
            for i in range(50):
                writers[n].append("session.started", session=f"{n:016x}{i:016x}")
        except BaseException as exc:  # surfaced below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert [r["seq"] for r in ledger.records()] == list(range(1, 101))
    assert verify_export(export_of(ledger)).records == 100


_WRITER = """
import sys
from pathlib import Path
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cleartrace.consent.ledger import Ledger
from cleartrace.store.db import connect
db, seed, n = Path(sys.argv[1]), bytes.fromhex(sys.argv[2]), int(sys.argv[3])
ledger = Ledger(connect(db), db, Ed25519PrivateKey.from_private_bytes(seed))
sys.stdin.readline()  # both processes start appending together
for i in range(50):
    ledger.append("session.started", session=f"{n:016x}{i:016x}")
ledger.close()
"""


def test_two_processes_appending_at_once_never_fork_the_chain(
    private_home: Paths,
    ledger: Ledger,
    device_key: Ed25519PrivateKey,
    export_of: Callable[[Ledger], list[str]],
) -> None:
    seed = device_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(private_home.db), seed, str(n)],
            stdin=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.close()
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    records = ledger.records()
    assert [r["seq"] for r in records] == list(range(1, 101))
    assert {r["session"][:16] for r in records} == {f"{0:016x}", f"{1:016x}"}
    assert verify_export(export_of(ledger)).records == 100


def test_export_is_private_and_starts_with_the_device_key(
    ledger: Ledger, device_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    ledger.append("recording.paused", until=None)
    ledger.append("recording.resumed", reason="person")
    out = tmp_path / "exports" / "ledger.jsonl"
    out.parent.mkdir()
    ledger.export(out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    lines = out.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["type"] == "cleartrace-ledger"
    assert header["v"] == 1
    assert header["device"] == device_fingerprint(device_key.public_key()) == ledger.device
    raw = unb64url(header["device_public_key"])
    assert raw == device_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert lines[1:] == [canonical(r).decode() for r in ledger.records()]
    assert [p.name for p in out.parent.iterdir()] == ["ledger.jsonl"]  # no temp file left


def test_export_replaces_an_older_export_whole(ledger: Ledger, tmp_path: Path) -> None:
    out = tmp_path / "ledger.jsonl"
    out.write_text("old content that is longer than the new export " * 100)
    os.chmod(out, 0o644)
    ledger.export(out)
    assert verify_export(out.read_text().splitlines()).records == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_export_to_a_missing_directory_names_the_file_and_leaves_nothing(
    ledger: Ledger, tmp_path: Path
) -> None:
    out = tmp_path / "missing" / "ledger.jsonl"
    with pytest.raises(UsageError, match=r"cannot write the ledger export .*missing.*directory"):
        ledger.export(out)
    assert not (tmp_path / "missing").exists()
