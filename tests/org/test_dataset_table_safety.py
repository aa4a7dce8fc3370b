"""The Iceberg dataset refuses what would lose rows or keep erased ones.

The catalog it was built with, a table location outside the warehouse, a
linked directory, a tag another engine made, another writer's commit under
way: each is refused (or survived) before anything is changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from pathlib import Path

import pytest
from sqlalchemy import text

from cleartrace.errors import UsageError
from cleartrace.org.ingest import ingest
from cleartrace.org.org_ledger import default_path
from cleartrace.org.subjects import erase
from cleartrace.org.table import open_catalog, open_table, purge, remove_unreferenced
from cleartrace.org.table_checks import public_uri
from cleartrace.org.table_lock import LOCK_TABLE, catalog_lock
from tests.org.test_dataset_table import CANARY, canary_session
from tests.support.ingest_world import POLICY, Device, World, at, recorded_session
from tests.support.table_bytes import canary_places


def _rows(catalog: str | None, out: Path, name: str = "events") -> int:
    return open_table(open_catalog(out, catalog), name).scan().to_arrow().num_rows


def _state(world: World) -> dict[str, str]:
    """Every file of the store and the dataset, by its SHA-256 (but the catalog
    database, where a run claims and frees its writer row)."""
    return {
        p.relative_to(world.root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for top in (world.source, world.out)
        for p in sorted(top.rglob("*"))
        if p.is_file() and not p.is_symlink() and p.name not in ("lock", "catalog.db")
    }


def _shared(world: World) -> str:
    return f"sqlite:///{world.root / 'shared-catalog.db'}"


def _withdraw(world: World, device: Device) -> None:
    device.act("consent.withdrawn", at(60), categories=["keys", "window_titles"], policy=POLICY)
    world.collector.upload(device, device.bundle())


# -- the catalog the dataset was built with ------------------------------------------


def test_an_erasure_without_the_catalog_the_dataset_was_built_with_is_refused(
    world: World,
) -> None:
    """Without the record, the run opened a fresh catalog.db whose new tables sat
    at the same location, and its purge removed every file of the real tables."""
    erased, kept = world.device(), world.device()
    recorded_session(world, erased)
    recorded_session(world, kept)
    ingest(str(world.source), world.keys, world.out, table="iceberg", catalog=_shared(world))
    manifest = json.loads((world.out / "_cleartrace/manifest.json").read_text())
    assert manifest["catalog"]["uri"] == _shared(world)
    assert set(manifest["catalog"]["tables"]) == {"events", "actions"}
    before = _state(world)
    with pytest.raises(UsageError, match=r"built with the Iceberg catalog .*--catalog") as info:
        erase(erased.subject, str(world.source), world.keys, world.out)  # no --catalog
    assert str(world.out) in str(info.value)
    assert _state(world) == before  # the store, the ledger, the tables
    assert not (world.out / "catalog.db").exists()
    done = erase(erased.subject, str(world.source), world.keys, world.out, catalog=_shared(world))
    assert done.bundles == 1
    assert _rows(_shared(world), world.out) > 0


def test_an_ingest_without_the_catalog_is_refused_and_keeps_the_rows(world: World) -> None:
    recorded_session(world, world.device())
    ingest(str(world.source), world.keys, world.out, table="iceberg", catalog=_shared(world))
    before = _state(world)
    with pytest.raises(UsageError, match="--catalog"):
        ingest(str(world.source), world.keys, world.out, table="iceberg")  # --catalog forgotten
    assert _state(world) == before
    assert not (world.out / "catalog.db").exists()
    assert _rows(_shared(world), world.out) > 0


def test_a_lost_default_catalog_is_not_made_anew(world: World) -> None:
    recorded_session(world, world.device())
    ingest(str(world.source), world.keys, world.out, table="iceberg")
    (world.out / "catalog.db").rename(world.root / "catalog.db")
    before = _state(world)
    with pytest.raises(UsageError, match=r"catalog\.db is missing"):
        ingest(str(world.source), world.keys, world.out, table="iceberg")
    assert not (world.out / "catalog.db").exists()
    assert _state(world) == before


def test_a_catalog_holding_other_tables_of_those_names_is_refused(world: World) -> None:
    recorded_session(world, world.device())
    ingest(str(world.source), world.keys, world.out, table="iceberg", catalog=_shared(world))
    catalog = open_catalog(world.out, _shared(world))
    catalog.drop_table(("cleartrace", "events"))  # the files stay; a new table is made
    open_table(catalog, "events")
    before = _state(world)
    with pytest.raises(
        UsageError,
        match=r"another table \(UUID .*\) as cleartrace.events, .*was built with the table of UUID",
    ):
        ingest(str(world.source), world.keys, world.out, table="iceberg", catalog=_shared(world))
    assert _state(world) == before


def test_the_manifest_records_the_catalog_without_its_password() -> None:
    shown = public_uri("postgresql+psycopg://ingest:s3cr3t@db.example.org/cleartrace")
    assert "s3cr3t" not in shown
    assert shown == "postgresql+psycopg://ingest@db.example.org/cleartrace"
    assert public_uri("postgresql+psycopg://ingest:***@db.example.org/cleartrace") == shown


# -- the table's location and directories ----------------------------------------------


def test_a_planted_table_location_is_refused_before_anything_is_removed(world: World) -> None:
    """Whoever can write the table's metadata file rewrites its `location`: the
    purge then removed every file under LOCATION/data and LOCATION/metadata."""
    recorded_session(world, world.device())
    ingest(str(world.source), world.keys, world.out, table="iceberg")
    victim = world.root / "victim"
    for rel in ("data/precious.parquet", "metadata/precious.json"):
        (victim / rel).parent.mkdir(parents=True, exist_ok=True)
        (victim / rel).write_text("not the dataset's")
    os.utime(victim / "data/precious.parquet", (0, 0))  # older than any grace period
    table = open_table(open_catalog(world.out, None), "events")
    meta = Path(table.metadata_location.removeprefix("file://"))
    obj = json.loads(meta.read_text())
    obj["location"] = victim.as_uri()
    meta.write_text(json.dumps(obj))
    with pytest.raises(UsageError, match=r"cleartrace.events .* outside .*warehouse"):
        ingest(str(world.source), world.keys, world.out, table="iceberg")
    with pytest.raises(UsageError, match="outside"):  # the purge checks it itself too
        purge(open_table(open_catalog(world.out, None), "events"), "events", world.out / "x")
    assert (victim / "data/precious.parquet").is_file()
    assert (victim / "metadata/precious.json").is_file()


@pytest.mark.parametrize("linked", ["data", "metadata", "warehouse/cleartrace"])
def test_a_linked_table_directory_is_refused_before_rows_are_written(
    world: World, linked: str
) -> None:
    """A link planted for data/: ingest wrote the rows through it (outside the
    dataset), and the purge, which does not follow links, left them there for
    good while the ledger recorded a purge."""
    device = world.device()
    canary_session(world, device)
    ingest(str(world.source), world.keys, world.out, table="iceberg")
    events = world.out / "warehouse/cleartrace/events"
    directory = world.out / linked if linked.startswith("warehouse") else events / linked
    elsewhere = world.root / "elsewhere"
    shutil.move(directory, elsewhere)
    directory.symlink_to(elsewhere)
    _withdraw(world, device)
    ledger = default_path(world.out).read_bytes()
    outside = sorted(p.relative_to(elsewhere) for p in elsewhere.rglob("*"))
    with pytest.raises(UsageError, match=rf"{directory} is a symbolic link.*Replace the link"):
        ingest(str(world.source), world.keys, world.out, table="iceberg")
    assert sorted(p.relative_to(elsewhere) for p in elsewhere.rglob("*")) == outside
    assert default_path(world.out).read_bytes() == ledger
    directory.unlink()  # the fix the error names
    shutil.move(elsewhere, directory)
    assert ingest(str(world.source), world.keys, world.out, table="iceberg").ok
    assert canary_places(world.out, CANARY) == []


# -- refs another engine made ---------------------------------------------------------


def test_a_tag_another_engine_made_is_refused_before_anything_changes(world: World) -> None:
    """A tag pins its snapshot: every later commit raised a raw ValueError after
    the events table had committed, and the withdrawn rows stayed."""
    device = world.device()
    canary_session(world, device)
    ingest(str(world.source), world.keys, world.out, table="iceberg")
    events = open_table(open_catalog(world.out, None), "events")
    current = events.current_snapshot()
    assert current is not None
    events.manage_snapshots().create_tag(current.snapshot_id, "audit-2026").commit()
    _withdraw(world, device)
    before = _state(world)
    refused = r"cleartrace.events has the tag 'audit-2026'.*cannot be guaranteed gone.*DROP TAG"
    with pytest.raises(UsageError, match=refused):
        ingest(str(world.source), world.keys, world.out, table="iceberg")
    with pytest.raises(UsageError, match=refused):  # the store's bundles are not deleted
        erase(device.subject, str(world.source), world.keys, world.out)
    assert _state(world) == before
    events = open_table(open_catalog(world.out, None), "events")
    events.manage_snapshots().remove_tag("audit-2026").commit()  # the fix the error names
    assert ingest(str(world.source), world.keys, world.out, table="iceberg").ok
    assert canary_places(world.out, CANARY) == []


# -- another writer on a shared catalog ------------------------------------------------


def test_remove_unreferenced_removes_what_erasure_needs_and_old_leftovers_only(
    tmp_path: Path,
) -> None:
    warehouse = tmp_path / "warehouse"
    table = warehouse / "t"
    files = {
        "kept": "data/day=1/a.parquet",  # the current snapshot's
        "gone": "data/day=1/b.parquet",  # only an expired snapshot's
        "young": "data/day=1/c.parquet",  # another writer's commit under way
        "old": "data/day=1/d.parquet",  # a run killed before its commit, long ago
        "older metadata": "metadata/00001-x.metadata.json",
        "current metadata": "metadata/00003-y.metadata.json",
        "newer metadata": "metadata/00004-z.metadata.json",  # a commit under way
        "not iceberg's": "other.txt",
    }
    for rel in files.values():
        (table / rel).parent.mkdir(parents=True, exist_ok=True)
        (table / rel).write_bytes(b"x")
    os.utime(table / files["old"], (0, 0))
    outside = tmp_path / "outside.parquet"
    outside.write_bytes(b"x")
    (table / "data/link.parquet").symlink_to(outside)
    os.utime(table / "data/link.parquet", (0, 0), follow_symlinks=False)
    keep = {table / files["kept"], table / files["current metadata"]}
    gone = {table / files["gone"], table / "data/link.parquet"}
    with pytest.raises(UsageError, match="outside"):
        remove_unreferenced(table, tmp_path / "elsewhere", keep, gone)
    assert all((table / rel).is_file() for rel in files.values())
    removed = remove_unreferenced(table, warehouse, keep, gone)
    assert removed == sorted(table / files[k] for k in ("gone", "old", "older metadata"))
    assert {k for k, rel in files.items() if (table / rel).is_file()} == {
        "kept",
        "young",
        "current metadata",
        "newer metadata",
        "not iceberg's",
    }
    assert outside.is_file()


def test_another_writers_commit_under_way_survives_a_purge(world: World) -> None:
    """A purge that removed every unreferenced file took the data files another
    host's commit was about to reference, leaving the table naming missing files.
    (The other writer is pyiceberg's transaction, as TableDataset uses it.)"""
    device = world.device()
    recorded_session(world, device)
    ingest(str(world.source), world.keys, world.out, table="iceberg", catalog=_shared(world))
    events = open_table(open_catalog(world.out, _shared(world)), "events")
    rows = events.scan().to_arrow()
    in_flight = events.transaction()
    in_flight.append(rows.cast(events.schema().as_arrow()))  # data files written, not committed
    # This host's run over an unchanged store commits nothing, and purges.
    ingest(str(world.source), world.keys, world.out, table="iceberg", catalog=_shared(world))
    in_flight.commit_transaction()
    again = open_table(open_catalog(world.out, _shared(world)), "events").scan().to_arrow()
    assert again.num_rows == 2 * rows.num_rows


def test_a_killed_runs_unlisted_files_go_once_past_the_grace_period(world: World) -> None:
    recorded_session(world, world.device())
    ingest(str(world.source), world.keys, world.out, table="iceberg")
    data = world.out / "warehouse/cleartrace/events/data"
    old, young = data / "killed-run-old.parquet", data / "killed-run-young.parquet"
    old.write_bytes(b"rows of a run killed before its commit")
    young.write_bytes(b"rows of a commit under way")
    os.utime(old, (0, 0))
    ingest(str(world.source), world.keys, world.out, table="iceberg")
    assert not old.exists()
    assert young.is_file()


def test_an_erasure_removes_unlisted_files_of_the_subjects_devices_at_any_age(
    world: World,
) -> None:
    """A run killed before its commit left the subject's rows in files no
    snapshot lists; younger than the grace period, they go all the same when
    they are in the erased devices' partitions (whoever wrote them)."""
    erased, kept = world.device(), world.device()
    canary_session(world, erased)
    recorded_session(world, kept)
    ingest(str(world.source), world.keys, world.out, table="iceberg")
    data = world.out / "warehouse/cleartrace/events/data"
    theirs = next(data.glob(f"day=*/device={erased.hex[:16]}"))
    mine = next(data.glob(f"day=*/device={kept.hex[:16]}"))
    killed = theirs / "00000-0-killed-run.parquet"
    shutil.copy(next(theirs.glob("*.parquet")), killed)  # as a killed run writes them
    under_way = mine / "00000-0-commit-under-way.parquet"
    shutil.copy(next(mine.glob("*.parquet")), under_way)
    erase(erased.subject, str(world.source), world.keys, world.out)
    assert not killed.exists()
    assert canary_places(world.out, CANARY) == []
    assert under_way.is_file()


def test_a_second_writer_on_the_catalog_is_refused(world: World) -> None:
    recorded_session(world, world.device())
    ingest(str(world.source), world.keys, world.out, table="iceberg", catalog=_shared(world))
    engine = open_catalog(world.out, _shared(world)).engine
    before = _state(world)
    with (
        catalog_lock(engine, "shared"),
        pytest.raises(UsageError, match=r"in use by .*one run at a time"),
    ):
        ingest(str(world.source), world.keys, world.out, table="iceberg", catalog=_shared(world))
    assert _state(world) == before
    with engine.begin() as conn:  # a run on another host: never taken over
        conn.execute(
            text(f"INSERT INTO {LOCK_TABLE} VALUES ('cleartrace', :h, 0)"),  # noqa: S608
            {"h": f"not-{socket.gethostname()}/1/1"},
        )
    with pytest.raises(UsageError, match=rf"in use by not-{socket.gethostname()}.*delete that row"):
        ingest(str(world.source), world.keys, world.out, table="iceberg", catalog=_shared(world))
    with engine.begin() as conn:  # a run of this host that is gone: taken over
        conn.execute(text(f"UPDATE {LOCK_TABLE} SET holder = :h"), {"h": _dead_holder()})  # noqa: S608
    assert ingest(
        str(world.source), world.keys, world.out, table="iceberg", catalog=_shared(world)
    ).ok
    with engine.begin() as conn:
        assert conn.execute(text(f"SELECT count(*) FROM {LOCK_TABLE}")).scalar() == 0  # noqa: S608


def _dead_holder() -> str:
    """The lock row of a process of this host that has exited."""
    import subprocess
    import sys

    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return f"{socket.gethostname()}/{done.pid}/0"
