"""Review: the store's other files ingest reads — head files and erasure
receipts — when they cannot be *read* (a missing mount, no permission, an S3
error): the same environment failure that now stops the run for a bundle
still silently changes the dataset here."""

from __future__ import annotations

import contextlib
from pathlib import Path

from cleartrace.errors import StoreError
from cleartrace.org.blobstore import bundle_key, erased_key, head_key
from cleartrace.org.subjects import erase
from tests.support.ingest_world import World, recorded_session


def _unmount(world: World, key: str) -> None:
    """The store's file `key` as a link into a mount that is not there: listed, but
    its bytes cannot be read (as `_unmount` in test_ingest_ray_failures.py)."""
    path = world.source / key
    path.unlink()
    path.symlink_to(world.root / "not-mounted" / Path(key).name)


def test_a_head_file_that_cannot_be_read_does_not_drop_its_devices_rows(
    world: World,
) -> None:
    """Ann's head file is on a mount missing from this host: ingest rejects Ann's
    device ('head-unreadable') and removes every row of hers from the dataset,
    where a bundle unreadable the same way stops the run and keeps them."""
    ann, bob = world.device(), world.device()
    recorded_session(world, ann)
    recorded_session(world, bob)
    assert world.ingest().ok
    before = sorted(r["subject"] for r in world.rows())
    assert ann.subject in before
    _unmount(world, head_key(ann.hex))
    with contextlib.suppress(StoreError):  # stopping, as for a bundle, keeps the rows too
        world.ingest()
    assert sorted(r["subject"] for r in world.rows()) == before


def test_an_erasure_receipt_that_cannot_be_read_does_not_bring_the_subject_back(
    world: World,
) -> None:
    """Ann is erased; a bundle of hers is left in the store (the erasure was killed
    after its receipt, which is put first so that "what is left is passed over from
    now on", or her device uploaded again). The receipt then cannot be read for one
    run: ingest takes Ann as never erased and writes her rows back."""
    ann, bob = world.device(), world.device()
    _, name, _ = recorded_session(world, ann)
    recorded_session(world, bob)
    assert world.ingest().ok
    left = (world.source / bundle_key(name)).read_bytes()
    erase(ann.subject, str(world.source), world.keys, world.out)
    assert ann.subject not in {r["subject"] for r in world.rows()}
    world.collector.store.put(bundle_key(name), left)  # left by a killed erasure
    assert world.ingest().ok  # passed over while the receipt reads
    assert ann.subject not in {r["subject"] for r in world.rows()}
    _unmount(world, erased_key(ann.subject))
    with contextlib.suppress(StoreError):  # stopping is fine: not a silent comeback
        world.ingest()
    assert ann.subject not in {r["subject"] for r in world.rows()}
