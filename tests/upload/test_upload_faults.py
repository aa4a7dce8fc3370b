"""What the uploader does when things go wrong at the worst moment."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from cleartrace.categories import Category
from cleartrace.consent.signed_policy import active_policy, install_policy, read_signed_policy
from cleartrace.consent.state import give, withdraw
from cleartrace.errors import PolicyRefused, UploadBusy, UploadError
from cleartrace.home import Home
from cleartrace.org.keys import generate, load_private
from cleartrace.org.policy_signing import init_policy
from cleartrace.paths import Paths, exclusive_lock
from cleartrace.review import approval, redaction
from cleartrace.store.sessions import Store
from cleartrace.upload.background import BackgroundUploader
from cleartrace.upload.bundle import build_bundle, open_bundle, parse_bundle
from cleartrace.upload.enrolment import enrol
from cleartrace.upload.outbox import Outbox
from cleartrace.upload.upload_auth import AUTH_HEADER, sign_upload
from cleartrace.upload.uploader import Retry, Uploader
from tests.support.notice import EXAMPLE_NOTICE
from tests.support.orgkit import Org, approve, enrolled, make_org, record_session

NO_WAIT = Retry(attempts=2, base=0.01, cap=0.01)


def uploader(home: Home) -> Uploader:
    return Uploader(home.paths, home.keys, retry=NO_WAIT)


def test_a_redaction_while_the_bundle_was_built_keeps_it_home(device: Home) -> None:
    session = record_session(device)
    approve(device, session)
    head = device.ledger.head()
    assert head is not None
    events = device.store.read_events(session)
    redaction.apply(device.store, device.ledger, redaction.by_match(session, events, "abc"))
    outbox = Outbox(device.paths.db)
    # A bundle built on the ledger as it was before the redaction.
    assert outbox.add("e" * 64, session, head[0], b"sealed").size == 0
    assert outbox.queued() == []
    assert outbox.add("f" * 64, session, head[0] + 1, b"sealed").size == 6  # built after it
    outbox.close()


def test_a_hold_is_not_overwritten_by_an_approval_read_before_it(
    device: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = record_session(device)
    stale = device.store.session(session)  # "pending", as the hold period saw it
    approval.hold(device.store, device.ledger, session)
    other = Store.open(device.paths, device.keys)
    monkeypatch.setattr(other, "session", lambda _id: stale)
    assert other.set_state(session, "approved") is False
    other.close()
    assert device.store.session(session).state == "held"


def test_a_refused_bundle_does_not_hold_back_a_withdrawal(
    tmp_path: Path, private_home: Paths
) -> None:
    org = make_org(tmp_path / "org", extra=("--max-bundle-mb", "0.01"))
    org.collector.start()
    try:
        home = enrolled(org, private_home)
        give(home.ledger, frozenset(Category), active_policy(private_home))
        session = record_session(home, 20_000)  # well over 10 kB sealed
        approve(home, session)
        with pytest.raises(UploadError, match="refused 1 bundle"):
            uploader(home).run()
        # A category the refused bundle does not hold: it stays queued as it is.
        withdraw(home.ledger, frozenset({Category.MOUSE_MOVE}), active_policy(private_home))
        with pytest.raises(UploadError, match="refused 1 bundle"):
            uploader(home).run()
        # The withdrawal reached the organisation although the session did not.
        keys = load_private(org.keys_dir)
        kinds = [
            r["kind"]
            for name in org.collector.bundles()
            for r in open_bundle(
                parse_bundle((org.collector.data / "bundles" / f"{name}.ctb").read_bytes()), keys
            ).ledger
        ]
        assert "consent.withdrawn" in kinds
        assert home.store.session(session).state == "approved"
        home.close()
    finally:
        org.collector.stop()


def test_a_swapped_policy_uploads_nothing(org: Org, device: Home, tmp_path: Path) -> None:
    other_keys = tmp_path / "other"
    generate(other_keys)
    foreign = init_policy(
        other_keys, org.collector.url, tmp_path / "foreign.json", notice=EXAMPLE_NOTICE
    )
    (device.paths.home / "policy.json").write_bytes(foreign.raw)  # behind the device's back
    with pytest.raises(UploadError, match="not the one this device enrolled with"):
        uploader(device).run()


def test_the_collector_refuses_a_bundle_sealed_to_another_key(
    org: Org, device: Home, tmp_path: Path
) -> None:
    head = requests.get(
        f"{org.collector.url}/v1/devices/{device.ledger.device[7:]}/head", timeout=10
    )
    other = generate(tmp_path / "other")
    raw = build_bundle(
        header_fields={
            "subject": json.loads((device.paths.home / "enrolment.json").read_text())["subject"],
            "session": None,
            "interval": None,
            "created": "2026-12-02T12:00:00.000Z",
            "ledger": {"base": head.json(), "head": head.json()},
            "policy": active_policy(device.paths).reference(),
            "counts": {},
            "events": 0,
            "redactions": [],
            "timing": "even",
        },
        ledger=[],
        events_ipc=b"",
        org_key=other.bundle_public,
        device_key=device.keys.device,
    )
    name = parse_bundle(raw).name
    answer = requests.put(
        f"{org.collector.url}/v1/bundles/{name}",
        data=raw,
        timeout=10,
        headers={AUTH_HEADER: sign_upload(device.keys.device, "PUT", name)},
    )
    assert (answer.status_code, answer.json()["reason"]) == (403, "wrong-org-key")


def test_one_upload_at_a_time_per_home(device: Home) -> None:
    with (
        exclusive_lock(device.paths.home / "upload.lock", "held by this test"),
        pytest.raises(UploadBusy, match="another upload is running"),
    ):
        uploader(device).run()


def test_a_withdrawn_category_does_not_leave_in_a_later_bundle(org: Org, device: Home) -> None:
    session = record_session(device, 20)
    approve(device, session)
    withdraw(device.ledger, frozenset({Category.KEYS}), active_policy(device.paths))
    name = uploader(device).run().uploaded[0]
    body = open_bundle(
        parse_bundle((org.collector.data / "bundles" / f"{name}.ctb").read_bytes()),
        load_private(org.keys_dir),
    )
    assert body.events.column("kind").to_pylist() == [7]  # the focus change only


def test_enrolling_with_an_older_policy_spends_no_token(
    org: Org, private_home: Paths, tmp_path: Path
) -> None:
    home = Home.open(private_home, create=True)
    newer = init_policy(
        org.keys_dir, org.collector.url, tmp_path / "v2.json", version=2, notice=EXAMPLE_NOTICE
    )
    install_policy(private_home, newer)
    token = org.collector.token()
    with pytest.raises(PolicyRefused, match="older"):
        enrol(home, org.collector.url, read_signed_policy(org.policy.read_bytes()), token)
    home.close()
    # The token still enrols another device.
    other = Home.open(Paths(private_home.home.parent / "other", private_home.runtime), create=True)
    enrol(other, org.collector.url, read_signed_policy(org.policy.read_bytes()), token)
    other.close()


def test_the_background_uploader_waits_quietly_for_another_pass(org: Org, device: Home) -> None:
    session = record_session(device)
    approve(device, session)
    background = BackgroundUploader(device.paths, device.keys, interval=0.5)
    with exclusive_lock(device.paths.home / "upload.lock", "held by this test"):
        background.start()
        time.sleep(1.5)
        assert (background.last_error, background.sessions_uploaded) == (None, 0)
    deadline = time.monotonic() + 15
    while background.sessions_uploaded == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    background.stop()
    assert background.sessions_uploaded == 1
    assert device.store.session(session).state == "uploaded"
