"""The dataset as Iceberg tables: same rows as the directory, appends, real erasure."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.expressions import And, EqualTo, GreaterThanOrEqual
from pyiceberg.table import Table

from cleartrace import cli
from cleartrace.commands.ingest import register
from cleartrace.errors import UsageError
from cleartrace.events import Event, Kind
from cleartrace.faults import TESTING
from cleartrace.org import dataset_table
from cleartrace.org.audit_proof import prove
from cleartrace.org.blobstore import bundle_key
from cleartrace.org.ingest import ingest
from cleartrace.org.org_ledger import default_path
from cleartrace.org.subjects import erase, export
from cleartrace.org.table import open_catalog, open_table
from tests.support import REPO
from tests.support.cli import ct
from tests.support.ingest_world import ALL, POLICY, Device, World, at, ns, recorded_session, typed
from tests.support.table_bytes import canary_places

#: Typed and a window title; sorts before every other title and text, so it is
#: the lower bound of those columns in the manifests as well as a value.
CANARY = "0qzCanaryXv7"


def ingest_table(world: World, out: Path | None = None) -> Any:
    return ingest(str(world.source), world.keys, out or world.out, table="iceberg")


def iceberg(out: Path, name: str) -> Table:
    """The table `name` of the dataset at `out`, through its catalog, as a reader opens it."""
    return open_table(open_catalog(out, None), name)


def table_rows(out: Path, name: str) -> pa.Table:
    return iceberg(out, name).scan().to_arrow()


def sorted_rows(table: pa.Table) -> list[dict[str, Any]]:
    return sorted(table.to_pylist(), key=lambda r: (r["bundle"], r["time"], repr(r)))


def directory_rows(out: Path, name: str) -> pa.Table:
    return pq.read_table(sorted((out / name).rglob("*.parquet")), partitioning=None)


def data_files(out: Path) -> dict[str, str]:
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (out / "warehouse").rglob("data/**/*.parquet")
    }


def canary_session(world: World, device: Device) -> str:
    """A session whose window title and typed text are the canary; returns its bundle."""
    device.give(at(0), ALL)
    session = secrets.token_hex(16)
    events = [
        Event(ns(at(1)), Kind.FOCUS, app="gedit", title=CANARY),
        *typed(CANARY, at(1.5)),
        Event(ns(at(3)), Kind.BUTTON_DOWN, 10, 10, 1),
        Event(ns(at(3)) + 50_000_000, Kind.BUTTON_UP, 10, 10, 1),
    ]
    return world.collector.upload(device, device.bundle(events, session))


def org_ledger(world: World) -> list[dict[str, Any]]:
    lines = default_path(world.out).read_text().splitlines()[1:]
    return [json.loads(line) for line in lines]


# -- rows, schema, appends ------------------------------------------------------------


def test_the_table_holds_the_directory_datasets_rows_and_schema(world: World) -> None:
    recorded_session(world, world.device())
    recorded_session(world, world.device(), timing="raw")
    files = world.root / "files"
    ingest(str(world.source), world.keys, files, formats=("parquet",))
    summary = ingest_table(world)
    assert summary.ok
    assert summary.bundles_ingested == 2
    for name in ("events", "actions"):
        table, directory = table_rows(world.out, name), directory_rows(files, name)
        assert table.num_rows == directory.num_rows > 0
        assert table.schema.names == directory.schema.names
        assert [str(f.type) for f in table.schema] == [str(f.type) for f in directory.schema]
        assert sorted_rows(table) == sorted_rows(directory)
    spec = iceberg(world.out, "events").spec()
    assert [(f.name, str(f.transform)) for f in spec.fields] == [
        ("day", "day"),
        ("device", "identity"),
    ]


def test_a_second_ingest_appends_and_leaves_the_earlier_files_alone(world: World) -> None:
    device = world.device()
    recorded_session(world, device)
    ingest_table(world)
    before = data_files(world.out)
    assert before
    session = secrets.token_hex(16)
    world.collector.upload(device, device.bundle(typed("more", at(30)), session))
    summary = ingest_table(world)
    assert summary.bundles_ingested == 2
    assert summary.bundles_unchanged == 1
    after = data_files(world.out)
    assert {k: v for k, v in after.items() if k in before} == before
    assert set(after) - set(before)
    assert session in set(table_rows(world.out, "events").column("session").to_pylist())
    again = data_files(world.out)
    ingest_table(world)
    assert data_files(world.out) == again  # an unchanged store commits nothing


def test_commits_in_batches_keep_one_snapshot(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dataset_table, "BATCH_ROWS", 1)  # a commit after every device
    devices = [world.device() for _ in range(3)]
    for device in devices:
        recorded_session(world, device)
    assert ingest_table(world).bundles_ingested == 3
    events = iceberg(world.out, "events")
    assert len(events.metadata.snapshots) == 1
    assert {r for r in events.scan().to_arrow().column("subject").to_pylist()} == {
        d.subject for d in devices
    }
    metadata = list((world.out / "warehouse/cleartrace/events/metadata").glob("*.json"))
    assert len(metadata) == 1


def test_the_tables_take_parquet_only(world: World) -> None:
    recorded_session(world, world.device())
    with pytest.raises(UsageError, match="Parquet only"):
        ingest(str(world.source), world.keys, world.out, table="iceberg", formats=("jsonl",))


def test_a_directory_dataset_is_not_updated_as_a_table(world: World) -> None:
    recorded_session(world, world.device())
    world.ingest()
    with pytest.raises(UsageError, match="--table directory"):
        ingest_table(world)


# -- erasure ---------------------------------------------------------------------------


@pytest.mark.parametrize("merged", [False, True], ids=["appended", "manifests-merged"])
def test_a_withdrawal_deletes_the_rows_and_purges_every_copy(world: World, merged: bool) -> None:
    device = world.device()
    canary_session(world, device)
    ingest_table(world)
    if merged:  # every commit merges the manifests (at 100 by default): none keeps a bound
        for name in ("events", "actions"):
            with iceberg(world.out, name).transaction() as tx:
                tx.set_properties({"commit.manifest.min-count-to-merge": "1"})
    assert any("(decompressed)" in p for p in canary_places(world.out, CANARY))
    assert any("(values)" in p for p in canary_places(world.out, CANARY))
    device.act("consent.withdrawn", at(60), categories=["keys", "window_titles"], policy=POLICY)
    world.collector.upload(device, device.bundle())
    summary = ingest_table(world)
    assert summary.dropped["withdrawn"] == 2 * len(CANARY)
    assert canary_places(world.out, CANARY) == []
    events = table_rows(world.out, "events").to_pylist()
    assert {r["kind"] for r in events} == {"focus", "button_down", "button_up"}
    assert [r["title"] for r in events if r["kind"] == "focus"] == [None]
    purged = [r for r in org_ledger(world) if r["kind"] == "table.purged"]
    assert {r["table"] for r in purged} == {"events", "actions"}
    current = iceberg(world.out, "events").current_snapshot()
    assert current is not None
    assert str(current.snapshot_id) in {r["snapshot"] for r in purged if r["table"] == "events"}
    assert all(r["files"] > 0 for r in purged)


def test_a_subject_erasure_leaves_no_byte_of_the_canary(world: World) -> None:
    erased, kept = world.device(), world.device()
    canary_session(world, erased)
    _, name, _ = recorded_session(world, kept)
    ingest_table(world)
    assert canary_places(world.out, CANARY)
    done = erase(erased.subject, str(world.source), world.keys, world.out)
    assert done.bundles == 1
    assert canary_places(world.out, CANARY) == []
    events = table_rows(world.out, "events")
    assert set(events.column("subject").to_pylist()) == {kept.subject}
    assert set(events.column("bundle").to_pylist()) == {name}
    kinds = [r["kind"] for r in org_ledger(world)]
    assert kinds[-3:] == ["subject.erased", "table.purged", "table.purged"]
    summary = ingest_table(world)  # the erased subject stays out
    assert summary.ok
    assert set(table_rows(world.out, "events").column("subject").to_pylist()) == {kept.subject}


def test_a_subject_export_reads_the_tables(world: World) -> None:
    mine, other = world.device(), world.device()
    recorded_session(world, mine)
    recorded_session(world, other)
    ingest_table(world)
    out = world.root / "export.json"
    done = export(mine.subject, str(world.source), world.keys, world.out, out)
    doc = json.loads(out.read_text())
    events = [
        r for r in table_rows(world.out, "events").to_pylist() if r["subject"] == mine.subject
    ]
    assert done.rows == len(doc["rows"]) == len(events) > 0
    assert {r["subject"] for r in doc["rows"] + doc["actions"]} == {mine.subject}
    assert doc["actions"]


def test_an_erasure_after_a_killed_ingest_removes_the_rows_it_committed(world: World) -> None:
    device = world.device()
    recorded_session(world, device)
    done = ct(
        *("org", "ingest", "--quiet", "--table", "iceberg"),
        *("--from", str(world.source), "--keys", str(world.keys), "--out", str(world.out)),
        env={**os.environ, "CLEARTRACE_FAULT_POINT": "table.committed", TESTING: "1"},
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert table_rows(world.out, "events").num_rows > 0
    erase(device.subject, str(world.source), world.keys, world.out)
    assert table_rows(world.out, "events").num_rows == 0
    assert table_rows(world.out, "actions").num_rows == 0


def test_rows_a_killed_run_committed_do_not_outlive_their_bundle(world: World) -> None:
    device = world.device()
    _, name, _ = recorded_session(world, device)
    done = ct(
        *("org", "ingest", "--quiet", "--table", "iceberg"),
        *("--from", str(world.source), "--keys", str(world.keys), "--out", str(world.out)),
        env={**os.environ, "CLEARTRACE_FAULT_POINT": "table.committed", TESTING: "1"},
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert set(table_rows(world.out, "events").column("bundle").to_pylist()) == {name}
    world.collector.store.delete(bundle_key(name))  # gone before the manifest named it
    summary = ingest_table(world)
    assert summary.devices_rejected == {device.fingerprint: "bundles-missing"}
    assert table_rows(world.out, "events").num_rows == 0
    assert table_rows(world.out, "actions").num_rows == 0


def test_the_audit_proves_the_tables_rows(world: World) -> None:
    device = world.device()
    canary_session(world, device)
    ingest_table(world)
    device.act("consent.withdrawn", at(60), categories=["window_titles"], policy=POLICY)
    world.collector.upload(device, device.bundle())
    ingest_table(world)  # after the purge only the current snapshot's files are left
    rows = table_rows(world.out, "events").num_rows + table_rows(world.out, "actions").num_rows
    ledgers = {device.fingerprint: device.ledger.records()[: device.witnessed[0]]}
    result = prove(world.out, ledgers)
    assert result.violations == []
    assert result.as_json()["totals"]["rows"] == rows


# -- readers ---------------------------------------------------------------------------


def test_pyiceberg_scans_with_filters(world: World) -> None:
    first, second = world.device(), world.device()
    recorded_session(world, first)
    recorded_session(world, second)
    ingest_table(world)
    table = iceberg(world.out, "events")
    keys = table.scan(
        row_filter=And(EqualTo("device", first.hex[:16]), EqualTo("kind", "key_down")),
        selected_fields=("device", "kind", "char"),
    ).to_arrow()
    assert keys.num_rows > 0
    assert set(keys.column("device").to_pylist()) == {first.hex[:16]}
    assert keys.schema.names == ["device", "kind", "char"]
    late = table.scan(row_filter=GreaterThanOrEqual("time", "2026-12-03T00:00:00+00:00"))
    days = {t.date().isoformat() for t in late.to_arrow().column("time").to_pylist()}
    assert days == {"2026-12-03"}
    # Partition pruning: one device's files only.
    planned = list(table.scan(row_filter=EqualTo("device", second.hex[:16])).plan_files())
    assert planned
    assert all(f"device={second.hex[:16]}" in t.file.file_path for t in planned)


def test_duckdb_reads_the_table(world: World) -> None:
    recorded_session(world, world.device())
    ingest_table(world)
    table = iceberg(world.out, "events")
    con = duckdb.connect()
    try:  # DuckDB's own reader, where its iceberg extension is installed
        con.execute("LOAD iceberg")
        con.execute(
            f"CREATE VIEW events AS SELECT * FROM iceberg_scan('{table.metadata_location}')"  # noqa: S608
        )
    except duckdb.Error:  # else through pyiceberg and Arrow
        con.register("events", table.scan().to_arrow())
    by_kind = dict(con.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())
    assert sum(by_kind.values()) == table.scan().to_arrow().num_rows > 0
    assert by_kind["key_down"] == by_kind["key_up"] > 0
    day = 86_400 * 10**6  # the session runs over midnight UTC: rows on both days
    query = "SELECT DISTINCT epoch_us(time) // ? FROM events ORDER BY 1"
    days = con.execute(query, [day]).fetchall()
    assert [d[0] - days[0][0] for d in days] == [0, 1]


def test_the_documented_recipes_run(world: World) -> None:
    recorded_session(world, world.device())
    work = world.root / "work"
    ingest(str(world.source), world.keys, work / "DATASET", table="iceberg")
    text = (REPO / "docs" / "dataset.md").read_text(encoding="utf-8")
    section = text[text.index("## The dataset as Iceberg tables") :]
    blocks = re.findall(r"^```py\n(.*?)^```", section, re.DOTALL | re.MULTILINE)
    assert len(blocks) == 2
    check = "assert keys.num_rows > 0 and keys.schema.names == ['time', 'device', 'app']\n"
    check += "assert episodes\n"
    done = subprocess.run(
        [sys.executable, "-c", "\n".join([*blocks, check])],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


# -- the command -----------------------------------------------------------------------


def test_the_command_writes_the_table(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    recorded_session(world, world.device())
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(), cli._add)
    argv = ["ingest", "--from", str(world.source), "--keys", str(world.keys)]
    args = parser.parse_args([*argv, "--out", str(world.out), "--table", "iceberg", "--json"])
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out)["bundles"]["ingested"] == 1
    assert (world.out / "catalog.db").is_file()
    assert oct(world.out.stat().st_mode & 0o777) == oct(0o700)
    assert oct((world.out / "catalog.db").stat().st_mode & 0o777) == oct(0o600)
    assert table_rows(world.out, "events").num_rows > 0
    assert not list(world.out.glob("events/day=*"))
