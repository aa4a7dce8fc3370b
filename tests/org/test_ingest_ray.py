"""Ingest on a real local Ray cluster (`ray_address`, one per session): the same
store gives the same dataset rows, summary and rejections as the in-process engine,
and the same manifest and org-ledger records (`ingest.run`, `table.purged`), with
the rows in a directory or in Iceberg tables (on Ray, with the session's
PostgreSQL as their catalog)."""

from __future__ import annotations

import hashlib
import json
import secrets
import socket
from pathlib import Path
from typing import Any

import pytest

from cleartrace.errors import UsageError
from cleartrace.events import Event, Kind
from cleartrace.formats import unb64url
from cleartrace.org.ingest import ingest
from cleartrace.org.ingest_summary import IngestSummary
from cleartrace.org.keys import generate
from cleartrace.org.org_ledger import default_path
from cleartrace.org.subjects import erase
from cleartrace.org.table import open_catalog, open_table
from tests.org.test_dataset_table import CANARY, canary_session, sorted_rows, table_rows
from tests.org.test_ingest import run_command
from tests.support.ingest_world import (
    ALL,
    POLICY,
    Device,
    World,
    at,
    ns,
    recorded_session,
    rejected,
    typed,
)
from tests.support.postgres import Postgres
from tests.support.ray_cluster import RayHead, cluster_files
from tests.support.table_bytes import canary_places


def both(world: World, address: str, keys: Path | None = None) -> list[IngestSummary]:
    """The store ingested in-process into world.out and on Ray into world.root/"on-ray"."""
    keys = world.keys if keys is None else keys
    return [
        ingest(str(world.source), keys, world.out),
        ingest(str(world.source), keys, world.root / "on-ray", engine="ray", address=address),
    ]


def dataset(world: World, out: Path) -> dict[str, Any]:
    """Everything a reader sees of the dataset at `out`: both tables' rows as
    DuckDB reads them (in a total order: devices' rows may share a time), and
    every JSON Lines file by path."""
    world.out, kept = out, world.out
    try:
        return {
            "events": in_order(world.rows()),
            "actions": in_order(world.actions()),
            "jsonl": {str(p.relative_to(out)): p.read_text() for p in sorted(out.rglob("*.jsonl"))},
        }
    finally:
        world.out = kept


def in_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True, default=str))


def key_forms(keys: Path) -> list[bytes]:
    """The organisation's private bundle key as its file holds it and as raw bytes."""
    doc = json.loads((keys / "bundle.key").read_text())
    secrets_ = [doc[name] for name in ("x25519", "mlkem768_seed") if name in doc]
    return [*(s.encode() for s in secrets_), *(unb64url(s) for s in secrets_)]


def test_ray_writes_the_rows_the_in_process_engine_writes(
    world: World, ray_cluster: RayHead
) -> None:
    ray_address = ray_cluster.address
    raw = world.device()
    recorded_session(world, raw, timing="raw")
    other = secrets.token_hex(16)
    raw.act("session.started", at(20), session=other)
    world.collector.upload(raw, raw.bundle(typed("later", at(21)), other, timing="raw"))
    raw.act("consent.withdrawn", at(60), categories=["keys"], policy=POLICY)
    world.collector.upload(raw, raw.bundle())
    even = world.device()
    session, _, _ = recorded_session(world, even)
    even.redact(session, at(1.4), at(2), events=4)
    world.collector.upload(even, even.bundle())
    here, on_ray = both(world, ray_address)
    assert here.ok
    assert here.events_kept > 0
    assert here.dropped["withdrawn"] > 0
    assert on_ray.as_dict() == here.as_dict()
    seen = dataset(world, world.out)
    assert seen["events"]
    assert seen["actions"]
    assert dataset(world, world.root / "on-ray") == seen
    # The same manifest, so the same record of the run in each org ledger.
    on_ray_dir = world.root / "on-ray"
    assert manifest(on_ray_dir) == manifest(world.out)
    assert acts(on_ray_dir) == acts(world.out)
    assert [r["kind"] for r in acts(world.out)] == ["ingest.run"]
    # Nothing changed: neither engine writes a file again.
    here, on_ray = both(world, ray_address)
    assert here.bundles_unchanged == here.bundles_read == 5
    assert on_ray.as_dict() == here.as_dict()
    # The key went to no task, result or log: nothing of the cluster's holds it.
    files = dict(cluster_files(ray_cluster.root))
    assert any(p.suffix in (".log", ".err", ".out") for p in files)
    forms = key_forms(world.keys)
    for path, data in files.items():
        assert not any(form in data for form in forms), path


