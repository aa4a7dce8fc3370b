"""Ingest against a store whose witnessed heads were swapped, lowered or replayed.

Heads here are written by the collector's own head path (`Collector` over a
real collector.db and witness key, without HTTP); the store is a directory
that the tests change as someone with write access to it would.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from cleartrace.errors import UsageError
from cleartrace.formats import canonical
from cleartrace.org.blobstore import DirStore, bundle_key, head_key
from cleartrace.org.collector import Collector
from cleartrace.org.heads import ACCEPTED_HEADS
from cleartrace.org.ingest import ingest
from cleartrace.org.registry import Registry
from cleartrace.org.registry_db import DB_NAME
from cleartrace.org.witness import sign_head
from tests.support.head_witness import Witness, consented, key_rows, roll_back, withdraw_keys
from tests.support.ingest_world import POLICY, World, at, recorded_session, rejected


def test_a_replayed_older_head_rejects_the_device_and_keeps_the_withdrawal(
    world: World, witness: Witness
) -> None:
    device, _ = consented(world, witness)
    other, _ = consented(world, witness)
    assert witness.ingest().ok
    typed = key_rows(world)
    old_head = witness.head(device)
    newest = withdraw_keys(device, witness)
    assert witness.ingest().ok
    assert 0 < key_rows(world) < typed  # only `other`'s keys are left

    roll_back(world, witness, device, old_head, newest)
    summary = witness.ingest()
    assert summary.devices_rejected == {device.fingerprint: "head-rollback"}
    assert "older than the one an earlier ingest accepted" in summary.rejected[0].detail
    assert key_rows(world) == typed // 2  # `other`'s only: the device has no rows at all
    assert {r["device"] for r in world.rows()} == {other.hex[:16]}
    # And it stays refused while the store is rolled back: the accepted head is not lowered.
    assert witness.ingest().devices_rejected == {device.fingerprint: "head-rollback"}
    accepted = json.loads((world.out / ACCEPTED_HEADS).read_text())
    assert accepted["devices"][device.fingerprint]["head"]["counter"] == 3
    assert oct((world.out / ACCEPTED_HEADS).stat().st_mode & 0o777) == oct(0o600)


def test_an_older_head_put_back_over_intact_bundles_is_still_a_rollback(
    world: World, witness: Witness
) -> None:
    device, _ = consented(world, witness)
    old_head = witness.head(device)
    withdraw_keys(device, witness)
    assert witness.ingest().ok
    witness.put_head(device, old_head)
    assert witness.ingest().devices_rejected == {device.fingerprint: "head-rollback"}
    witness.collector.heads.rewrite()  # what the collector does at start and every recheck
    assert witness.ingest().ok


def test_another_devices_signed_head_copied_over_is_foreign(world: World, witness: Witness) -> None:
    device, name = consented(world, witness)
    other, _ = consented(world, witness)
    witness.put_head(device, witness.head(other))
    summary = witness.ingest()
    assert rejected(summary) == {name: "head-foreign"}
    assert summary.devices_rejected == {device.fingerprint: "head-foreign"}


def test_a_head_whose_counter_was_changed_is_forged(world: World, witness: Witness) -> None:
    device, name = consented(world, witness)
    assert witness.ingest().ok
    doc = json.loads(witness.head(device))
    witness.put_head(device, canonical({**doc, "counter": doc["counter"] + 5}))
    assert rejected(witness.ingest()) == {name: "head-forged"}


def test_two_heads_signed_with_one_counter_are_forged(world: World, witness: Witness) -> None:
    """Only a stolen witness key (or a collector bug) signs another head under a counter."""
    device, _ = consented(world, witness)
    assert witness.ingest().ok
    doc = {k: v for k, v in json.loads(witness.head(device)).items() if k != "sig"}
    newest = withdraw_keys(device, witness)
    again = {**json.loads(witness.head(device)), "counter": doc["counter"]}
    again.pop("sig")
    witness.put_head(device, sign_head(again, witness.key))
    summary = witness.ingest()
    assert summary.devices_rejected == {device.fingerprint: "head-forged"}
    assert newest in rejected(summary)


def test_with_the_registry_a_first_ingest_sees_the_rollback(
    world: World, witness: Witness, tmp_path: Path
) -> None:
    device, _ = consented(world, witness)
    old_head = witness.head(device)
    newest = withdraw_keys(device, witness)
    roll_back(world, witness, device, old_head, newest)
    # Without the registry (or an earlier run) a new dataset cannot tell.
    assert witness.ingest(tmp_path / "blind").ok
    summary = witness.ingest(heads_from=witness.data)
    assert summary.devices_rejected == {device.fingerprint: "head-rollback"}
    assert "the store's head file is older" in summary.rejected[0].detail
    assert world.rows() == []
    # The head file missing altogether is the same rollback; so is it without --witness-key.
    (world.source / head_key(device.hex)).unlink()
    unsigned = ingest(str(world.source), world.keys, tmp_path / "u", heads_from=witness.data)
    assert unsigned.devices_rejected == {device.fingerprint: "head-rollback"}


def test_with_the_registry_a_head_file_behind_it_over_intact_bundles_is_accepted(
    world: World, witness: Witness
) -> None:
    """A crash between the registry's commit and the head file, or a live upload in
    between: the bundles reach the registry's head, so nothing was lost."""
    device, _ = consented(world, witness)
    old_head = witness.head(device)
    withdraw_keys(device, witness)
    witness.put_head(device, old_head)
    summary = witness.ingest(heads_from=witness.data)
    assert summary.ok
    assert key_rows(world) == 0


