"""A queued bundle leaves under the same consent rule a new bundle is built with,
and reading it does not take the store's write lock (real SQLite store)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from hashlib import sha256
from pathlib import Path

import pytest

from cleartrace.categories import USUAL
from cleartrace.consent.records import GENESIS
from cleartrace.consent.signed_policy import active_policy
from cleartrace.consent.state import give
from cleartrace.events import Event, Kind
from cleartrace.home import Home
from cleartrace.org.keys import OrgKeys, generate
from cleartrace.paths import Paths
from cleartrace.suites import X25519
from cleartrace.upload.bundle import build_bundle
from cleartrace.upload.events_arrow import encode_events
from cleartrace.upload.outbox import Outbox
from tests.support.orgkit import approve, record_session

#: A later policy's reference: a "no" to it is a refusal the device obeys now.
NEW_POLICY = {"id": "acme", "version": 2, "sha256": "3" * 64}


@pytest.fixture(scope="module")
def org_keys(tmp_path_factory: pytest.TempPathFactory) -> OrgKeys:
    return generate(tmp_path_factory.mktemp("keys") / "org", suite=X25519)


@pytest.fixture
def home(private_home: Paths) -> Iterator[Home]:
    made = Home.open(private_home, create=True)
    give(made.ledger, frozenset(USUAL), active_policy(private_home))
    yield made
    made.close()


def queue_key_bundle(home: Home, org_keys: OrgKeys) -> tuple[Outbox, str, bytes]:
    """An approved session's bundle holding key events, queued at the current head."""
    session = record_session(home, 3)
    approve(home, session)
    head = home.ledger.head()
    assert head is not None
    events = [Event(1_000, Kind.KEY_DOWN, 0x61), Event(2_000, Kind.KEY_UP, 0x61)]
    data = build_bundle(
        header_fields={
            "subject": "ab" * 16,
            "session": session,
            "interval": None,
            "created": "2026-12-02T12:00:00.000Z",
            "ledger": {
                "base": {"seq": 0, "hash": GENESIS},
                "head": {"seq": head[0], "hash": head[1]},
            },
            "policy": active_policy(home.paths).reference(),
            "counts": {"keys": 2},
            "events": 2,
            "redactions": [],
            "timing": "even",
        },
        ledger=home.ledger.records(),
        events_ipc=encode_events(events, 0),
        org_key=org_keys.bundle_public,
        device_key=home.keys.device,
    )
    outbox = Outbox(home.paths.db)
    name = sha256(data).hexdigest()
    assert outbox.add(name, session, head[0], data).size == len(data)
    return outbox, name, data


def test_a_refusal_after_a_bundle_was_queued_drops_it_as_building_would(
    home: Home, org_keys: OrgKeys
) -> None:
    outbox, name, _ = queue_key_bundle(home, org_keys)
    try:
        # A new policy asks again; the person says no to keys. A bundle built now
        # would leave without them (consent given now, consented.py)...
        home.ledger.append("consent.refused", categories=["keys"], policy=NEW_POLICY)
        # ...so the one built before does not leave either.
        assert outbox.bundle(name) is None
        assert outbox.queued() == []
    finally:
        outbox.close()


def test_a_bundle_of_categories_still_given_leaves_after_an_unrelated_refusal(
    home: Home, org_keys: OrgKeys
) -> None:
    outbox, name, data = queue_key_bundle(home, org_keys)
    try:
        home.ledger.append("consent.refused", categories=["scroll"], policy=NEW_POLICY)
        assert outbox.bundle(name) == data
    finally:
        outbox.close()


def test_a_queued_bundle_is_read_while_the_recorder_holds_the_write_lock(
    home: Home, org_keys: OrgKeys, tmp_path: Path
) -> None:
    outbox, name, data = queue_key_bundle(home, org_keys)
    writer = sqlite3.connect(home.paths.db, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # the recorder, mid-write
        assert outbox.bundle(name) == data
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        outbox.close()
