"""The collector's head-writing path over an ingest world, without HTTP: a real
registry (collector.db) and witness key sign the heads `World`'s store holds,
as `cleartrace org serve` would on each upload.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cleartrace.org.blobstore import DirStore, bundle_key, head_key
from cleartrace.org.collector import Collector
from cleartrace.org.ingest import ingest
from cleartrace.org.ingest_summary import IngestSummary
from cleartrace.org.registry import Registry
from cleartrace.org.witness import load_or_create
from cleartrace.upload.bundle import parse_bundle
from tests.support.ingest_world import POLICY, Device, World, at, session_events


class Witness:
    """The collector's head-writing path: registry, witness key, and the store."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.data = world.root / "collector"
        self.registry = Registry.open(self.data)
        self.key = load_or_create(self.data)
        self.collector = Collector(self.registry, DirStore(world.source), witness=self.key)

    def enrol(self, device: Device) -> None:
        (token,) = self.registry.issue_tokens(1)
        self.registry.enroll(token, device.key.public_key().public_bytes_raw())

    def upload(self, device: Device, raw: bytes) -> str:
        bundle = parse_bundle(raw)
        self.collector.heads.accept(bundle)
        return bundle.name

    def head(self, device: Device) -> bytes:
        return self.world.collector.store.get(head_key(device.hex))

    def put_head(self, device: Device, raw: bytes) -> None:
        self.world.collector.store.put(head_key(device.hex), raw)

    def ingest(self, out: Path | None = None, **kw: Any) -> IngestSummary:
        w = self.world
        return ingest(
            str(w.source), w.keys, out or w.out, witness_key=self.data / "witness.pub", **kw
        )


def consented(world: World, witness: Witness) -> tuple[Device, str]:
    """An enrolled device that recorded a session (typed keys) and uploaded it."""
    device = world.device()
    witness.enrol(device)
    device.give(at(0))
    session = "5" * 32
    device.act("session.started", at(0.5), session=session)
    device.act("session.ended", at(17), session=session)
    name = witness.upload(device, device.bundle(session_events(), session))
    return device, name


def withdraw_keys(device: Device, witness: Witness) -> str:
    device.act("consent.withdrawn", at(60), categories=["keys"], policy=POLICY)
    return witness.upload(device, device.bundle())


def key_rows(world: World) -> int:
    return sum(1 for r in world.rows() if r["category"] == "keys")


def roll_back(world: World, witness: Witness, device: Device, old_head: bytes, newest: str) -> None:
    """What whoever can write the store does: the old head file back, the newest bundle gone."""
    witness.put_head(device, old_head)
    (world.source / bundle_key(newest)).unlink()
