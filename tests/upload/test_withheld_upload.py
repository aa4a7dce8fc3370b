"""Detected personal data stays out of bundles against a real collector; the
person's own copy keeps it, the ledger counts it, a release lets it through."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from cleartrace.events import Event, Kind
from cleartrace.home import Home
from cleartrace.org.keys import load_private
from cleartrace.review.text import reconstruct
from cleartrace.review.withheld import RELEASED, WITHHELD
from cleartrace.upload.bundle import open_bundle, parse_bundle
from cleartrace.upload.outbox import Outbox
from cleartrace.upload.uploader import Retry, Uploader
from tests.support.cli import ct
from tests.support.orgkit import Org, approve, lose_the_answer, record_text

EMAIL = "jane.doe@example.org"
PHONE = "+49 30 12345678"
TEXT = f"mail {EMAIL} or call {PHONE} now"


def shown_pii(session: str) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(ct("sessions", "show", session, "--pii", "--json").stdout)
    return shown


def upload(device: Home) -> list[str]:
    report = Uploader(device.paths, device.keys, retry=Retry(attempts=2, base=0.01, cap=0.01)).run()
    return report.uploaded


def bundle_text(org: Org, name: str) -> tuple[str, dict[str, object], list[dict[str, object]]]:
    """The typed text the organisation can rebuild from a bundle, its header and ledger."""
    bundle = parse_bundle((org.collector.data / "bundles" / f"{name}.ctb").read_bytes())
    body = open_bundle(bundle, load_private(org.keys_dir))
    events = [
        Event(r["t_ns"], Kind(r["kind"]), r["a"], r["b"], r["c"], r["d"], r["app"], r["title"])
        for r in body.events.to_pylist()
    ]
    streams = reconstruct(events)
    return "".join(s.text for s in streams), bundle.header, body.ledger


def test_what_leaves_holds_no_detected_personal_data_and_the_ledger_counts_it(
    org: Org, device: Home
) -> None:
    session = record_text(device, TEXT)
    approve(device, session)
    (name,) = upload(device)
    text, header, ledger = bundle_text(org, name)
    assert text == "mail  or call  now"
    withheld = [r for r in ledger if r["kind"] == WITHHELD]
    assert [(r["session"], r["spans"]) for r in withheld] == [(session, {"email": 1, "phone": 1})]
    (auto,) = [r for r in header["redactions"] if r["method"] == "auto"]  # type: ignore[attr-defined]
    assert auto["spans"] == {"email": 1, "phone": 1}
    assert header["events"] == 1 + 2 * (len(TEXT) - len(EMAIL) - len(PHONE))
    # The person's own copy is as typed, for their review.
    (mine,) = reconstruct(device.store.read_events(session))
    assert mine.text == TEXT
    # Once uploaded, there is nothing left to release.
    late = ct("sessions", "release", session, "--stream", "1", "--span", "5:25", check=False)
    assert late.returncode == 2
    assert "is uploaded" in late.stderr


def test_a_released_detection_leaves_as_typed_and_the_release_is_ledgered(
    org: Org, device: Home
) -> None:
    session = record_text(device, TEXT)
    shown = shown_pii(session)
    phone = next(f for f in shown["text"][0]["pii"] if f["category"] == "phone")
    assert phone["withheld"] is True
    span = f"{phone['start']}:{phone['end']}"
    done = ct("sessions", "release", session[:8], "--stream", "1", "--span", span)
    assert "released the phone" in done.stderr
    assert PHONE not in done.stderr
    approve(device, session)
    (name,) = upload(device)
    text, _, ledger = bundle_text(org, name)
    assert text == f"mail  or call {PHONE} now"
    assert [r["pii"] for r in ledger if r["kind"] == RELEASED] == ["phone"]
    assert [r["spans"] for r in ledger if r["kind"] == WITHHELD] == [{"email": 1}]


def test_a_window_title_leaves_without_the_personal_data_in_it(org: Org, device: Home) -> None:
    session = record_text(device, "ok", title=f"Re: call me at {PHONE} - Thunderbird")
    approve(device, session)
    (name,) = upload(device)
    bundle = parse_bundle((org.collector.data / "bundles" / f"{name}.ctb").read_bytes())
    body = open_bundle(bundle, load_private(org.keys_dir))
    titles = [t for t in body.events.column("title").to_pylist() if t is not None]
    assert titles == ["Re: call me at ⟦phone⟧ - Thunderbird"]
    assert {"method": "auto-titles", "spans": {"phone": 1}} in bundle.header["redactions"]
    assert [r["spans"] for r in body.ledger if r["kind"] == WITHHELD] == [{"phone": 1}]


def test_a_bundle_built_again_does_not_ledger_the_same_withholding_twice(
    org: Org, device: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = record_text(device, TEXT)
    approve(device, session)
    lose_the_answer(monkeypatch)
    with pytest.raises(Exception, match="connection dropped"):
        upload(device)
    upload(device)  # offered again, then built again on the head the collector witnessed
    assert [r["kind"] for r in device.ledger.records()].count(WITHHELD) == 1


def test_releasing_drops_a_queued_bundle_that_withheld_it(device: Home, tmp_path: Path) -> None:
    session = record_text(device, TEXT)
    approve(device, session)
    outbox = Outbox(device.paths.db)
    try:
        outbox.add(f"{random.getrandbits(256):064x}", session, 1, b"sealed")
        shown = shown_pii(session)
        email = shown["text"][0]["pii"][0]
        ct(
            "sessions",
            "release",
            session,
            "--stream",
            "1",
            "--span",
            f"{email['start']}:{email['end']}",
        )
        assert outbox.queued() == []
    finally:
        outbox.close()


def test_release_refuses_what_was_not_detected_or_is_released_already(device: Home) -> None:
    session = record_text(device, TEXT)
    nothing = ct("sessions", "release", session, "--stream", "1", "--span", "0:4", check=False)
    assert nothing.returncode == 2
    assert "nothing was detected at stream 1 0:4" in nothing.stderr
    assert "sessions show" in nothing.stderr
    shown = shown_pii(session)
    email = shown["text"][0]["pii"][0]
    span = f"{email['start']}:{email['end']}"
    ct("sessions", "release", session, "--stream", "1", "--span", span)
    again = ct("sessions", "release", session, "--stream", "1", "--span", span, check=False)
    assert again.returncode == 2
    assert "uploaded as typed already" in again.stderr
    text = ct("sessions", "show", session, "--pii").stdout
    assert "uploaded as typed" in text
    assert "removed before upload" in text
    absent = ct("sessions", "release", session, "--stream", "9", "--span", span, check=False)
    assert "nothing was detected at stream 9" in absent.stderr


def test_a_redaction_made_while_the_session_is_bundled_never_leaves(
    org: Org, device: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cleartrace.review import redaction
    from cleartrace.upload.upload_pass import UploadPass

    session = record_text(device, "the word kumquat stays home")
    approve(device, session)
    real = UploadPass.session_part

    def then_redact(self: UploadPass, session_id: str, fields: dict[str, Any]) -> bytes:
        # The events are read; the person redacts (review window) before the bundle is queued.
        part = real(self, session_id, fields)
        monkeypatch.setattr(UploadPass, "session_part", real)
        events = device.store.read_events(session)
        redaction.apply(device.store, device.ledger, redaction.by_match(session, events, "kumquat"))
        return part

    monkeypatch.setattr(UploadPass, "session_part", then_redact)
    upload(device)
    upload(device)  # bundled again, without what the person redacted
    texts = [bundle_text(org, name)[0] for name in org.collector.bundles()]
    assert [t for t in texts if t] == ["the word  stays home"]  # and a ledger-only one


def test_an_address_typed_then_erased_does_not_leave(org: Org, device: Home) -> None:
    import time

    from cleartrace.events import keysym_of_char
    from cleartrace.review.keysyms import BACKSPACE

    wall, mono = time.time_ns(), time.monotonic_ns()
    handle = device.store.begin_session(wall, mono)
    device.ledger.append("session.started", session=handle.id)
    keys = [keysym_of_char(c) for c in f"hi {EMAIL}"] + [BACKSPACE] * len(EMAIL)
    events: list[Any] = [(mono + 1_000, int(Kind.FOCUS), 0, 0, 0, 0, ("gedit", "notes"))]
    for i, key in enumerate(keys):
        t = mono + 2_000 + i * 90_000_000
        events += [(t, int(Kind.KEY_DOWN), key, 0, 0, 0, None)]
        events += [(t + 40_000_000, int(Kind.KEY_UP), key, 0, 0, 0, None)]
    device.store.append_chunk(handle, events)
    device.store.end_session(handle, time.time_ns())
    approve(device, handle.id)
    (name,) = upload(device)
    bundle = parse_bundle((org.collector.data / "bundles" / f"{name}.ctb").read_bytes())
    body = open_bundle(bundle, load_private(org.keys_dir))
    pressed = [r["a"] for r in body.events.to_pylist() if r["kind"] == int(Kind.KEY_DOWN)]
    assert pressed == [keysym_of_char(c) for c in "hi "]
    assert [r["spans"] for r in body.ledger if r["kind"] == WITHHELD] == [{"email": 1}]


def test_a_release_read_before_the_upload_acknowledged_is_refused(
    org: Org, device: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cleartrace.consent.signed_policy import active_policy
    from cleartrace.errors import UsageError
    from cleartrace.review.withheld import detections, release, released_in

    session = record_text(device, TEXT)
    approve(device, session)
    stale = device.store.session(session)  # "approved", as the review window read it
    started, anchor = device.store.anchors(session)
    found = detections(
        device.store.read_events(session),
        active_policy(device.paths),
        started_ns=started,
        anchor_ns=anchor,
        released=released_in(device.ledger.records(), session),
    )
    upload(device)  # meanwhile, the uploader sends it
    monkeypatch.setattr(device.store, "session", lambda _id: stale)
    first = found[0][0].finding
    with pytest.raises(UsageError, match="uploaded"):
        release(device.store, device.ledger, stale, found, 1, first.start, first.end)
    assert RELEASED not in [r["kind"] for r in device.ledger.records()]
