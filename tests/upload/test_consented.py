"""The device's last check before sealing: only consented categories, only their fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.categories import Category
from cleartrace.consent.coverage import coverage_of, time_ns
from cleartrace.consent.records import GENESIS, make_record, record_hash, sign_record
from cleartrace.events import Event, Kind
from cleartrace.upload.consented import UploadConsent, categories_of_counts
from cleartrace.upload.events_arrow import events_table

ALL = frozenset(Category)


def rows(consent: UploadConsent, events: list[Event]) -> list[tuple[object, ...]]:
    table = consent.filter(events_table(events, 0))
    return list(zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True))


def test_fields_another_kind_owns_never_leave() -> None:
    events = [
        Event(10, Kind.KEY_DOWN, 0x61, 1, 2, 3, "app", "title"),
        Event(11, Kind.FOCUS, 4, 0, 0, 0, "xterm", "notes"),
        Event(12, Kind.EXCLUDED_START, 5, 6, 7, 8, "app", "title"),
        Event(13, Kind.MOVE, 640, 400, 9, 9),
    ]
    assert rows(UploadConsent(ALL, {}), events) == [
        (10, 1, 0x61, 0, 0, 0, None, None),
        (11, 7, 4, 0, 0, 0, "xterm", "notes"),
        (12, 8, 0, 0, 0, 0, None, None),
        (13, 3, 640, 400, 0, 0, None, None),
    ]


def test_context_leaves_with_its_category_and_a_layout_with_its_name() -> None:
    events = [
        Event(10, Kind.SCREEN, 1, 1280, 800, 100, "app", "title"),
        Event(10, Kind.MONITOR, 0, 0, 1280, 800),
        Event(10, Kind.LAYOUT, 1, 2, 3, 4, "de", "title"),
        Event(11, Kind.FOCUS, 10, 20, 300, 200, "xterm", "notes"),
    ]
    assert rows(UploadConsent(ALL, {}), events) == [
        (10, 10, 1, 1280, 800, 100, None, None),
        (10, 11, 0, 0, 1280, 800, None, None),
        (10, 12, 1, 0, 0, 0, "de", None),
        (11, 7, 10, 20, 300, 200, "xterm", "notes"),
    ]
    assert [r[1] for r in rows(UploadConsent(ALL - {Category.CLICKS}, {}), events)] == [12, 7]
    assert [r[1] for r in rows(UploadConsent(ALL - {Category.KEYS}, {}), events)] == [10, 11, 7]


def test_a_withdrawn_title_goes_and_its_focus_event_stays() -> None:
    events = [Event(10, Kind.FOCUS, app="xterm", title="notes"), Event(20, Kind.KEY_DOWN, 0x61)]
    consent = UploadConsent(ALL - {Category.WINDOW_TITLES}, {Category.WINDOW_TITLES: 15})
    assert rows(consent, events) == [
        (10, 7, 0, 0, 0, 0, "xterm", None),
        (20, 1, 0x61, 0, 0, 0, None, None),
    ]


def test_given_again_after_a_withdrawal_only_what_came_after_leaves() -> None:
    events = [
        Event(10, Kind.KEY_DOWN, 0x61),
        Event(15, Kind.KEY_UP, 0x61),
        Event(16, Kind.KEY_DOWN, 0x62),
    ]
    consent = UploadConsent(ALL, {Category.KEYS: 15})
    assert [r[0] for r in rows(consent, events)] == [16]


def test_a_bundle_with_focus_events_may_hold_titles() -> None:
    assert categories_of_counts({"app_focus": 1, "keys": 0}) == {
        Category.APP_FOCUS,
        Category.WINDOW_TITLES,
    }


T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
POLICY = {"id": "acme", "version": 1, "sha256": "2" * 64}


def ns(minutes: float) -> int:
    return time_ns((T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"))


def ledger(*acts: tuple[str, float, dict[str, Any]]) -> list[dict[str, Any]]:
    """Signed, chained records as the device's Ledger writes them, at the given minutes."""
    key, out, prev = Ed25519PrivateKey.generate(), [], GENESIS
    for seq, (kind, minutes, fields) in enumerate(acts, 1):
        when = T0 + timedelta(minutes=minutes)
        record = sign_record(
            make_record(seq=seq, prev=prev, kind=kind, fields=fields, now=when), key
        )
        prev = record_hash(record)
        out.append(record)
    return out


def test_a_withdrawal_whose_clock_went_back_stops_what_ingest_would_drop() -> None:
    keys = {"categories": ["keys"], "policy": POLICY}
    records = ledger(
        ("consent.given", 0, keys),
        ("session.started", 10, {"session": "a1" * 16}),
        # The clock stepped back 40 minutes: ingest takes both acts at minute 10.
        ("consent.withdrawn", -30, keys),
        ("consent.given", -20, keys),
    )
    events = [Event(ns(m), Kind.KEY_DOWN, 0x61) for m in (-25, 5, 10, 15)]
    consent = UploadConsent.from_records(records)
    sent = consent.filter(events_table(events, 0))
    assert sent.column("t_ns").to_pylist() == [ns(15)]
    # Everything that leaves is kept by ingest: nothing leaves only to be dropped.
    outcome = coverage_of(records).apply(sent, session="a1" * 16, head_seq=10**6)
    assert outcome.kept == sent.num_rows
    assert outcome.dropped["withdrawn"] == 0
