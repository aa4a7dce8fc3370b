"""Review: Iceberg dataset failure cases (catalog mix-ups, hostile table directory)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from cleartrace.org.ingest import ingest
from cleartrace.org.subjects import erase
from cleartrace.org.table import open_catalog, open_table
from tests.org.test_dataset_table import CANARY, canary_session
from tests.support.ingest_world import POLICY, World, at, recorded_session
from tests.support.table_bytes import canary_places


def _rows(catalog: str | None, out: Path, name: str = "events") -> int:
    return open_table(open_catalog(out, catalog), name).scan().to_arrow().num_rows


def test_an_erasure_without_the_catalog_the_dataset_was_built_with_destroys_the_table(
    world: World,
) -> None:
    """The manifest does not remember --catalog: an erasure (or ingest) run
    without it opens a fresh catalog.db whose new tables sit at the same
    location, and its purge removes every file of the real tables."""
    other_catalog = f"sqlite:///{world.root / 'shared-catalog.db'}"
    erased, kept = world.device(), world.device()
    recorded_session(world, erased)
    recorded_session(world, kept)
    ingest(str(world.source), world.keys, world.out, table="iceberg", catalog=other_catalog)
    before = _rows(other_catalog, world.out)
    assert before > 0
    erase(erased.subject, str(world.source), world.keys, world.out)  # no --catalog
    # The kept subject's rows must still be readable in the dataset's real catalog.
    assert _rows(other_catalog, world.out) > 0


def test_an_ingest_without_the_catalog_keeps_the_rows(world: World) -> None:
    other_catalog = f"sqlite:///{world.root / 'shared-catalog.db'}"
    recorded_session(world, world.device())
    ingest(str(world.source), world.keys, world.out, table="iceberg", catalog=other_catalog)
    assert _rows(other_catalog, world.out) > 0
    ingest(str(world.source), world.keys, world.out, table="iceberg")  # --catalog forgotten
    assert _rows(other_catalog, world.out) > 0


def test_a_planted_table_location_does_not_make_the_purge_delete_outside(world: World) -> None:
    """Someone with write access to the table's directory rewrites the current
    metadata file's `location`: the purge then removes every file under
    LOCATION/data and LOCATION/metadata, wherever that is."""
    recorded_session(world, world.device())
    ingest(str(world.source), world.keys, world.out, table="iceberg")
    victim = world.root / "victim"
    for rel in ("data/precious.parquet", "metadata/precious.json"):
        (victim / rel).parent.mkdir(parents=True, exist_ok=True)
        (victim / rel).write_text("not the dataset's")
    table = open_table(open_catalog(world.out, None), "events")
    meta = Path(table.metadata_location.removeprefix("file://"))
    obj = json.loads(meta.read_text())
    obj["location"] = victim.as_uri()
    meta.write_text(json.dumps(obj))
    ingest(str(world.source), world.keys, world.out, table="iceberg")
    assert (victim / "data/precious.parquet").is_file()
    assert (victim / "metadata/precious.json").is_file()


def test_a_withdrawal_leaves_no_canary_where_the_table_wrote_it(world: World) -> None:
    """A symbolic link planted for the table's data/ directory: ingest writes
    the rows through it (outside the dataset), and the purge, which skips a
    linked data/, leaves the withdrawn rows' files there for good while the
    ledger records a purge."""
    device = world.device()
    canary_session(world, device)
    ingest(str(world.source), world.keys, world.out, table="iceberg")
    data = world.out / "warehouse/cleartrace/events/data"
    elsewhere = world.root / "elsewhere"
    shutil.move(data, elsewhere)
    data.symlink_to(elsewhere)
    device.act("consent.withdrawn", at(60), categories=["keys", "window_titles"], policy=POLICY)
    world.collector.upload(device, device.bundle())
    ingest(str(world.source), world.keys, world.out, table="iceberg")
    assert canary_places(elsewhere, CANARY) == []


def test_a_tag_another_engine_made_does_not_keep_withdrawn_rows_or_break_ingest(
    world: World,
) -> None:
    """docs/dataset.md invites Spark/Trino onto the catalog; a tag they create
    on a snapshot (a normal Iceberg act) must not leave ingest failing with a
    raw error, nor keep a withdrawn row's file."""
    device = world.device()
    canary_session(world, device)
    ingest(str(world.source), world.keys, world.out, table="iceberg")
    events = open_table(open_catalog(world.out, None), "events")
    current = events.current_snapshot()
    assert current is not None
    events.manage_snapshots().create_tag(current.snapshot_id, "audit-2026").commit()
    device.act("consent.withdrawn", at(60), categories=["keys", "window_titles"], policy=POLICY)
    world.collector.upload(device, device.bundle())
    summary = ingest(str(world.source), world.keys, world.out, table="iceberg")
    assert summary.ok
    assert canary_places(world.out, CANARY) == []


def test_a_second_hosts_ingest_on_the_shared_catalog_keeps_its_commit(world: World) -> None:
    """docs/dataset.md: a PostgreSQL catalog "several hosts can share". Each
    host's ingest holds only its own DATASET/_cleartrace/lock, so one host's
    purge runs while another's commit is in flight, removes the data files that
    commit is about to reference, and the table is left naming missing files.
    (The other host's writer is pyiceberg's transaction, as TableDataset uses it.)"""
    shared = f"sqlite:///{world.root / 'shared-catalog.db'}"
    device = world.device()
    recorded_session(world, device)
    ingest(str(world.source), world.keys, world.out, table="iceberg", catalog=shared)
    events = open_table(open_catalog(world.out, shared), "events")
    rows = events.scan().to_arrow()
    in_flight = events.transaction()
    in_flight.append(rows.cast(events.schema().as_arrow()))  # data files written, not committed
    # This host's run over an unchanged store commits nothing, and purges.
    ingest(str(world.source), world.keys, world.out, table="iceberg", catalog=shared)
    in_flight.commit_transaction()
    open_table(open_catalog(world.out, shared), "events").scan().to_arrow()
