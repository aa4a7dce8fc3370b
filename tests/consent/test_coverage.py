"""Coverage: which events a device's ledger lets the organisation keep, and why the rest goes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.consent.coverage import Coverage, coverage_of, time_ns
from cleartrace.consent.records import GENESIS, make_record, record_hash, sign_record
from cleartrace.events import Event, Kind
from cleartrace.upload.events_arrow import EVENT_SCHEMA, decode_events, encode_events

KEY = Ed25519PrivateKey.generate()
POLICY = {"id": "acme", "version": 1, "sha256": "2" * 64}
T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
S1, S2 = "a1" * 16, "b2" * 16
ALL = ["app_focus", "clicks", "keys", "mouse_move", "scroll", "window_titles"]
SECOND = 10**9
MINUTE = 60 * SECOND


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def ns(minutes: float) -> int:
    return time_ns(at(minutes).isoformat().replace("+00:00", "Z"))


def ledger(*acts: tuple[str, datetime, dict[str, Any]]) -> list[dict[str, Any]]:
    """Signed, chained records, as the device's Ledger writes them."""
    out, prev = [], GENESIS
    for seq, (kind, when, fields) in enumerate(acts, 1):
        record = sign_record(
            make_record(seq=seq, prev=prev, kind=kind, fields=fields, now=when), KEY
        )
        prev = record_hash(record)
        out.append(record)
    return out


def given(minutes: float, categories: Sequence[str] = ALL) -> tuple[str, datetime, dict[str, Any]]:
    return ("consent.given", at(minutes), {"categories": sorted(categories), "policy": POLICY})


def withdrawn(minutes: float, categories: Sequence[str]) -> tuple[str, datetime, dict[str, Any]]:
    return ("consent.withdrawn", at(minutes), {"categories": sorted(categories), "policy": POLICY})


def table(*events: Event) -> pa.Table:
    """Events through the real bundle codec (wall-clock times, offset 0)."""
    return decode_events(encode_events(list(events), 0))


def kept(coverage: Coverage, events: pa.Table, session: str = S1, head: int = 10**6) -> list[int]:
    outcome = coverage.apply(events, session=session, head_seq=head)
    times: list[int] = outcome.events.column("t_ns").to_pylist()
    return times


def test_events_inside_consent_are_kept_and_before_it_are_violations() -> None:
    cov = coverage_of(ledger(given(0)))
    events = table(
        Event(ns(0) - 1, Kind.KEY_DOWN, 0x61),
        Event(ns(0), Kind.KEY_DOWN, 0x62),
        Event(ns(5), Kind.MOVE, 1, 2),
    )
    outcome = cov.apply(events, session=S1, head_seq=1)
    assert outcome.events.column("t_ns").to_pylist() == [ns(0), ns(5)]
    assert outcome.dropped == {
        "held": 0,
        "superseded": 0,
        "deleted": 0,
        "withdrawn": 0,
        "redacted": 0,
        "violation": 1,
    }
    assert outcome.violations == {"keys": 1}


def test_only_consented_categories_are_kept() -> None:
    cov = coverage_of(ledger(given(0, ["keys"])))
    events = table(Event(ns(1), Kind.KEY_DOWN, 0x61), Event(ns(2), Kind.MOVE, 1, 2))
    outcome = cov.apply(events, session=S1, head_seq=1)
    assert outcome.events.column("kind").to_pylist() == [int(Kind.KEY_DOWN)]
    assert outcome.violations == {"mouse_move": 1}


def test_withdrawal_drops_that_category_up_to_its_time_in_every_session() -> None:
    cov = coverage_of(ledger(given(0), withdrawn(30, ["keys"]), given(40, ["keys"])))
    earlier = table(
        Event(ns(1), Kind.KEY_DOWN, 0x61), Event(ns(2), Kind.MOVE, 1, 2), Event(ns(30), Kind.KEY_UP)
    )
    outcome = cov.apply(earlier, session=S2, head_seq=1)
    assert outcome.events.column("t_ns").to_pylist() == [ns(2)]
    assert outcome.dropped["withdrawn"] == 2
    # After withdrawal and before consent is given again: a violation; after it: kept.
    later = table(Event(ns(35), Kind.KEY_DOWN, 0x61), Event(ns(40), Kind.KEY_DOWN, 0x62))
    outcome = cov.apply(later, session=S1, head_seq=3)
    assert outcome.events.column("t_ns").to_pylist() == [ns(40)]
    assert outcome.dropped == {
        "held": 0,
        "superseded": 0,
        "deleted": 0,
        "withdrawn": 0,
        "redacted": 0,
        "violation": 1,
    }


