"""Review: a bundle that can never be read (a directory, a broken disk block, a
name planted by whoever may write the store) now stops ingest and subject
erasure. The error must lead the operator somewhere: for erasure it must name
erasure, not ingest; and for a bundle no store fix can make readable, some way
forward beyond "make the store readable"."""

from __future__ import annotations

import re

import pytest

from cleartrace.errors import StoreError
from cleartrace.org.subjects import erase
from tests.support.ingest_world import World, recorded_session


def _plant_directory(world: World, name: str) -> None:
    """The bundle `name` replaced by a directory of that name: listed, never readable,
    whatever the mount, credentials or permissions."""
    path = world.source / "bundles" / f"{name}.ctb"
    path.unlink()
    path.mkdir()


def test_erasing_one_subject_blocked_by_anothers_unreadable_bundle_names_erasure(
    world: World,
) -> None:
    """Bob's bundle cannot be read: erasing Ann (who asked) stops, and the error tells
    the operator to 'run ingest again', which neither erases Ann nor fixes anything."""
    ann, bob = world.device(), world.device()
    recorded_session(world, ann)
    _, bobs, _ = recorded_session(world, bob)
    assert world.ingest().ok
    _plant_directory(world, bobs)
    with pytest.raises(StoreError) as caught:
        erase(ann.subject, str(world.source), world.keys, world.out)
    message = str(caught.value)
    assert "ingest" not in message, message
    assert "eras" in message, message


def test_a_bundle_that_can_never_be_read_has_a_way_forward_named(world: World) -> None:
    """A planted directory at a bundle's name stops every ingest run for good; the
    error only says to fix the store's mount, credentials or permissions, none of
    which helps, and names no way to set that bundle aside."""
    recorded_session(world, world.device())
    _, name, _ = recorded_session(world, world.device())
    assert world.ingest().ok
    _plant_directory(world, name)
    for _ in range(2):  # again and again: it never finishes
        with pytest.raises(StoreError) as caught:
            world.ingest()
    message = str(caught.value)
    assert re.search(r"\b(remove|move|delete|set aside|quarantine)", message), message
