"""Which timing leaves: a real upload pass to a real collector, with and without typing rhythm."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pyarrow as pa
import pytest

from cleartrace.categories import USUAL, Category
from cleartrace.consent.signed_policy import active_policy
from cleartrace.consent.state import give, withdraw
from cleartrace.errors import UploadError
from cleartrace.events import Event, Kind
from cleartrace.home import Home
from cleartrace.org.keys import load_private
from cleartrace.paths import Paths
from cleartrace.review.text import reconstruct
from cleartrace.upload.bundle import open_bundle, parse_bundle
from cleartrace.upload.bundle_header import timing_of
from cleartrace.upload.client import CollectorClient
from cleartrace.upload.outbox import Outbox
from cleartrace.upload.retiming import PACE_US
from cleartrace.upload.uploader import Retry, Uploader
from tests.support.orgkit import Org, approve, enrolled, record_text
from tests.support.sessions import typed

TEXT = "the quick brown fox"


@pytest.fixture
def home(org: Org, private_home: Paths) -> Iterator[Home]:
    """A device enrolled with `org`, the usual categories given (not typing rhythm)."""
    made = enrolled(org, private_home)
    give(made.ledger, frozenset(USUAL), active_policy(private_home))
    yield made
    made.close()


def _upload(org: Org, home: Home, session: str) -> tuple[dict[str, object], pa.Table]:
    approve(home, session)
    report = Uploader(home.paths, home.keys, retry=Retry(attempts=2, base=0.01, cap=0.01)).run()
    assert report.sessions == [session]
    (name,) = [n for n in report.uploaded if parse_bundle(_raw(org, n)).session == session]
    bundle = parse_bundle(_raw(org, name))
    return dict(bundle.header), open_bundle(bundle, load_private(org.keys_dir)).events


def _raw(org: Org, name: str) -> bytes:
    return (org.collector.data / "bundles" / f"{name}.ctb").read_bytes()


def _key_times(events: pa.Table) -> list[int]:
    return [r["t_ns"] for r in events.to_pylist() if r["kind"] in (Kind.KEY_DOWN, Kind.KEY_UP)]


def _text(events: pa.Table) -> str:
    rows = [Event(r["t_ns"], Kind(r["kind"]), r["a"], app=r["app"]) for r in events.to_pylist()]
    return "".join(s.text for s in reconstruct(rows))


def _uploaded_timing(home: Home) -> str:
    last = [r for r in home.ledger.records() if r["kind"] == "bundle.uploaded"][-1]
    return str(last["timing"])


def test_without_typing_rhythm_keys_arrive_evenly_spaced(org: Org, home: Home) -> None:
    session = record_text(home, TEXT)  # a key every 90 ms, held 40 ms
    header, events = _upload(org, home, session)
    assert header["v"] == 2
    assert timing_of(header) == "even"
    times = _key_times(events)
    assert len(times) == 2 * len(TEXT)
    assert {b - a for a, b in pairwise(times)} == {PACE_US * 1000}
    assert _text(events) == TEXT
    assert _uploaded_timing(home) == "even"


def test_with_typing_rhythm_keys_arrive_as_typed(org: Org, home: Home) -> None:
    give(home.ledger, frozenset({Category.TYPING_RHYTHM}), active_policy(home.paths))
    session = record_text(home, TEXT)
    header, events = _upload(org, home, session)
    assert timing_of(header) == "raw"
    started, anchor = home.store.anchors(session)
    stored = [e.t_ns + started - anchor for e in home.store.read_events(session)]
    assert events.column("t_ns").to_pylist() == stored
    assert _uploaded_timing(home) == "raw"


def test_typing_rhythm_given_after_the_session_does_not_cover_it(org: Org, home: Home) -> None:
    session = record_text(home, TEXT)
    # Given after the session was typed: its keys were typed without that consent.
    give(home.ledger, frozenset({Category.TYPING_RHYTHM}), active_policy(home.paths))
    header, _ = _upload(org, home, session)
    assert timing_of(header) == "even"


def test_a_queued_raw_bundle_goes_when_typing_rhythm_is_withdrawn(
    org: Org, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    give(home.ledger, frozenset({Category.TYPING_RHYTHM}), active_policy(home.paths))
    session = record_text(home, TEXT)
    approve(home, session)

    def unreachable(*args: object) -> None:
        raise UploadError("cannot reach the collector (test)", retryable=True)

    with monkeypatch.context() as patched:
        patched.setattr(CollectorClient, "put_bundle", unreachable)
        with pytest.raises(UploadError):
            Uploader(home.paths, home.keys, retry=Retry(attempts=1, base=0.01, cap=0.01)).run()
    assert [q.session_id for q in Outbox(home.paths.db).queued()] == [session]
    withdraw(home.ledger, frozenset({Category.TYPING_RHYTHM}), active_policy(home.paths))
    Uploader(home.paths, home.keys, retry=Retry(attempts=2, base=0.01, cap=0.01)).run()
    (name,) = [n for n in org.collector.bundles() if parse_bundle(_raw(org, n)).session == session]
    assert timing_of(parse_bundle(_raw(org, name)).header) == "even"
    assert _uploaded_timing(home) == "even"


def test_a_pause_during_the_session_keeps_its_timing_from_leaving(org: Org, home: Home) -> None:
    give(home.ledger, frozenset({Category.TYPING_RHYTHM}), active_policy(home.paths))
    now = datetime.now(UTC)
    handle = home.store.begin_session(time.time_ns(), time.monotonic_ns())
    home.ledger.append("session.started", session=handle.id)
    home.store.append_chunk(handle, typed("ab", time.monotonic_ns()))
    # A pause of 50 ms inside the session (records carry milliseconds).
    home.ledger.append("recording.paused", until=None, now=now + timedelta(milliseconds=100))
    home.ledger.append("recording.resumed", reason="person", now=now + timedelta(milliseconds=150))
    home.store.end_session(handle, time.time_ns() + 200_000_000)
    home.ledger.append("session.ended", session=handle.id)
    header, _ = _upload(org, home, handle.id)
    assert timing_of(header) == "even"


def test_typing_rhythm_withdrawn_and_given_again_after_the_session_keeps_it_even(
    org: Org, home: Home
) -> None:
    give(home.ledger, frozenset({Category.TYPING_RHYTHM}), active_policy(home.paths))
    session = record_text(home, TEXT)
    # Withdrawn after the session, then given again: what was typed before the
    # withdrawal never leaves as typed, like any category's capture before it.
    withdraw(home.ledger, frozenset({Category.TYPING_RHYTHM}), active_policy(home.paths))
    give(home.ledger, frozenset({Category.TYPING_RHYTHM}), active_policy(home.paths))
    header, _ = _upload(org, home, session)
    assert timing_of(header) == "even"
    assert _uploaded_timing(home) == "even"
