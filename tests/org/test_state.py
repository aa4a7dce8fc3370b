"""The collector's state interface on both backends, and what only a shared one must do.

Each state here is opened as the collector opens it (`open_state`): a real
DATA/collector.db, or a fresh database on the session's PostgreSQL cluster.
Two handles on one PostgreSQL database stand for two collector processes.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.consent.records import GENESIS
from cleartrace.errors import LedgerBroken, TokenRefused, UsageError
from cleartrace.org.devices import Head
from cleartrace.org.limits import Rate
from cleartrace.org.org_ledger import COLLECTOR, export_lines, verify_chain
from cleartrace.org.registry_db import DB_NAME, read_devices, read_org_ledger
from cleartrace.org.state import CollectorState, open_state, redacted
from tests.support.postgres import Postgres, collector_connections
from tests.support.waiting import wait_for


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    cluster: Postgres = request.getfixturevalue("postgres")
    return cluster.new_database()


@pytest.fixture
def state(tmp_path: Path, state_url: str | None) -> Iterator[CollectorState]:
    opened = open_state(tmp_path / "data", state_url)
    yield opened
    opened.close()


def enrolled(state: CollectorState) -> str:
    key = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    return state.enroll(state.issue_tokens(1)[0], key).device


def with_a_bundle(state: CollectorState, name: str) -> str:
    """A device enrolled on `state` whose first bundle, `name`, was accepted."""
    device = enrolled(state)
    state.accept(
        name=name, device=device, size=1, base=Head(0, GENESIS), head=Head(1, "1" * 64),
        when="2026-12-06T00:00:00Z",
    )  # fmt: skip
    return device


def test_a_token_enrols_once_and_the_org_ledger_says_so(state: CollectorState) -> None:
    token = state.issue_tokens(1)[0]
    key = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    device = state.enroll(token, key)
    assert (device.head, device.head_counter) == (Head(0, GENESIS), 0)
    with pytest.raises(TokenRefused):
        state.enroll(token, key)
    witness = state.witness_key().public_key()
    records = state.org_ledger()
    verify_chain(export_lines(COLLECTOR, witness, records), witness)
    assert [r["kind"] for r in records] == ["tokens.issued", "device.admitted"]


def test_heads_move_only_from_where_they_are_and_counters_only_go_up(
    state: CollectorState,
) -> None:
    one, two = enrolled(state), enrolled(state)
    seen = []
    for seq in range(1, 4):
        for device in (one, two):
            moved = state.accept(
                name=f"{seq}{device[-8:]}".ljust(64, "0"),
                device=device,
                size=1,
                base=state.device(device).head,  # type: ignore[union-attr]
                head=Head(seq, f"{seq}" * 64),
                when="2026-12-06T00:00:00Z",
            )
            seen.append(moved.head_counter)
    assert seen == sorted(seen)
    assert len(set(seen)) == len(seen)
    with pytest.raises(LedgerBroken):
        state.accept(
            name="f" * 64, device=one, size=1, base=Head(1, "1" * 64), head=Head(9, "9" * 64),
            when="2026-12-06T00:00:00Z",
        )  # fmt: skip
    assert state.bundle_count() == 6
    assert state.stored("f" * 64) is None


def test_a_bucket_refuses_beyond_its_rate_and_says_for_how_long(state: CollectorState) -> None:
    rate = Rate(2, 3600.0)
    assert [state.take("upload:x", rate) for _ in range(2)] == [0.0, 0.0]
    wait = state.take("upload:x", rate)
    assert 0 < wait <= 1800
    assert state.take("upload:y", rate) == 0.0


def test_a_state_url_of_another_kind_is_refused_without_its_password(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as refused:
        open_state(tmp_path, "mysql://ann:secret@db/x")
    assert "secret" not in str(refused.value)
    assert redacted("postgresql://ann:secret@db/x") == "postgresql://ann@db/x"


def test_a_device_head_lock_held_by_one_process_stops_another(
    tmp_path: Path, postgres: Postgres
) -> None:
    url = postgres.new_database()
    first, second = open_state(tmp_path / "a", url), open_state(tmp_path / "b", url)
    got = threading.Event()

    def take() -> None:
        with second.head_lock("sha256:" + "a" * 64):
            got.set()

    def waiting() -> bool:
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).fetchall()
        return bool(rows[0][0] == 1)

    try:
        with first.head_lock("sha256:" + "a" * 64):
            thread = threading.Thread(target=take)
            thread.start()
            wait_for(waiting, what="the second handle waiting for the device's lock")
            assert not got.is_set()
        thread.join(timeout=30)
        assert got.is_set()
        with first.head_lock("sha256:" + "b" * 64), second.head_lock("sha256:" + "c" * 64):
            pass  # other devices' locks are independent
    finally:
        first.close()
        second.close()


def test_idle_rate_buckets_are_removed(tmp_path: Path, postgres: Postgres) -> None:
    url = postgres.new_database()
    state = open_state(tmp_path, url)
    try:
        state.take("enroll:192.0.2.1", Rate(1, 0.000001))  # full again at once
        for _ in range(1000):
            state.take("enroll", Rate(1_000_000, 1.0))
        with psycopg.connect(url) as conn:
            keys = [k for (k,) in conn.execute("SELECT key FROM rate_buckets").fetchall()]
    finally:
        state.close()
    assert keys == ["enroll"]


def test_ingest_and_the_audit_read_a_shared_state_given_as_itself(
    tmp_path: Path, postgres: Postgres
) -> None:
    url = postgres.new_database()
    data = tmp_path / "data"
    state = open_state(data, url)
    try:
        with_a_bundle(state, "a" * 64)
        expected = {d.device: d for d in state.devices()}
        ledger = state.org_ledger()
    finally:
        state.close()
    assert not (data / "collector.db").exists()
    assert read_devices(url) == expected
    assert read_org_ledger(url) == ledger
    assert read_org_ledger(tmp_path / "elsewhere") is None


def test_connections_are_reused_whichever_threads_come_and_go(
    tmp_path: Path, postgres: Postgres
) -> None:
    url = postgres.new_database()
    state = open_state(tmp_path, url)
    try:
        for _ in range(30):  # the server's worker threads end when idle, new ones start
            thread = threading.Thread(target=state.devices)
            thread.start()
            thread.join()
        held = collector_connections(url)
    finally:
        state.close()
    assert held == 1


def test_a_collector_role_with_only_data_privileges_serves_existing_tables(
    tmp_path: Path, postgres: Postgres
) -> None:
    # The usual deployment: the DBA (or the first start, as owner) made the tables;
    # the collectors' own role may read and write rows but not create anything.
    url = postgres.new_database()
    open_state(tmp_path / "owner", url).close()
    role = "ct_app_" + uuid.uuid4().hex[:8]
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
        )
        admin.execute(f"GRANT USAGE, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}")
    app_url = url.replace("postgresql://postgres@", f"postgresql://{role}@", 1)
    state = open_state(tmp_path / "app", app_url)
    try:
        with_a_bundle(state, "b" * 64)
        assert state.take("enroll", Rate(10, 60.0)) == 0
    finally:
        state.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_ledger_row_that_is_not_json_reads_as_an_empty_record_on_both_states(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """A damaged or tampered registry's row is refused by the chain walk at its place,
    on either state, never a crash of the audit."""
    data = tmp_path / "data"
    url = None
    if backend == "postgresql":
        cluster: Postgres = request.getfixturevalue("postgres")
        url = cluster.new_database()
    state = open_state(data, url)
    try:
        state.issue_tokens(1)
        state.issue_tokens(1)
    finally:
        state.close()
    tampered = (
        "UPDATE org_ledger SET record = 'not json' WHERE seq = (SELECT max(seq) FROM org_ledger)"
    )
    if url is None:
        conn = sqlite3.connect(data / DB_NAME)
        with conn:
            conn.execute(tampered)
        conn.close()
        records = read_org_ledger(data)
    else:
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute(tampered)
        records = read_org_ledger(url)
    assert records is not None
    assert len(records) == 2
    assert records[-1] == {}
