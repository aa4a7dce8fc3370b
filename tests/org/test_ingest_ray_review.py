"""Review: where the Ray engine's result differs from the in-process engine's
on the same store, or leaves content behind (a real local Ray cluster)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cleartrace.org.ingest import ingest
from tests.support.ingest_world import TYPED_TEXT, WINDOW_TITLE, World, at, recorded_session
from tests.support.ray_cluster import RayHead


def test_ray_reads_a_relative_store_path_as_the_in_process_engine_does(
    world: World, ray_address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`org ingest --from store --engine ray --address A`, run from the directory
    holding `store`: the workers must read the same store the driver listed."""
    recorded_session(world, world.device())
    monkeypatch.chdir(world.root)
    relative = os.path.relpath(world.source, world.root)
    here = ingest(relative, world.keys, world.out)
    assert here.ok and here.events_kept > 0
    rows = world.rows()
    # The same store again, now on Ray, into the same dataset: nothing changed.
    on_ray = ingest(relative, world.keys, world.out, engine="ray", address=ray_address)
    assert len(world.rows()) == len(rows)  # not emptied: each "unreadable" bundle drops its rows
    assert [r.reason for r in on_ray.rejected] == []
