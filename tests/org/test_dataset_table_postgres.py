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
from cleartrace.org.subjects import erase, export
from cleartrace.org.table import open_catalog, open_table
from cleartrace.org.table_lock import LOCK_TABLE, catalog_lock
from tests.org.test_dataset_table import CANARY, canary_session, org_ledger
from tests.support.ingest_world import POLICY, World, at, recorded_session
from tests.support.postgres import Postgres
from tests.support.table_bytes import canary_places
from tests.support.waiting import wait_for


@pytest.fixture
def password() -> str:
    return secrets.token_hex(12)


@pytest.fixture
def catalog(postgres: Postgres, password: str) -> str:
    """The SQLAlchemy URI of a fresh catalog database, its password in it."""
    url = postgres.password_database(password)
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def subjects(out: Path, catalog: str) -> set[str]:
    """The subjects in the events table, read through the catalog as a reader would."""
    opened = open_catalog(out, catalog, create=False)
    try:
        events = open_table(opened, "events").scan().to_arrow()
    finally:
        opened.engine.dispose()
    return set(events.column("subject").to_pylist())


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
    assert subjects(world.out, catalog) == {device.subject, other.subject}
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
    # A subject's export and erasure reach the tables through the same catalog.
    got = world.root / "export.json"
    done = export(other.subject, str(world.source), world.keys, world.out, got, catalog=catalog)
    assert done.rows == len(json.loads(got.read_text())["rows"]) > 0
    assert erase(other.subject, str(world.source), world.keys, world.out, catalog=catalog).bundles
    assert subjects(world.out, catalog) == {device.subject}
    assert in_files(world.out, password) == []


def test_the_password_may_come_from_a_password_file_instead_of_the_uri(
    world: World, catalog: str, password: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A URI with the password in it shows it to every `ps` on the host; libpq's
    password file keeps it out of the command line. The catalog is the same
    either way, so a dataset built with one is run with the other."""
    recorded_session(world, world.device())
    assert ingest(str(world.source), world.keys, world.out, table="iceberg", catalog=catalog).ok
    url = make_url(catalog)
    bare = f"postgresql+psycopg://{url.username}@/{url.database}?host={url.query['host']}"
    assert password not in bare
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"*:*:{url.database}:{url.username}:{password}\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    recorded_session(world, world.device())
    summary = ingest(str(world.source), world.keys, world.out, table="iceberg", catalog=bare)
    assert summary.ok
    assert summary.bundles_ingested == 2
    assert subjects(world.out, bare) == {d.subject for d in world.devices}
    monkeypatch.delenv("PGPASSFILE")  # the password again in the URI: the same catalog
    assert ingest(str(world.source), world.keys, world.out, table="iceberg", catalog=catalog).ok


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


def test_a_run_that_creates_the_lock_table_as_another_does_goes_on_to_claim_the_row(
    catalog: str,
) -> None:
    """Two first runs on a new catalog create the lock table at once: the
    second CREATE TABLE IF NOT EXISTS waits for the first's transaction and
    then fails on PostgreSQL; that run must go on to claim the row, not stop
    with a database error. The first's transaction is held open here until
    the second is seen waiting for it, so the two always meet."""
    dsn = catalog.replace("+psycopg", "")
    engine = create_engine(catalog)
    results: list[object] = []

    def claim() -> None:
        try:
            with catalog_lock(engine, "shared"):
                results.append("held")
        except Exception as exc:  # what the run sees, whatever it is
            results.append(exc)

    first = psycopg.connect(dsn)
    thread = threading.Thread(target=claim)
    try:
        first.execute(
            f"CREATE TABLE IF NOT EXISTS {LOCK_TABLE} (name VARCHAR(64) PRIMARY KEY, "
            "holder VARCHAR(512) NOT NULL, since BIGINT NOT NULL)"
        )
        thread.start()
        with psycopg.connect(dsn, autocommit=True) as watch:
            wait_for(
                lambda: (
                    watch.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'"
                    ).fetchone()
                    == (1,)
                ),
                30,
                "the second CREATE TABLE to wait for the first",
            )
        first.commit()
        thread.join(60)
    finally:
        first.close()
        thread.join(60)
        engine.dispose()
    assert results == ["held"], results