def test_ray_rejects_what_the_in_process_engine_rejects(
    world: World, ray_address: str, tmp_path: Path
) -> None:
    recorded_session(world, world.device())
    corrupt = world.device()
    corrupt.give(at(0))
    raw = bytearray(corrupt.bundle(typed("x", at(1)), secrets.token_hex(16)))
    raw[len(raw) // 2] ^= 0x01
    world.collector.upload(corrupt, bytes(raw), name=hashlib.sha256(b"x").hexdigest())
    world.collector.upload(corrupt, bytes(raw))
    world.collector.upload(corrupt, bytes(raw[:200]))
    sealed = world.device()
    sealed.give(at(0))
    other = generate(tmp_path / "other-keys")
    world.collector.upload(
        sealed, sealed.bundle(typed("x", at(1)), secrets.token_hex(16), org=other)
    )
    gap = world.device()
    gap.give(at(0))
    gap.bundle()  # never stored
    gap.act("recording.paused", at(1), until=None)
    world.collector.upload(gap, gap.bundle())
    rhythm = world.device()
    rhythm.give(at(0), ALL)  # no typing_rhythm, yet raw timing
    events = [Event(ns(at(1)), Kind.FOCUS, app="gedit"), *typed("hello", at(1.5))]
    world.collector.upload(rhythm, rhythm.bundle(events, secrets.token_hex(16), timing="raw"))
    here, on_ray = both(world, ray_address)
    assert sorted(rejected(here).values()) == [
        "bad-signature",
        "ledger-gap",
        "name-mismatch",
        "raw-timing",
        "truncated",
        "wrong-org-key",
    ]
    assert on_ray.as_dict() == here.as_dict()
    assert dataset(world, world.root / "on-ray") == dataset(world, world.out)


def test_ray_with_another_organisations_keys_rejects_alike(
    world: World, ray_address: str, tmp_path: Path
) -> None:
    recorded_session(world, world.device())
    generate(tmp_path / "wrong")
    here, on_ray = both(world, ray_address, keys=tmp_path / "wrong")
    assert set(rejected(here).values()) == {"wrong-org-key"}
    assert on_ray.as_dict() == here.as_dict()


def test_command_ingests_on_ray_at_an_address(
    world: World, ray_address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded_session(world, world.device())
    argv = ["ingest", "--from", str(world.source), "--keys", str(world.keys), "--quiet", "--json"]
    assert run_command([*argv, "--out", str(world.out)]) == 0
    here = json.loads(capsys.readouterr().out)
    on_ray = [*argv, "--out", str(world.root / "on-ray"), "--engine", "ray"]
    assert run_command([*on_ray, "--address", ray_address]) == 0
    assert json.loads(capsys.readouterr().out) == here
    with pytest.raises(UsageError, match="--engine ray"):
        run_command([*argv, "--out", str(world.out), "--address", ray_address])


def test_an_address_where_no_cluster_answers_is_a_usage_error(world: World, tmp_path: Path) -> None:
    recorded_session(world, world.device())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{s.getsockname()[1]}"  # bound, not listening: refused
        with pytest.raises(UsageError, match=f"nothing answers at {closed}"):
            ingest(str(world.source), world.keys, world.out, engine="ray", address=closed)


def test_ray_passes_over_an_erased_subjects_bundles(world: World, ray_address: str) -> None:
    ann, bob = world.device(), world.device()
    recorded_session(world, ann)
    recorded_session(world, bob)
    world.ingest()
    erase(ann.subject, str(world.source), world.keys, world.out)
    ann.act("recording.paused", at(30), until=None)
    world.collector.upload(ann, ann.bundle())  # the device uploads again
    world.out = world.root / "after-erasure"  # both engines into a new dataset
    here, on_ray = both(world, ray_address)
    assert here.ok
    assert on_ray.as_dict() == here.as_dict()
    on_ray_rows = dataset(world, world.root / "on-ray")
    assert {row["subject"] for row in on_ray_rows["events"]} == {bob.subject}
    assert on_ray_rows == dataset(world, world.out)


def iceberg_rows(out: Path, catalog: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Both tables' rows of the Iceberg dataset at `out`, as pyiceberg scans them, in order."""
    opened = open_catalog(out, catalog, create=False)
    try:
        return {
            name: in_order(open_table(opened, name).scan().to_arrow().to_pylist())
            for name in ("events", "actions")
        }
    finally:
        opened.engine.dispose()


#: What differs between two datasets whoever wrote them: each record's chain
#: (signature, previous hash, time), and the digests and snapshot ids, which
#: name what Iceberg makes at random (table UUIDs, file names, snapshot ids).
PER_DATASET = {"sig", "prev", "time", "digest", "snapshot"}


def acts(out: Path) -> list[dict[str, Any]]:
    """The records of the org ledger next to the dataset at `out`, with what
    differs per dataset replaced by its field's name (so it is still there)."""
    lines = default_path(out).read_text().splitlines()[1:]
    return [
        {k: (k if k in PER_DATASET else v) for k, v in json.loads(line).items()} for line in lines
    ]


def manifest(out: Path) -> tuple[str, dict[str, Any]]:
    """The SHA-256 of the dataset's manifest, and the manifest but an Iceberg
    dataset's catalog (its URI, its tables' UUIDs)."""
    data = (out / "_cleartrace" / "manifest.json").read_bytes()
    doc = json.loads(data)
    if "catalog" in doc:
        assert set(doc.pop("catalog")["tables"]) == {"events", "actions"}
    return hashlib.sha256(data).hexdigest(), doc


def test_ray_writes_the_iceberg_rows_and_receipts_the_in_process_engine_writes(
    world: World, ray_address: str, postgres: Postgres
) -> None:
    """`--table iceberg` in-process (the default SQLite catalog) and on Ray (a
    PostgreSQL catalog), a run and then a withdrawal's run: the same rows in
    each table, the same manifest but for the catalog, the same ingest records
    and `table.purged` receipts in each org ledger, the canary gone from both."""
    device, even = world.device(), world.device()
    canary_session(world, device)
    session, _, _ = recorded_session(world, even)
    even.redact(session, at(1.4), at(2), events=4)
    world.collector.upload(even, even.bundle())
    on_ray = world.root / "on-ray"
    catalog = postgres.new_database().replace("postgresql://", "postgresql+psycopg://", 1)
    for step in ("first", "withdrawn"):
        if step == "withdrawn":
            withdraw = {"categories": ["keys", "window_titles"], "policy": POLICY}
            device.act("consent.withdrawn", at(60), **withdraw)
            world.collector.upload(device, device.bundle())
        here = ingest(str(world.source), world.keys, world.out, table="iceberg")
        there = ingest(
            str(world.source), world.keys, on_ray, table="iceberg", catalog=catalog,
            engine="ray", address=ray_address,
        )  # fmt: skip
        assert here.ok
        assert there.as_dict() == here.as_dict()
        seen = iceberg_rows(world.out)
        assert seen["events"]
        assert seen["actions"]
        assert iceberg_rows(on_ray, catalog) == seen
        (digest, doc), (ray_digest, ray_doc) = manifest(world.out), manifest(on_ray)
        assert ray_doc == doc
        records = acts(world.out)
        assert acts(on_ray) == records
        runs = [json.loads(line) for line in default_path(world.out).read_text().splitlines()]
        assert runs[-1]["digest"] == digest
        ray_runs = default_path(on_ray).read_text().splitlines()
        assert json.loads(ray_runs[-1])["digest"] == ray_digest
    assert here.dropped["withdrawn"] == 2 * len(CANARY)
    purged = [r for r in records if r["kind"] == "table.purged"]
    assert [r["table"] for r in purged] == ["events", "actions"] * 2
    assert [r["kind"] for r in records].count("ingest.run") == 2
    assert canary_places(world.out, CANARY) == canary_places(on_ray, CANARY) == []


def _scenario(world: World) -> tuple[Device, Device, Device, str, str]:
    """Devices with a withdrawal, a deletion, a pause and a redaction, uploaded twice."""
    a, b, c = world.device(), world.device(), world.device()
    recorded_session(world, a)
    session_b, _, _ = recorded_session(world, b)
    session_c, _, _ = recorded_session(world, c)
    return a, b, c, session_b, session_c


def _later(world: World, a: Device, b: Device, c: Device, session_b: str, session_c: str) -> None:
    """The devices' next uploads: a withdrawal, a deletion, a pause and a redaction."""
    a.act("consent.withdrawn", at(60), categories=["keys"], policy=POLICY)
    world.collector.upload(a, a.bundle())
    b.act("session.deleted", at(60), session=session_b)
    world.collector.upload(b, b.bundle())
    c.act("recording.paused", at(3), until=None)
    c.redact(session_c, at(1.4), at(2), events=4)
    world.collector.upload(c, c.bundle())


def test_ray_matches_in_process_on_an_iceberg_table_run_after_run(
    world: World, ray_address: str
) -> None:
    """Withdrawal, deletion, pause and redaction on Iceberg tables: the same
    summary and rows from both engines, on the first run and the next."""
    parts = _scenario(world)
    ray_out = world.root / "on-ray"
    for step in range(2):
        if step:
            _later(world, *parts)
        here = ingest(str(world.source), world.keys, world.out, table="iceberg")
        on_ray = ingest(
            str(world.source), world.keys, ray_out, table="iceberg", engine="ray",
            address=ray_address,
        )  # fmt: skip
        assert here.ok
        assert on_ray.as_dict() == here.as_dict()
        for name in ("events", "actions"):
            assert sorted_rows(table_rows(ray_out, name)) == sorted_rows(
                table_rows(world.out, name)
            )


def test_ray_matches_in_process_when_a_device_vanishes(world: World, ray_address: str) -> None:
    """A device whose bundles and head are gone is refused alike (bundles-missing)."""
    gone, kept = world.device(), world.device()
    _, name, _ = recorded_session(world, gone)
    recorded_session(world, kept)
    ray_out = world.root / "on-ray"
    ingest(str(world.source), world.keys, world.out)
    ingest(str(world.source), world.keys, ray_out, engine="ray", address=ray_address)
    (world.source / "bundles" / f"{name}.ctb").unlink()
    (world.source / "heads" / f"{gone.hex}.json").unlink()
    here = ingest(str(world.source), world.keys, world.out)
    on_ray = ingest(str(world.source), world.keys, ray_out, engine="ray", address=ray_address)
    assert here.devices_rejected == {gone.fingerprint: "bundles-missing"}
    assert on_ray.as_dict() == here.as_dict()
