"""The dataset's memory of accepted heads, against someone who can write the store
and crash or trick ingest: it is saved before the rows it protects, a missing
file or a vanished device is never taken for a new one, and ingest never
writes into the collector's data directory.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from cleartrace.commands.ingest import summary_text
from cleartrace.errors import DeviceRefused, UsageError
from cleartrace.org.blobstore import bundle_key, head_key
from cleartrace.org.dataset import MANIFEST
from cleartrace.org.heads import ACCEPTED_HEADS, AcceptedHeads, HeadChecks
from cleartrace.org.ingest import ingest
from cleartrace.org.registry_db import DB_NAME, read_devices
from cleartrace.org.witness import sign_head
from tests.support.cli import ct
from tests.support.head_witness import Witness, consented, key_rows, roll_back, withdraw_keys
from tests.support.ingest_world import World


def ingest_killed_at(world: World, witness: Witness, point: str) -> None:
    """Run the real command, killed with SIGKILL at fault point `point`."""
    done = ct(
        *("org", "ingest", "--quiet"),
        *("--from", str(world.source), "--keys", str(world.keys), "--out", str(world.out)),
        *("--witness-key", str(witness.data / "witness.pub")),
        env={**os.environ, "CLEARTRACE_FAULT_POINT": point, "CLEARTRACE_TESTING_FAULTS": "1"},
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr


# -- saved before the rows it protects ------------------------------------------------


def test_ingest_killed_after_applying_a_withdrawal_cannot_be_rolled_back(
    world: World, witness: Witness
) -> None:
    device, _ = consented(world, witness)
    assert witness.ingest().ok
    old_head = witness.head(device)
    newest = withdraw_keys(device, witness)
    ingest_killed_at(world, witness, "ingest.saved")  # the device's rows and manifest written
    assert key_rows(world) == 0  # the withdrawal is in the dataset

    roll_back(world, witness, device, old_head, newest)
    summary = witness.ingest()
    assert summary.devices_rejected == {device.fingerprint: "head-rollback"}
    assert key_rows(world) == 0


def test_no_dataset_file_changes_while_the_accepted_heads_cannot_be_saved(
    world: World, witness: Witness
) -> None:
    device, _ = consented(world, witness)
    assert witness.ingest().ok
    withdraw_keys(device, witness)
    manifest = (world.out / MANIFEST).read_bytes()
    files = {p: p.read_bytes() for p in world.out.rglob("*.parquet")}
    # A directory where the accepted heads' temporary file goes: the save fails.
    state = world.out / ACCEPTED_HEADS
    (state.with_name(f".{state.name}.{os.getpid()}.tmp") / "x").mkdir(parents=True)
    with pytest.raises(UsageError):
        witness.ingest()
    assert (world.out / MANIFEST).read_bytes() == manifest
    assert {p: p.read_bytes() for p in world.out.rglob("*.parquet")} == files


# -- a deleted accepted-heads file ----------------------------------------------------


def test_a_deleted_accepted_heads_file_stops_the_run(world: World, witness: Witness) -> None:
    device, _ = consented(world, witness)
    assert witness.ingest().ok
    old_head = witness.head(device)
    newest = withdraw_keys(device, witness)
    assert witness.ingest().ok
    (world.out / ACCEPTED_HEADS).unlink()
    roll_back(world, witness, device, old_head, newest)
    with pytest.raises(UsageError, match="--heads-from"):
        witness.ingest()
    assert key_rows(world) == 0
    # With the collector's registry as the authority the run can go on, and refuses.
    summary = witness.ingest(heads_from=witness.data)
    assert summary.devices_rejected == {device.fingerprint: "head-rollback"}
    assert key_rows(world) == 0


def test_a_dataset_from_before_accepted_heads_is_still_read(world: World, witness: Witness) -> None:
    consented(world, witness)
    assert witness.ingest().ok
    manifest = json.loads((world.out / MANIFEST).read_text())
    manifest.pop("heads_tracked")
    (world.out / MANIFEST).write_text(json.dumps(manifest))
    (world.out / ACCEPTED_HEADS).unlink()
    assert witness.ingest().ok
    assert (world.out / ACCEPTED_HEADS).is_file()


# -- a device whose bundles vanished --------------------------------------------------


def test_a_device_removed_from_the_store_is_reported_not_forgotten(
    world: World, witness: Witness
) -> None:
    device, name = consented(world, witness)
    other, _ = consented(world, witness)
    assert witness.ingest().ok
    remembered = json.loads((world.out / ACCEPTED_HEADS).read_text())["devices"]
    (world.source / bundle_key(name)).unlink()
    (world.source / head_key(device.hex)).unlink()
    summary = witness.ingest()
    assert not summary.ok
    assert summary.devices_rejected == {device.fingerprint: "bundles-missing"}
    assert {r["device"] for r in world.rows()} == {other.hex[:16]}
    kept = json.loads((world.out / ACCEPTED_HEADS).read_text())["devices"]
    assert kept[device.fingerprint] == remembered[device.fingerprint]
    assert f"rejected: device {device.fingerprint[:23]}: bundles-missing" in (summary_text(summary))


def test_with_the_registry_a_witnessed_device_without_bundles_is_reported(
    world: World, witness: Witness, tmp_path: Path
) -> None:
    device, name = consented(world, witness)
    (world.source / bundle_key(name)).unlink()
    (world.source / head_key(device.hex)).unlink()
    summary = witness.ingest(tmp_path / "fresh", heads_from=witness.data)
    assert summary.devices_rejected == {device.fingerprint: "bundles-missing"}
    assert not summary.ok


# -- the registry, read without writing ------------------------------------------------


def test_reading_a_closed_registry_leaves_no_file_behind(world: World, witness: Witness) -> None:
    device, _ = consented(world, witness)
    witness.registry.close()
    assert not (witness.data / f"{DB_NAME}-wal").exists()
    before = sorted(p.name for p in witness.data.iterdir())
    devices = read_devices(witness.data)
    assert devices[device.fingerprint].head_counter == 1
    assert sorted(p.name for p in witness.data.iterdir()) == before


def test_reading_an_open_registry_sees_its_latest_head(world: World, witness: Witness) -> None:
    device, _ = consented(world, witness)
    withdraw_keys(device, witness)
    assert read_devices(witness.data)[device.fingerprint].head_counter == 2


# -- what a head file may put into messages ---------------------------------------------


def refusal(witness: Witness, world: World, device_fp: str, doc: object) -> DeviceRefused:
    checks = HeadChecks(AcceptedHeads(world.out), witness.key.public_key())
    with pytest.raises(DeviceRefused) as refused:
        checks.witnessed(device_fp, doc)  # type: ignore[arg-type]
    return refused.value


def test_unsigned_junk_is_forged_and_none_of_it_reaches_the_message(
    world: World, witness: Witness
) -> None:
    fp = "sha256:" + "a" * 64
    huge = "Q" * 100_000
    for doc in ({"v": huge}, {"v": 2, "device": huge, "seq": 1}, {"sig": 5}, {"counter": []}):
        refused = refusal(witness, world, fp, doc)
        assert refused.reason == "head-forged"
        assert "Q" not in refused.detail
        assert len(refused.detail) < 200


def test_a_signed_head_with_an_unknown_version_shows_only_a_small_number(
    world: World, witness: Witness
) -> None:
    fp = "sha256:" + "a" * 64
    big = {"v": "Q" * 5000, "device": fp, "seq": 1, "hash": "0" * 64}
    refused = refusal(witness, world, fp, json.loads(sign_head(big, witness.key)))
    assert refused.reason == "head-unreadable"
    assert "Q" not in refused.detail
    three = json.loads(sign_head({**big, "v": 3}, witness.key))
    assert "format version 3" in refusal(witness, world, fp, three).detail


def test_without_the_witness_key_an_unverified_head_names_no_device_and_decides_nothing(
    world: World, witness: Witness, tmp_path: Path
) -> None:
    device, _ = consented(world, witness)
    old_head = witness.head(device)
    newest = withdraw_keys(device, witness)
    roll_back(world, witness, device, old_head, newest)
    # The old head put back with a counter raised and no signature: without the
    # witness key it cannot be verified, so the registry decides (a rollback).
    doc = {k: v for k, v in json.loads(old_head).items() if k != "sig"}
    witness.put_head(device, json.dumps({**doc, "counter": 99}).encode())
    summary = ingest(str(world.source), world.keys, tmp_path / "d", heads_from=witness.data)
    assert summary.devices_rejected == {device.fingerprint: "head-rollback"}
    witness.put_head(device, json.dumps({**doc, "device": "sha256:" + "Q" * 60}).encode())
    summary = ingest(str(world.source), world.keys, tmp_path / "d", heads_from=witness.data)
    assert summary.devices_rejected == {device.fingerprint: "head-foreign"}
    assert "Q" not in summary.rejected[0].detail


# -- an upload while ingest runs ------------------------------------------------------


def test_a_signed_head_newer_than_the_registry_read_is_taken(
    world: World, witness: Witness
) -> None:
    """Ingest reads the registry, then the store: an upload in between leaves a
    head file one counter ahead of the registry it read."""
    device, _ = consented(world, witness)
    snapshot = read_devices(witness.data)
    withdraw_keys(device, witness)
    checks = HeadChecks(AcceptedHeads(world.out), witness.key.public_key(), snapshot)
    head = checks.witnessed(device.fingerprint, json.loads(witness.head(device)))
    assert head is not None
    assert (head.counter, head.trusted, head.store_behind) == (2, True, False)
    assert head.seq == device.witnessed[0] > snapshot[device.fingerprint].head.seq


def test_the_witness_counter_needs_no_sqlite_newer_than_debian_and_ubuntu_lts(
    world: World, witness: Witness
) -> None:
    """UPDATE ... RETURNING needs SQLite 3.35; Ubuntu 20.04 ships 3.31."""
    statements: list[str] = []
    witness.registry._conn.set_trace_callback(statements.append)
    consented(world, witness)
    assert any("UPDATE witness" in s for s in statements)
    assert [s for s in statements if "RETURNING" in s.upper()] == []
