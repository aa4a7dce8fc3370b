"""A device's head lock whose PostgreSQL session ends *after* the accept
committed (a server restart, a failover, pg_terminate_backend): the holder goes
on to write the head file without the lock; it must not leave the head file
ingest reads behind the state, over the newer one another collector of the
fleet wrote meanwhile."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import psycopg

from cleartrace.org.blobstore import DirStore, head_key
from cleartrace.org.state import open_state
from cleartrace.org.witness import load_or_create
from cleartrace.org.witnessing import HeadWitness
from cleartrace.upload.bundle import parse_bundle
from tests.support.ingest_world import World, at
from tests.support.postgres import Postgres


class _PausingStore(DirStore):
    """The same store directory; `before_head` runs before a head file is written."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.before_head: list[object] = []

    def put(self, key: str, data: bytes | bytearray, *, durable: bool = True) -> None:
        if key.startswith("heads/") and self.before_head:
            hook = self.before_head.pop()
            assert callable(hook)
            hook()
        super().put(key, data, durable=durable)


def test_a_head_file_is_not_written_over_a_newer_one_after_the_lock_was_lost(
    world: World, postgres: Postgres
) -> None:
    url = postgres.new_database()
    one = open_state(world.root / "a", url)
    two = open_state(world.root / "b", url)
    key = load_or_create(world.root / "a")
    (world.root / "b").mkdir(exist_ok=True)
    for name in ("witness.key", "witness.pub"):
        (world.root / "b" / name).write_bytes((world.root / "a" / name).read_bytes())
        (world.root / "b" / name).chmod(0o600)
    store_a = _PausingStore(world.source)
    a = HeadWitness(one, store_a, key)
    b = HeadWitness(two, DirStore(world.source), load_or_create(world.root / "b"))
    try:
        device = world.device()
        (token,) = one.issue_tokens(1)
        one.enroll(token, device.key.public_key().public_bytes_raw())
        device.give(at(0))
        first = parse_bundle(device.bundle())
        device.act("session.started", at(0.5), session="5" * 32)
        second = parse_bundle(device.bundle())

        def meanwhile() -> None:
            # A's lock session ends after its accept committed; B, another process of
            # the fleet, then takes the lock and accepts the next bundle.
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND granted"
                )
            done = threading.Thread(target=b.accept, args=(second,))
            done.start()
            done.join(timeout=30)

        store_a.before_head.append(meanwhile)
        a.accept(first)
        row = two.device(device.fingerprint)
        assert row is not None
        assert row.head.seq == second.head[0]  # B's accept went through
        written = json.loads(world.collector.store.get(head_key(device.hex)))
        assert written["seq"] == row.head.seq, "the head file is behind the state"
    finally:
        one.close()
        two.close()
