"""What leaves follows consent at upload time, field by field, and the
organisation keeps nothing a device sends outside it (real collector on 127.0.0.1)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from cleartrace.categories import Category
from cleartrace.cli import main
from cleartrace.consent.signed_policy import active_policy
from cleartrace.consent.state import give, withdraw
from cleartrace.errors import UploadError
from cleartrace.events import Event, Kind
from cleartrace.home import Home
from cleartrace.org.ingest import IngestSummary, ingest
from cleartrace.org.keys import load_private
from cleartrace.paths import Paths
from cleartrace.upload.bundle import BundleBody, build_bundle, open_bundle, parse_bundle
from cleartrace.upload.events_arrow import encode_events
from cleartrace.upload.outbox import Outbox
from cleartrace.upload.upload_auth import AUTH_HEADER, sign_upload
from cleartrace.upload.uploader import Retry, Uploader
from tests.support.orgkit import Org, approve, enrolled, make_org, record_session

NO_WAIT = Retry(attempts=2, base=0.01, cap=0.01)
APP = "secret-project-client"


def uploader(home: Home) -> Uploader:
    return Uploader(home.paths, home.keys, retry=NO_WAIT)


def stored(org: Org) -> list[BundleBody]:
    """Every bundle the collector stored, opened with the organisation's key."""
    keys = load_private(org.keys_dir)
    return [
        open_bundle(
            parse_bundle((org.collector.data / "bundles" / f"{name}.ctb").read_bytes()), keys
        )
        for name in org.collector.bundles()
    ]


def key_events(body: BundleBody) -> int:
    return sum(k in (int(Kind.KEY_DOWN), int(Kind.KEY_UP)) for k in body.events["kind"].to_pylist())


def test_a_withdrawal_reaches_a_bundle_queued_before_it(
    tmp_path: Path, private_home: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    # One bundle an hour: the second session's bundle is refused with 429 and stays queued.
    org = make_org(tmp_path / "org", extra=("--rate", "1/1h"))
    org.collector.start()
    try:
        home = enrolled(org, private_home)
        give(home.ledger, frozenset(Category), active_policy(private_home))
        first = record_session(home, 5)
        approve(home, first)
        uploader(home).run()
        second = record_session(home, 50)
        approve(home, second)
        with pytest.raises(UploadError, match="too many uploads"):
            uploader(home).run()
        outbox = Outbox(home.paths.db)
        assert [q.session_id for q in outbox.queued()] == [second]
        outbox.close()
        home.close()
        assert main(["consent", "withdraw", "--category", "keys"]) == 0
        org.collector.stop()
        org.collector.extra = ()  # the limit is lifted: the queue may leave now
        org.collector.start()
        assert main(["upload", "--now"]) == 0, capsys.readouterr().err
        # The keystrokes of the queued bundle never left; the session did, without them.
        assert sum(key_events(b) for b in stored(org)) == 10  # the first session's only
        summary = ingest(str(org.collector.data), org.keys_dir, tmp_path / "dataset")
        assert summary.ok
        assert summary.dropped["withdrawn"] == 10  # only the first session's ten
        reopened = Home.open(private_home, create=False)
        assert reopened.store.session(second).state == "uploaded"
        reopened.close()
    finally:
        org.collector.stop()


def test_window_titles_withdrawn_before_upload_do_not_leave(org: Org, device: Home) -> None:
    session = record_session(device, 5, app="xterm")
    approve(device, session)
    withdraw(device.ledger, frozenset({Category.WINDOW_TITLES}), active_policy(device.paths))
    uploader(device).run()
    (body,) = [b for b in stored(org) if b.events.num_rows]
    focus = [
        (app, title)
        for kind, app, title in zip(
            body.events["kind"].to_pylist(),
            body.events["app"].to_pylist(),
            body.events["title"].to_pylist(),
            strict=True,
        )
        if kind == int(Kind.FOCUS)
    ]
    assert focus == [("xterm", None)]  # the application still, its title not


# -- a modified device ---------------------------------------------------------------------


def hostile_bundle(org: Org, home: Home, events: list[Event]) -> bytes:
    """A bundle a modified device builds: validly signed, events chosen by it."""
    device_hex = home.ledger.device.removeprefix("sha256:")
    base = requests.get(f"{org.collector.url}/v1/devices/{device_hex}/head", timeout=10).json()
    records = home.ledger.records()[base["seq"] :]
    head = home.ledger.head()
    assert head is not None
    session = home.store.list_sessions()[0].id
    return build_bundle(
        header_fields={
            "subject": json.loads((home.paths.home / "enrolment.json").read_text())["subject"],
            "session": session,
            "interval": None,
            "created": "2026-12-02T12:00:00.000Z",
            "ledger": {"base": base, "head": {"seq": head[0], "hash": head[1]}},
            "policy": active_policy(home.paths).reference(),
            "counts": {},
            "events": len(events),
            "redactions": [],
            "timing": "even",
        },
        ledger=records,
        events_ipc=encode_events(events, 0),
        org_key=load_private(org.keys_dir).bundle_public,
        device_key=home.keys.device,
    )


def rows(out: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted((out / "events").rglob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


def test_application_names_smuggled_past_consent_are_removed_and_reported(
    org: Org, private_home: Paths, tmp_path: Path
) -> None:
    home = enrolled(org, private_home)
    give(home.ledger, frozenset({Category.KEYS}), active_policy(private_home))
    record_session(home, 1)  # a session id for the header
    t = time.time_ns()  # after the consent: wall-clock, as bundles carry them
    events = [
        Event(t, Kind.KEY_DOWN, 0x61, app=APP),
        Event(t + 1, Kind.KEY_UP, 0x61, title=APP),
        Event(t + 2, Kind.EXCLUDED_START, app=APP),
        Event(t + 3, Kind.EXCLUDED_END, 7, 8, 9, 10, APP, APP),
        Event(t + 4, Kind.KEY_DOWN, 0x62),
    ]
    raw = hostile_bundle(org, home, events)
    name = parse_bundle(raw).name
    answer = requests.put(
        f"{org.collector.url}/v1/bundles/{name}",
        data=raw,
        timeout=10,
        headers={AUTH_HEADER: sign_upload(home.keys.device, "PUT", name)},
    )
    assert answer.status_code == 201, answer.text
    home.close()
    summary: IngestSummary = ingest(str(org.collector.data), org.keys_dir, tmp_path / "dataset")
    got = rows(tmp_path / "dataset")
    assert APP not in json.dumps(got)
    assert [r["kind"] for r in got] == [
        "key_down",
        "key_up",
        "excluded_start",
        "excluded_end",
        "key_down",
    ]
    (violation,) = summary.violations
    assert violation["by_category"] == {"app_focus": 3, "window_titles": 2, "excluded": 1}
