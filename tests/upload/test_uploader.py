"""The device's uploads against a real collector process on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import json
import random
import sqlite3
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import cleartrace.upload.client as client
from cleartrace.categories import Category
from cleartrace.consent.policy import DEFAULT_POLICY
from cleartrace.consent.signed_policy import active_policy, read_signed_policy
from cleartrace.consent.state import withdraw
from cleartrace.errors import UploadError, UsageError
from cleartrace.events import Kind
from cleartrace.home import Home
from cleartrace.org.ingest import ingest
from cleartrace.org.keys import load_private
from cleartrace.org.witness import load_public, verify_head
from cleartrace.paths import Paths
from cleartrace.review import approval, redaction
from cleartrace.store.outbox_rows import UPLOADED_AT, Queued
from cleartrace.upload.bundle import open_bundle, parse_bundle, verify_signature
from cleartrace.upload.enrolment import enrol, load_enrolment
from cleartrace.upload.outbox import Outbox
from cleartrace.upload.shredding import shred_expired
from cleartrace.upload.uploader import Retry, Uploader
from tests.support.orgkit import Org, approve, enrolled, lose_the_answer, make_org, record_session

NO_WAIT = Retry(attempts=2, base=0.01, cap=0.01)


def uploader(home: Home, retry: Retry = NO_WAIT) -> Uploader:
    return Uploader(home.paths, home.keys, retry=retry)


def kinds(home: Home) -> list[str]:
    return [r["kind"] for r in home.ledger.records()]


def queued(home: Home) -> list[Queued]:
    outbox = Outbox(home.paths.db)
    try:
        return outbox.queued()
    finally:
        outbox.close()


def test_an_approved_session_reaches_the_collector_and_opens_with_the_org_key(
    org: Org, device: Home
) -> None:
    session = record_session(device, 300)
    approve(device, session)
    report = uploader(device).run()
    assert report.sessions == [session]
    assert org.collector.bundles() == report.uploaded
    assert device.store.session(session).state == "uploaded"
    assert queued(device) == []
    # The ledger records the acknowledgement and the head the collector witnessed.
    last = device.ledger.records()[-1]
    assert last["kind"] == "bundle.uploaded"
    assert last["bundle"] == report.uploaded[0]
    head_file = json.loads(next((org.collector.data / "heads").glob("*.json")).read_text())
    assert last["witnessed"] == {"seq": head_file["seq"], "hash": head_file["hash"]}
    # What the organisation reads is what was recorded, in wall-clock time.
    raw = (org.collector.data / "bundles" / f"{report.uploaded[0]}.ctb").read_bytes()
    bundle = parse_bundle(raw)
    verify_signature(bundle)
    assert bundle.session == session
    assert bundle.header["counts"] == {"app_focus": 1, "keys": 600}
    body = open_bundle(bundle, load_private(org.keys_dir))
    stored = device.store.read_events(session)
    started, anchor = device.store.anchors(session)
    assert body.events.column("t_ns").to_pylist() == [e.t_ns + started - anchor for e in stored]
    assert body.events.column("a").to_pylist() == [e.a for e in stored]
    assert [r["kind"] for r in body.ledger][:3] == [
        "device.enrolled",
        "consent.given",
        "session.started",
    ]
    assert body.ledger[-1]["seq"] == bundle.head[0]


def test_only_approved_sessions_leave(org: Org, device: Home) -> None:
    pending = record_session(device)
    held = record_session(device)
    device.store.set_state(held, "held")
    report = uploader(device).run()
    assert report.sessions == []
    assert {device.store.session(s).state for s in (pending, held)} == {"pending", "held"}
    # The consent records still travel, in a ledger-only bundle.
    bundle = parse_bundle(
        (org.collector.data / "bundles" / f"{report.uploaded[0]}.ctb").read_bytes()
    )
    assert bundle.session is None
    assert bundle.header["events"] == 0


def test_nothing_new_means_no_bundle(org: Org, device: Home) -> None:
    uploader(device).run()
    before = org.collector.bundles()
    # The "bundle.uploaded" record alone does not cause another bundle.
    assert uploader(device).run().uploaded == []
    assert org.collector.bundles() == before


def test_a_collector_that_is_down_keeps_the_bundle_and_the_next_run_resumes(
    org: Org, device: Home
) -> None:
    session = record_session(device)
    approve(device, session)
    sleeps: list[float] = []
    org.collector.stop()
    up = Uploader(
        device.paths, device.keys, retry=Retry(attempts=3, base=0.5, cap=4), sleep=sleeps.append
    )
    with pytest.raises(UploadError, match="cannot reach the collector") as caught:
        up.run()
    assert caught.value.retryable
    assert len(sleeps) == 2
    assert all(0 <= s <= 4 for s in sleeps)
    assert device.store.session(session).state == "approved"
    # The collector answered the head query before it went down? No: nothing was built.
    org.collector.start()
    uploader(device).run()
    assert device.store.session(session).state == "uploaded"


def test_an_interrupted_upload_sends_the_same_bytes_after_a_restart(org: Org, device: Home) -> None:
    session = record_session(device)
    approve(device, session)
    # Build and queue, then lose the collector before the PUT.
    up = uploader(device)
    original_put = client.CollectorClient.put_bundle

    def unreachable(
        self: client.CollectorClient, name: str, data: bytes, device_key: Ed25519PrivateKey
    ) -> client.Ack:
        raise UploadError("cannot reach the collector (test)", retryable=True)

    client.CollectorClient.put_bundle = unreachable  # type: ignore[method-assign]
    try:
        with pytest.raises(UploadError):
            up.run()
    finally:
        client.CollectorClient.put_bundle = original_put  # type: ignore[method-assign]
    waiting = queued(device)
    assert [q.session_id for q in waiting] == [session]
    assert org.collector.bundles() == []
    report = Uploader(device.paths, device.keys, retry=NO_WAIT).run()  # "after a restart"
    assert report.uploaded[0] == waiting[0].name
    assert org.collector.bundles() == [waiting[0].name]
    assert queued(device) == []


def test_holding_or_redacting_drops_a_queued_bundle(device: Home) -> None:
    outbox = Outbox(device.paths.db)
    a, b = record_session(device), record_session(device)
    for s in (a, b):
        approve(device, s)
        outbox.add(f"{random.getrandbits(256):064x}", s, 1, b"sealed")
    assert len(outbox.queued()) == 2
    device.store.set_state(a, "held")
    device.store.redact(b, [1], method="match")
    assert outbox.queued() == []
    outbox.close()


def test_a_withdrawal_travels_in_a_ledger_only_bundle(org: Org, device: Home) -> None:
    uploader(device).run()
    withdraw(device.ledger, frozenset({Category.KEYS}), active_policy(device.paths))
    report = uploader(device).run()
    assert len(report.uploaded) == 1
    body = open_bundle(
        parse_bundle((org.collector.data / "bundles" / f"{report.uploaded[0]}.ctb").read_bytes()),
        load_private(org.keys_dir),
    )
    assert [r["kind"] for r in body.ledger] == ["bundle.uploaded", "consent.withdrawn"]


def test_a_ledger_rewritten_after_upload_is_refused_here_and_there(org: Org, device: Home) -> None:
    uploader(device).run()
    # Rewrite the witnessed record (as a restore from an old backup would).
    seq = device.ledger.records()[-2]["seq"]
    with sqlite3.connect(device.paths.db) as conn:
        conn.execute("UPDATE ledger SET hash=? WHERE seq=?", ("e" * 64, seq))
    withdraw(device.ledger, frozenset({Category.KEYS}), active_policy(device.paths))
    with pytest.raises(UploadError, match="does not extend the head the collector witnessed"):
        uploader(device).run()


def test_shredded_after_upload_when_the_policy_says_so(tmp_path: Path, private_home: Paths) -> None:
    org = make_org(tmp_path / "org", keep_uploaded_days=0)
    org.collector.start()
    try:
        home = enrolled(org, private_home)
        session = record_session(home)
        approve(home, session)
        report = uploader(home).run()
        assert report.shredded == [session]
        assert session not in {s.id for s in home.store.list_sessions()}
        assert kinds(home)[-1] == "session.shredded"
        home.close()
    finally:
        org.collector.stop()


def test_not_enrolled(private_home: Paths) -> None:
    home = Home.open(private_home, create=True)
    with pytest.raises(UsageError, match="not enrolled"):
        uploader(home).run()
    home.close()


def test_a_used_token_enrols_nothing(org: Org, private_home: Paths) -> None:
    token = org.collector.token()
    signed = read_signed_policy(org.policy.read_bytes())
    first = Home.open(private_home, create=True)
    enrol(first, org.collector.url, signed, token)
    first.close()
    other = Home.open(Paths(private_home.home.parent / "other", private_home.runtime), create=True)
    with pytest.raises(UploadError, match="401"):
        enrol(other, org.collector.url, signed, token)
    assert load_enrolment(other.paths) is None
    assert not (other.paths.home / "policy.json").exists()
    other.close()


def test_retry_delays_grow_and_are_jittered() -> None:
    retry = Retry(attempts=8, base=0.5, cap=10)
    rng = random.Random(1)  # noqa: S311 - jitter, not a secret
    delays = [[retry.delay(n, rng) for n in range(8)] for _ in range(200)]
    for n in range(8):
        column = [d[n] for d in delays]
        assert max(column) <= min(10, 0.5 * 2**n)
        assert len(set(column)) > 150  # jittered, not one fixed wait
    assert max(d[6] for d in delays) > 5  # grew beyond the first waits


def test_events_keep_their_kinds(org: Org, device: Home) -> None:
    session = record_session(device, 5)
    approve(device, session)
    name = uploader(device).run().uploaded[0]
    body = open_bundle(
        parse_bundle((org.collector.data / "bundles" / f"{name}.ctb").read_bytes()),
        load_private(org.keys_dir),
    )
    rows = body.events.to_pylist()
    assert rows[0]["kind"] == Kind.FOCUS
    assert rows[0]["app"] == "xterm"
    assert [r["kind"] for r in rows[1:3]] == [Kind.KEY_DOWN, Kind.KEY_UP]


def test_deleting_drops_a_queued_bundle_with_the_key(device: Home) -> None:
    outbox = Outbox(device.paths.db)
    session = record_session(device)
    approve(device, session)
    outbox.add("f" * 64, session, 1, b"sealed")
    device.store.delete_session(session)
    assert outbox.queued() == []
    outbox.close()


def test_sessions_recorded_before_enrolment_stay_here(org: Org, private_home: Paths) -> None:
    home = Home.open(private_home, create=True)
    earlier = record_session(home)
    approve(home, earlier)
    enrol(
        home, org.collector.url, read_signed_policy(org.policy.read_bytes()), org.collector.token()
    )
    later = record_session(home)
    approve(home, later)
    report = uploader(home).run()
    assert report.sessions == [later]
    assert home.store.session(earlier).state == "approved"
    home.close()


def dataset_sessions(org: Org, out: Path) -> dict[str | None, int]:
    summary = ingest(str(org.collector.data), org.keys_dir, out, formats=("parquet",))
    assert summary.rejected == []
    events = sorted((out / "events").rglob("*.parquet"))
    table = pq.read_table(events, partitioning=None) if events else None
    counts: dict[str | None, int] = {}
    for session in [] if table is None else table.column("session").to_pylist():
        counts[session] = counts.get(session, 0) + 1
    return counts


def test_a_session_held_after_a_lost_answer_leaves_the_dataset(
    org: Org, device: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = record_session(device, 50)
    approve(device, session)
    lose_the_answer(monkeypatch)
    with pytest.raises(UploadError):
        uploader(device).run()
    assert len(org.collector.bundles()) == 1  # it did arrive
    approval.hold(device.store, device.ledger, session)  # it still can: no answer came
    uploader(device).run()  # the hold travels in a ledger-only bundle
    assert dataset_sessions(org, tmp_path / "dataset") == {}


def test_a_session_redacted_after_a_lost_answer_is_in_the_dataset_once_as_redacted(
    org: Org, device: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = record_session(device, 50)  # a focus event and 100 key events
    approve(device, session)
    lose_the_answer(monkeypatch)
    with pytest.raises(UploadError):
        uploader(device).run()
    events = device.store.read_events(session)
    redaction.apply(device.store, device.ledger, redaction.by_match(session, events, "bc"))
    report = uploader(device).run()  # bundled again on the head the collector witnessed
    assert report.sessions == [session]
    assert len(org.collector.bundles()) == 2
    left = len(device.store.read_events(session))
    assert left == 101 - 8  # "bc" twice: four characters, a press and a release each
    assert dataset_sessions(org, tmp_path / "dataset") == {session: left}


def test_the_collector_signs_what_it_witnessed(org: Org, device: Home, tmp_path: Path) -> None:
    session = record_session(device)
    approve(device, session)
    uploader(device).run()
    witness = load_public(org.collector.data / "witness.pub")
    (head_file,) = (org.collector.data / "heads").glob("*.json")
    verify_head(json.loads(head_file.read_text()), witness)
    summary = ingest(
        str(org.collector.data),
        org.keys_dir,
        tmp_path / "dataset",
        formats=("parquet",),
        witness_key=org.collector.data,
    )
    assert summary.rejected == []
    assert summary.events_kept == len(device.store.read_events(session))


def test_a_session_the_person_deletes_while_it_is_being_shredded_is_ledgered_once(
    private_home: Paths,
) -> None:
    home = Home.open(private_home, create=True)
    person = Home.open(private_home, create=False)
    try:
        session = record_session(home)
        with sqlite3.connect(private_home.db) as conn:  # uploaded long ago
            conn.execute("UPDATE sessions SET state='uploaded' WHERE id=?", (session,))
            conn.execute("INSERT INTO meta(key, value) VALUES (?, 0)", (UPLOADED_AT + session,))
        conn.close()

        class PersonDeletesMeanwhile(Outbox):
            def uploaded_before(self, cutoff_ns: int) -> list[str]:
                due = super().uploaded_before(cutoff_ns)
                for sid in due:  # the person deletes it from the tray right now
                    person.store.delete_session(
                        sid,
                        lambda c, s=sid: person.ledger.append_in(c, "session.deleted", session=s),
                    )
                return due

        outbox = PersonDeletesMeanwhile(private_home.db)
        try:
            policy = dataclasses.replace(DEFAULT_POLICY, keep_uploaded_days=0)
            assert shred_expired(home.store, home.ledger, outbox, policy, time.time_ns()) == []
        finally:
            outbox.close()
        assert kinds(home).count("session.deleted") == 1
        assert "session.shredded" not in kinds(home)
    finally:
        person.close()
        home.close()