def test_pause_is_a_gap_until_the_resumed_record_not_until_its_planned_end() -> None:
    cov = coverage_of(
        ledger(
            given(0),
            ("recording.paused", at(10), {"until": "2026-12-02T10:15:00Z"}),
            ("recording.resumed", at(20), {"reason": "person"}),
        )
    )
    events = table(
        Event(ns(10) - 1, Kind.MOVE, 1, 1),
        Event(ns(10), Kind.MOVE, 2, 2),
        Event(ns(16), Kind.MOVE, 3, 3),
        Event(ns(20) - 1, Kind.MOVE, 4, 4),
        Event(ns(20), Kind.MOVE, 5, 5),
    )
    assert kept(cov, events) == [ns(10) - 1, ns(20)]


def test_deleted_session_loses_every_event_markers_included() -> None:
    cov = coverage_of(ledger(given(0), ("session.deleted", at(50), {"session": S1})))
    events = table(
        Event(ns(1), Kind.KEY_DOWN, 0x61),
        Event(ns(2), Kind.EXCLUDED_START),
        Event(ns(3), Kind.EXCLUDED_END),
    )
    outcome = cov.apply(events, session=S1, head_seq=1)
    assert outcome.kept == 0
    assert outcome.dropped == {
        "held": 0,
        "superseded": 0,
        "deleted": 3,
        "withdrawn": 0,
        "redacted": 0,
        "violation": 0,
    }
    assert kept(cov, events, session=S2) == [ns(1), ns(2), ns(3)]


def test_shredded_session_is_not_deleted() -> None:
    cov = coverage_of(ledger(given(0), ("session.shredded", at(50), {"session": S1})))
    assert kept(cov, table(Event(ns(1), Kind.KEY_DOWN, 0x61))) == [ns(1)]


def redaction(minutes: float, start: str, end: str, categories: list[str]) -> Any:
    return (
        "session.redacted",
        at(minutes),
        {
            "session": S1,
            "method": "time",
            "events": 1,
            "categories": categories,
            "interval": {"start": start, "end": end},
        },
    )


def test_later_redaction_drops_its_categories_inside_its_closed_interval() -> None:
    records = ledger(
        given(0),
        redaction(50, "2026-12-02T10:05:00.000000Z", "2026-12-02T10:06:00.000000Z", ["keys"]),
    )
    cov = coverage_of(records)
    events = table(
        Event(ns(5) - 1, Kind.KEY_DOWN, 0x61),
        Event(ns(5), Kind.KEY_DOWN, 0x62),
        Event(ns(5.5), Kind.MOVE, 1, 1),
        Event(ns(6), Kind.KEY_UP, 0x62),
        Event(ns(6) + 1, Kind.KEY_UP, 0x61),
    )
    outcome = cov.apply(events, session=S1, head_seq=1)
    assert outcome.events.column("t_ns").to_pylist() == [ns(5) - 1, ns(5.5), ns(6) + 1]
    assert outcome.dropped["redacted"] == 2
    # Another session, or a bundle built after the redaction (already without those events).
    assert len(kept(cov, events, session=S2, head=1)) == 5
    assert len(kept(cov, events, session=S1, head=2)) == 5


def test_markers_stay_without_consent_while_paused_and_after_withdrawal() -> None:
    cov = coverage_of(
        ledger(
            given(0),
            withdrawn(5, ALL),
            ("recording.paused", at(6), {"until": None}),
        )
    )
    events = table(
        Event(ns(-1), Kind.EXCLUDED_START),
        Event(ns(3), Kind.EXCLUDED_END),
        Event(ns(7), Kind.EXCLUDED_START),
    )
    assert kept(cov, events) == [ns(-1), ns(3), ns(7)]


