"""The dataset's Iceberg tables with their SQL catalog on PostgreSQL: the
session's real cluster (`postgres`), a database of its own per test, owned by
a role that must give its password (`Postgres.password_database`).

What the SQLite catalog's tests prove is proven here on the server a
fleet shares: rows in, a withdrawn canary gone from every file after the
purge, one writer at a time through the lock row in the catalog's database,
and the password in no file of the dataset.
"""

from __future__ import annotations

import json
import secrets
import threading
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cleartrace.errors import UsageError
from cleartrace.org.ingest import ingest
from cleartrace.org.subjects import erase
from cleartrace.org.table import open_catalog, open_table
from cleartrace.org.table_lock import LOCK_TABLE, catalog_lock
from tests.org.test_dataset_table import CANARY, canary_session, org_ledger
from tests.support.ingest_world import POLICY, World, at, recorded_session
from tests.support.postgres import Postgres
from tests.support.table_bytes import canary_places


@pytest.fixture
def password() -> str:
    return secrets.token_hex(12)


@pytest.fixture
def catalog(postgres: Postgres, password: str) -> str:
    """The SQLAlchemy URI of a fresh catalog database, its password in it."""
    url = postgres.password_database(password)
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def in_files(root: Path, secret: str) -> list[str]:
    """Every file under `root` holding `secret`."""
    return [
        p.relative_to(root).as_posix()
        for p in sorted(root.rglob("*"))
        if p.is_file() and secret.encode() in p.read_bytes()
    ]


def test_a_postgresql_catalog_keeps_the_tables_and_a_withdrawal_purges_the_canary(
    world: World, catalog: str, password: str
) -> None:
    device, other = world.device(), world.device()
    canary_session(world, device)
    recorded_session(world, other)
    summary = ingest(str(world.source), world.keys, world.out, table="iceberg", catalog=catalog)
    assert summary.ok
    assert summary.bundles_ingested == 2
    assert not (world.out / "catalog.db").exists()
    events = open_table(open_catalog(world.out, catalog), "events").scan().to_arrow()
    assert set(events.column("subject").to_pylist()) == {device.subject, other.subject}
    with psycopg.connect(catalog.replace("+psycopg", "")) as conn:  # the catalog is there
        found = conn.execute("SELECT table_name FROM iceberg_tables ORDER BY 1").fetchall()
    assert found == [("actions",), ("events",)]
    assert any("(values)" in p for p in canary_places(world.out, CANARY))
    # The manifest names the catalog, never its password.
    recorded = json.loads((world.out / "_cleartrace" / "manifest.json").read_text())
    uri = recorded["catalog"]["uri"]
    assert password not in uri
    assert make_url(uri).set(password=password) == make_url(catalog)
    device.act("consent.withdrawn", at(60), categories=["keys", "window_titles"], policy=POLICY)
    world.collector.upload(device, device.bundle())
    summary = ingest(str(world.source), world.keys, world.out, table="iceberg", catalog=catalog)
    assert summary.dropped["withdrawn"] == 2 * len(CANARY)
    assert canary_places(world.out, CANARY) == []
    purged = [r for r in org_ledger(world) if r["kind"] == "table.purged"]
    assert {r["table"] for r in purged} == {"events", "actions"}
    # A subject erasure reaches the tables through the same catalog.
    assert erase(other.subject, str(world.source), world.keys, world.out, catalog=catalog).bundles
    events = open_table(open_catalog(world.out, catalog), "events").scan().to_arrow()
    assert set(events.column("subject").to_pylist()) == {device.subject}
    assert in_files(world.out, password) == []


def test_a_second_writer_on_a_postgresql_catalog_is_refused(world: World, catalog: str) -> None:
    recorded_session(world, world.device())
    assert ingest(str(world.source), world.keys, world.out, table="iceberg", catalog=catalog).ok
    other = create_engine(catalog)  # another run's own connection to the catalog database
    try:
        with catalog_lock(other, "shared"):
            with other.connect() as conn:
                held = conn.execute(text(f"SELECT holder FROM {LOCK_TABLE}")).scalars().all()  # noqa: S608
            assert len(held) == 1
            with pytest.raises(UsageError, match=r"in use by .*one run at a time"):
                ingest(str(world.source), world.keys, world.out, table="iceberg", catalog=catalog)
        assert ingest(str(world.source), world.keys, world.out, table="iceberg", catalog=catalog).ok
        with other.connect() as conn:
            assert conn.execute(text(f"SELECT count(*) FROM {LOCK_TABLE}")).scalar() == 0  # noqa: S608
    finally:
        other.dispose()


def test_of_two_runs_claiming_a_new_postgresql_catalog_at_once_one_writes(catalog: str) -> None:
    """Both create the lock table and claim its row at the same moment: one
    holds it, the other is refused with the lock's message, never a database error."""
    engines = [create_engine(catalog) for _ in range(2)]
    start, claimed = threading.Barrier(2), threading.Barrier(2)
    results: list[object] = []

    def claim(engine: object) -> None:
        start.wait()
        try:
            with catalog_lock(engine, "shared"):  # type: ignore[arg-type]
                results.append("held")
                claimed.wait()
        except Exception as exc:  # noqa: BLE001 -- what the other run sees, whatever it is
            results.append(exc)
            claimed.wait()

    threads = [threading.Thread(target=claim, args=(e,)) for e in engines]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for engine in engines:
            engine.dispose()
    assert results.count("held") == 1, results
    refused = [r for r in results if r != "held"]
    assert len(refused) == 1
    assert isinstance(refused[0], UsageError), repr(refused[0])