def test_with_the_registry_a_device_it_never_witnessed_is_refused(
    world: World, witness: Witness
) -> None:
    stranger = world.device()  # never enrolled: its bundle and head were planted
    stranger.give(at(0))
    name = world.collector.upload(stranger, stranger.bundle())
    summary = ingest(str(world.source), world.keys, world.out, heads_from=witness.data)
    assert rejected(summary) == {name: "unwitnessed"}


def test_the_registry_and_head_file_disagreeing_on_one_counter_is_forged(
    world: World, witness: Witness
) -> None:
    device, name = consented(world, witness)
    doc = {k: v for k, v in json.loads(witness.head(device)).items() if k != "sig"}
    witness.put_head(device, sign_head({**doc, "seq": 1, "hash": "7" * 64}, witness.key))
    assert rejected(witness.ingest(heads_from=witness.data)) == {name: "head-forged"}


def test_without_the_witness_key_a_store_cut_back_is_a_ledger_rollback(world: World) -> None:
    device = world.device()
    recorded_session(world, device)
    old_head = world.collector.store.get(head_key(device.hex))
    device.act("consent.withdrawn", at(60), categories=["keys"], policy=POLICY)
    newest = world.collector.upload(device, device.bundle())
    assert world.ingest().ok
    world.collector.store.put(head_key(device.hex), old_head)
    (world.source / bundle_key(newest)).unlink()
    summary = world.ingest()
    assert summary.devices_rejected == {device.fingerprint: "ledger-rollback"}
    assert world.rows() == []


def test_version_1_heads_are_read_and_unknown_versions_refused(
    world: World, witness: Witness
) -> None:
    device, name = consented(world, witness)
    doc = {k: v for k, v in json.loads(witness.head(device)).items() if k not in ("sig", "v")}
    doc.pop("counter")
    witness.put_head(device, sign_head(doc, witness.key))  # as collectors before counters wrote
    assert witness.ingest().ok
    witness.put_head(device, sign_head({**doc, "v": 3, "counter": 9}, witness.key))
    summary = witness.ingest()
    assert rejected(summary) == {name: "head-unreadable"}
    assert "format version 3" in summary.rejected[0].detail
    # Once a counted head was accepted, a version-1 head is an old one put back.
    witness.collector.heads.rewrite()
    assert witness.ingest().ok
    witness.put_head(device, sign_head(doc, witness.key))
    assert witness.ingest().devices_rejected == {device.fingerprint: "head-rollback"}


def test_a_registry_from_before_counters_numbers_its_heads_on_opening(
    world: World, witness: Witness
) -> None:
    first, _ = consented(world, witness)
    second, _ = consented(world, witness)
    for device in (first, second):  # the head files such a collector wrote
        doc = json.loads(witness.head(device))
        old = {k: v for k, v in doc.items() if k not in ("v", "counter", "sig")}
        witness.put_head(device, sign_head(old, witness.key))
    witness.registry.close()
    conn = sqlite3.connect(witness.data / DB_NAME)
    conn.executescript(
        "ALTER TABLE devices DROP COLUMN head_counter; DROP TABLE witness; PRAGMA user_version=1;"
    )
    conn.close()
    witness.registry = Registry.open(witness.data)
    counters = {d.device: d.head_counter for d in witness.registry.devices()}
    assert sorted(counters.values()) == [1, 2]
    witness.collector = Collector(witness.registry, DirStore(world.source), witness=witness.key)
    assert witness.collector.heads.rewrite() == 2  # now signed with the counters
    withdraw_keys(first, witness)
    assert witness.registry.device(first.fingerprint).head_counter == 3  # type: ignore[union-attr]
    assert witness.ingest(heads_from=witness.data).ok


def test_a_damaged_accepted_heads_file_stops_the_run_with_the_fix(
    world: World, witness: Witness
) -> None:
    consented(world, witness)
    assert witness.ingest().ok
    state = world.out / ACCEPTED_HEADS
    doc = json.loads(state.read_text())
    for entry in doc["devices"].values():
        entry["ledger"]["seq"] = "many"
    state.write_text(json.dumps(doc))
    with pytest.raises(UsageError, match="ingest into a new dataset directory"):
        witness.ingest()