def test_withdrawn_window_titles_leave_the_focus_event_without_its_title() -> None:
    cov = coverage_of(ledger(given(0), withdrawn(10, ["window_titles"])))
    events = table(
        Event(ns(1), Kind.FOCUS, app="gedit", title="old title"),
        Event(ns(11), Kind.FOCUS, app="xterm", title="new title"),
        Event(ns(12), Kind.FOCUS, app="xterm"),
    )
    outcome = cov.apply(events, session=S1, head_seq=1)
    rows = outcome.events.select(["app", "title"]).to_pylist()
    assert rows == [
        {"app": "gedit", "title": None},
        {"app": "xterm", "title": None},
        {"app": "xterm", "title": None},
    ]
    assert outcome.titles_removed == {"withdrawn": 1, "redacted": 0, "violation": 1}
    assert outcome.violations == {"window_titles": 1}
    assert outcome.dropped["violation"] == 0


def test_a_withdrawn_event_inside_a_redaction_counts_as_withdrawn() -> None:
    cov = coverage_of(
        ledger(
            given(0),
            redaction(20, "2026-12-02T10:01:00.000Z", "2026-12-02T10:02:00.000Z", ["keys"]),
            withdrawn(30, ["keys"]),
        )
    )
    outcome = cov.apply(table(Event(ns(1.5), Kind.KEY_DOWN, 0x61)), session=S1, head_seq=1)
    assert outcome.dropped == {
        "held": 0,
        "superseded": 0,
        "deleted": 0,
        "withdrawn": 1,
        "redacted": 0,
        "violation": 0,
    }


def test_unknown_kinds_are_violations() -> None:
    cov = coverage_of(ledger(given(0)))
    events = pa.table(
        {
            "t_ns": pa.array([ns(1), ns(2)], pa.int64()),
            "kind": pa.array([int(Kind.MOVE), 42], pa.uint8()),
            **{c: pa.array([0, 0], pa.int32()) for c in "abcd"},
            "app": pa.array([None, None], pa.string()),
            "title": pa.array([None, None], pa.string()),
        },
        schema=EVENT_SCHEMA,
    )
    outcome = cov.apply(events, session=S1, head_seq=1)
    assert outcome.kept == 1
    assert outcome.violations == {"unknown": 1}


def test_events_out_of_order_come_out_sorted() -> None:
    cov = coverage_of(ledger(given(0)))
    events = table(Event(ns(3), Kind.MOVE, 3, 3), Event(ns(1), Kind.MOVE, 1, 1))
    assert kept(cov, events) == [ns(1), ns(3)]


def test_a_clock_going_backwards_takes_effect_at_the_previous_record_time() -> None:
    cov = coverage_of(ledger(given(10), ("recording.paused", at(5), {"until": None})))
    events = table(Event(ns(7), Kind.MOVE, 1, 1), Event(ns(11), Kind.MOVE, 2, 2))
    outcome = cov.apply(events, session=S1, head_seq=1)
    assert outcome.kept == 0
    assert outcome.dropped["violation"] == 2


def test_empty_bundle_keeps_nothing_and_drops_nothing() -> None:
    cov = coverage_of(ledger(given(0)))
    outcome = cov.apply(EVENT_SCHEMA.empty_table(), session=None, head_seq=1)
    assert outcome.kept == 0
    assert sum(outcome.dropped.values()) == 0


def test_key_changes_only_with_what_decides_a_bundles_rows() -> None:
    base = [given(0)]
    approved = ("session.approved", at(5), {"session": S1, "by": "person"})
    before = coverage_of(ledger(*base)).key(S1, 1)
    assert coverage_of(ledger(*base, approved)).key(S1, 1) == before
    assert coverage_of(ledger(*base, withdrawn(6, ["keys"]))).key(S1, 1) != before
    deleted = coverage_of(ledger(*base, ("session.deleted", at(6), {"session": S2})))
    assert deleted.key(S1, 1) == before
    assert deleted.key(S2, 1) != coverage_of(ledger(*base)).key(S2, 1)


