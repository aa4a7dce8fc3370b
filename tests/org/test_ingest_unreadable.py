"""Store files that are listed but cannot be read (a missing mount, no
permission, a store error; or a directory planted at a bundle's name, never
readable): the run stops before the dataset changes, and its error names the
run and the way forward. A file read and failing its checks is a rejection
(tests/org/test_ingest.py), never a stop."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cleartrace.errors import StoreError
from cleartrace.org.blobstore import bundle_key, erased_key, head_key
from cleartrace.org.subjects import erase, export
from tests.support.ingest_world import World, recorded_session


def _unmount(world: World, key: str) -> None:
    """The store's file `key` as a link into a mount that is not there: listed, but
    its bytes cannot be read."""
    path = world.source / key
    path.unlink()
    path.symlink_to(world.root / "not-mounted" / Path(key).name)


def _plant_directory(world: World, name: str) -> None:
    """The bundle `name` replaced by a directory of that name: listed, never readable,
    whatever the mount, credentials or permissions."""
    path = world.source / bundle_key(name)
    path.unlink()
    path.mkdir()


def test_a_head_file_that_cannot_be_read_stops_ingest_and_keeps_its_devices_rows(
    world: World,
) -> None:
    ann, bob = world.device(), world.device()
    recorded_session(world, ann)
    recorded_session(world, bob)
    assert world.ingest().ok
    before = sorted(r["subject"] for r in world.rows())
    assert ann.subject in before
    _unmount(world, head_key(ann.hex))
    with pytest.raises(StoreError) as caught:
        world.ingest()
    assert "head file" in str(caught.value)
    assert sorted(r["subject"] for r in world.rows()) == before


def test_an_erasure_receipt_that_cannot_be_read_stops_ingest_not_brings_the_subject_back(
    world: World,
) -> None:
    """A bundle of an erased subject left in the store (an erasure killed after its
    receipt was put, or her device uploading again) is passed over while the receipt
    reads; a receipt that cannot be read stops the run instead of bringing her back."""
    ann, bob = world.device(), world.device()
    _, name, _ = recorded_session(world, ann)
    recorded_session(world, bob)
    assert world.ingest().ok
    left = (world.source / bundle_key(name)).read_bytes()
    erase(ann.subject, str(world.source), world.keys, world.out)
    assert ann.subject not in {r["subject"] for r in world.rows()}
    world.collector.store.put(bundle_key(name), left)
    assert world.ingest().ok
    assert ann.subject not in {r["subject"] for r in world.rows()}
    _unmount(world, erased_key(ann.subject))
    with pytest.raises(StoreError) as caught:
        world.ingest()
    assert "erasure receipt" in str(caught.value)
    assert ann.subject not in {r["subject"] for r in world.rows()}


def test_an_erasure_receipt_read_but_not_signed_erases_nothing(world: World) -> None:
    """Whoever can write the store cannot hide a subject by planting a receipt."""
    ann = world.device()
    recorded_session(world, ann)
    world.collector.store.put(erased_key(ann.subject), b'{"subject": "x", "devices": []}')
    assert world.ingest().ok
    assert ann.subject in {r["subject"] for r in world.rows()}


def test_erasing_one_subject_is_not_blocked_by_anothers_unreadable_bundle(
    world: World,
) -> None:
    ann, bob = world.device(), world.device()
    recorded_session(world, ann)
    _, bobs, _ = recorded_session(world, bob)
    assert world.ingest().ok
    _plant_directory(world, bobs)
    got = world.root / "ann.json"
    assert export(ann.subject, str(world.source), world.keys, world.out, got).bundles == 1
    erase(ann.subject, str(world.source), world.keys, world.out)
    assert ann.subject not in {r["subject"] for r in world.rows()}
    assert bob.subject in {r["subject"] for r in world.rows()}


def test_an_unreadable_bundle_of_unknown_owner_stops_erasure_naming_erasure(
    world: World,
) -> None:
    """A bundle not yet ingested may be the subject's: erasure stops, and says so
    as erasure (running ingest again would not erase anyone)."""
    ann, bob = world.device(), world.device()
    recorded_session(world, ann)
    assert world.ingest().ok
    _, bobs, _ = recorded_session(world, bob)
    _plant_directory(world, bobs)
    with pytest.raises(StoreError) as caught:
        erase(ann.subject, str(world.source), world.keys, world.out)
    message = str(caught.value)
    assert "ingest again" not in message, message
    assert "run erasure again" in message, message
    assert ann.subject in {r["subject"] for r in world.rows()}


def test_a_bundle_that_can_never_be_read_names_restoring_or_removing_it(world: World) -> None:
    """A directory planted at a bundle's name stops every ingest run for good; the
    error names the ways forward and what removing the bundle does."""
    recorded_session(world, world.device())
    _, name, _ = recorded_session(world, world.device())
    assert world.ingest().ok
    _plant_directory(world, name)
    for _ in range(2):
        with pytest.raises(StoreError) as caught:
            world.ingest()
    message = str(caught.value)
    assert re.search(r"restore \S+ from a backup", message), message
    assert "remove it from the store" in message, message
    assert "ledger-truncated" in message, message
    assert "rows" in message, message