def test_digest_names_the_selection() -> None:
    events = table(Event(ns(1), Kind.KEY_DOWN, 0x61), Event(ns(2), Kind.MOVE, 1, 1))
    one = coverage_of(ledger(given(0))).apply(events, session=S1, head_seq=1)
    again = coverage_of(ledger(given(0), given(3, ["keys"]))).apply(events, session=S1, head_seq=1)
    other = coverage_of(ledger(given(0), withdrawn(3, ["keys"]))).apply(
        events, session=S1, head_seq=1
    )
    assert one.digest == again.digest
    assert one.digest != other.digest


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T00:00:01.5Z", 1_500_000_000),
        ("2026-12-02T10:00:00.000001Z", ns(0) + 1000),
    ],
)
def test_time_ns_is_exact(text: str, expected: int) -> None:
    assert time_ns(text) == expected


def test_a_session_held_after_its_bundle_was_built_loses_that_bundle() -> None:
    records = ledger(given(0), ("session.held", at(20), {"session": S1}))
    cov = coverage_of(records)
    events = table(Event(ns(5), Kind.KEY_DOWN, 0x61), Event(ns(6), Kind.MOVE, 1, 2))
    outcome = cov.apply(events, session=S1, head_seq=1)  # built before the hold (seq 2)
    assert outcome.kept == 0
    assert outcome.dropped["held"] == 2
    assert kept(cov, events, session=S2, head=1) == [ns(5), ns(6)]
    assert kept(cov, events, session=S1, head=2) == [ns(5), ns(6)]  # built after it


def test_of_a_session_in_two_bundles_only_the_newer_stays() -> None:
    cov = coverage_of(ledger(given(0))).with_bundles(
        [(S1, 3, 0), (S1, 7, 3), (S2, 3, 0), (None, 9, 7), (S2, 3, 3)]
    )
    events = table(Event(ns(5), Kind.KEY_DOWN, 0x61))
    older = cov.apply(events, session=S1, head_seq=3)
    assert (older.kept, older.dropped["superseded"]) == (0, 1)
    assert cov.apply(events, session=S1, head_seq=7, base_seq=3).kept == 1
    # The same head: the bundle built on the later base is the newer one.
    assert cov.apply(events, session=S2, head_seq=3, base_seq=0).dropped["superseded"] == 1
    assert cov.apply(events, session=S2, head_seq=3, base_seq=3).kept == 1
    assert cov.key(S1, 3, 0) != cov.key(S1, 7, 3)


def test_context_events_keep_their_numbers_and_a_layout_its_name() -> None:
    cov = coverage_of(ledger(given(0)))
    events = table(
        Event(ns(1), Kind.SCREEN, 2, 3840, 1080, 125),
        Event(ns(1), Kind.MONITOR, 1920, 0, 1920, 1080),
        Event(ns(1), Kind.LAYOUT, 1, app="de"),
        Event(ns(2), Kind.FOCUS, 10, 20, 800, 600, app="gedit", title="notes"),
    )
    outcome = cov.apply(events, session=S1, head_seq=1)
    assert outcome.violations == {}
    rows = outcome.events.select(["kind", "a", "b", "c", "d", "app", "title"]).to_pylist()
    assert [tuple(r.values()) for r in rows] == [
        (int(Kind.SCREEN), 2, 3840, 1080, 125, None, None),
        (int(Kind.MONITOR), 1920, 0, 1920, 1080, None, None),
        (int(Kind.LAYOUT), 1, 0, 0, 0, "de", None),
        (int(Kind.FOCUS), 10, 20, 800, 600, "gedit", "notes"),
    ]


def test_a_title_on_a_layout_and_text_or_numbers_beyond_a_kind_are_violations() -> None:
    cov = coverage_of(ledger(given(0)))
    events = table(
        Event(ns(1), Kind.LAYOUT, 1, 5, app="de", title="secret"),
        Event(ns(2), Kind.SCREEN, 1, 1280, 800, 100, app="gedit"),
    )
    outcome = cov.apply(events, session=S1, head_seq=1)
    rows = outcome.events.select(["kind", "b", "app", "title"]).to_pylist()
    assert rows == [
        {"kind": int(Kind.LAYOUT), "b": 0, "app": "de", "title": None},
        {"kind": int(Kind.SCREEN), "b": 1280, "app": None, "title": None},
    ]
    assert outcome.violations == {"window_titles": 1, "app_focus": 1, "keys": 1}
