"""Ingest and key timing: raw timing only under `typing_rhythm`, re-timed once it is withdrawn."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from cleartrace.events import Event, Kind
from cleartrace.upload import bundle
from cleartrace.upload.events_arrow import events_table
from cleartrace.upload.retiming import FRAME_US, PACE_US, retime
from tests.support.ingest_world import ALL, POLICY, Device, World, at, ns, rejected, typed

RHYTHM = [*ALL, "typing_rhythm"]


def _session(w: World, device: Device, timing: str, events: list[Event]) -> str:
    """A session of `events` (typed between minutes 1 and 3), uploaded with `timing`."""
    session = secrets.token_hex(16)
    device.act("session.started", at(0.5), session=session)
    device.act("session.ended", at(3), session=session)
    return w.collector.upload(device, device.bundle(events, session, timing=timing))


def _events() -> list[Event]:
    return [Event(ns(at(1)), Kind.FOCUS, app="gedit"), *typed("hello", at(1.5))]


def _key_times(w: World) -> list[int]:
    return [r["t_us"] for r in w.rows() if r["kind"] in ("key_down", "key_up")]


def test_raw_timing_with_typing_rhythm_consent_is_kept_as_typed(world: World) -> None:
    device = world.device()
    device.give(at(0), RHYTHM)
    events = _events()
    _session(world, device, "raw", events)
    summary = world.ingest()
    assert summary.ok, summary.rejected
    assert _key_times(world) == [e.t_ns // 1000 for e in events if e.kind in (1, 2)]


def test_raw_timing_without_typing_rhythm_consent_is_rejected(world: World) -> None:
    device = world.device()
    device.give(at(0), ALL)
    name = _session(world, device, "raw", _events())
    summary = world.ingest()
    assert rejected(summary) == {name: "raw-timing"}
    assert world.rows() == []


def test_a_v1_bundle_from_before_timing_was_said_is_re_timed_not_refused(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = world.device()
    device.give(at(0), ALL)
    monkeypatch.setattr(bundle, "FORMAT_VERSION", 1)
    session = secrets.token_hex(16)
    device.act("session.started", at(0.5), session=session)
    device.act("session.ended", at(3), session=session)
    events = _events()
    raw = device.bundle(events, session, timing=None)
    monkeypatch.undo()
    world.collector.upload(device, raw)
    summary = world.ingest()
    assert summary.ok, summary.rejected
    keys = [e for e in events if e.kind in (Kind.KEY_DOWN, Kind.KEY_UP)]
    times = _key_times(world)
    assert len(times) == len(keys)
    assert {b - a for a, b in pairwise(times)} == {PACE_US}


def test_raw_timing_typed_while_recording_was_paused_is_rejected(world: World) -> None:
    device = world.device()
    device.give(at(0), RHYTHM)
    device.act("recording.paused", at(1.4), until=None)
    device.act("recording.resumed", at(2), reason="person")
    name = _session(world, device, "raw", _events())
    assert rejected(world.ingest()) == {name: "raw-timing"}


def test_raw_timing_whose_consent_was_withdrawn_later_is_re_timed(world: World) -> None:
    device = world.device()
    device.give(at(0), RHYTHM)
    events = _events()
    name = _session(world, device, "raw", events)
    device.act("consent.withdrawn", at(5), categories=["typing_rhythm"], policy=POLICY)
    world.collector.upload(device, device.bundle())
    summary = world.ingest()
    assert summary.ok, summary.rejected
    times = _key_times(world)
    assert len(times) == 10
    assert {b - a for a, b in pairwise(times)} == {PACE_US}
    expected = retime(events_table(events, 0)).column("t_ns").to_pylist()
    assert [r["t_us"] for r in world.rows() if r["bundle"] == name] == [t // 1000 for t in expected]


def test_even_timing_is_kept(world: World) -> None:
    device = world.device()
    device.give(at(0), ALL)
    even = retime(events_table(_events(), 0)).to_pylist()
    rows = [Event(r["t_ns"], Kind(r["kind"]), r["a"], app=r["app"]) for r in even]
    _session(world, device, "even", rows)
    assert world.ingest().ok
    assert _key_times(world) == [e.t_ns // 1000 for e in rows if e.kind in (1, 2)]


def _slow(text: str, start: datetime) -> list[Event]:
    """`text` typed at 250 ms a key, as people type: far slower than the re-timed pace."""
    out = []
    for i, char in enumerate(text):
        t = ns(start) + i * 250_000_000
        out += [Event(t, Kind.KEY_DOWN, ord(char)), Event(t + 80_000_000, Kind.KEY_UP, ord(char))]
    return out


def _as_sent(events: list[Event]) -> list[Event]:
    """`events` re-timed by the device's own `retime`, as a bundle without rhythm carries them."""
    table = retime(events_table(events, 0)).to_pylist()
    return [
        Event(r["t_ns"], Kind(r["kind"]), r["a"], r["b"], r["c"], r["d"], app=r["app"])
        for r in table
    ]


def _typed_keys(w: World) -> str:
    return "".join(chr(r["keysym"]) for r in w.rows() if r["kind"] == "key_down")


def test_a_redaction_after_an_even_bundle_drops_the_keys_typed_in_its_interval(
    world: World,
) -> None:
    device = world.device()
    device.give(at(0), ALL)
    session = secrets.token_hex(16)
    device.act("session.started", at(0.5), session=session)
    device.act("session.ended", at(3), session=session)
    raw = [
        Event(ns(at(1)), Kind.FOCUS, app="gedit"),
        *_slow("hello", at(1.5)),
        *_slow("secret", at(2)),
    ]
    sent = _as_sent(raw)
    world.collector.upload(device, device.bundle(sent, session, interval=(at(0.5), at(3))))
    # "cr" as typed: 0.5 s to 1 s into the run; re-timed, they sit in its first 40 ms.
    start = at(2) + timedelta(milliseconds=500)
    device.redact(session, start, start + timedelta(milliseconds=500), events=4, when=at(5))
    world.collector.upload(device, device.bundle())
    summary = world.ingest()
    assert summary.ok, summary.rejected
    # The whole run the redaction touches goes: its keys may have been typed anywhere in it.
    assert _typed_keys(world) == "hello"


def test_a_redaction_of_raw_keys_whose_rhythm_was_withdrawn_is_judged_on_their_raw_times(
    world: World,
) -> None:
    device = world.device()
    device.give(at(0), RHYTHM)
    session = secrets.token_hex(16)
    device.act("session.started", at(0.5), session=session)
    device.act("session.ended", at(3), session=session)
    raw = [
        Event(ns(at(1)), Kind.FOCUS, app="gedit"),
        *_slow("hello", at(1.5)),
        *_slow("secret", at(2)),
    ]
    world.collector.upload(device, device.bundle(raw, session, timing="raw"))
    start = at(2) + timedelta(milliseconds=500)
    device.redact(session, start, start + timedelta(milliseconds=400), events=4, when=at(5))
    device.act("consent.withdrawn", at(6), categories=["typing_rhythm"], policy=POLICY)
    world.collector.upload(device, device.bundle())
    summary = world.ingest()
    assert summary.ok, summary.rejected
    assert _typed_keys(world) == "helloseet"
    times = _key_times(world)
    kept = [
        e
        for e in raw
        if e.kind in (Kind.KEY_DOWN, Kind.KEY_UP)
        and not start <= _at(e) <= start + timedelta(milliseconds=400)
    ]
    expected = retime(events_table([raw[0], *kept], 0)).column("t_ns").to_pylist()[1:]
    assert times == [t // 1000 for t in expected]


def _at(event: Event) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=event.t_ns // 1000)


def _moves(start: datetime) -> list[Event]:
    """50 pointer moves 3.2 ms apart: sub-frame timing, as the pointer reports it."""
    return [Event(ns(start) + i * 3_217_123, Kind.MOVE, 10 + i, 20 + i) for i in range(50)]


def test_raw_pointer_timing_without_typing_rhythm_consent_is_rejected(world: World) -> None:
    device = world.device()
    device.give(at(0), ALL)
    name = _session(world, device, "raw", _moves(at(1)))
    assert rejected(world.ingest()) == {name: "raw-timing"}
    assert world.rows() == []


def test_raw_pointer_timing_whose_consent_was_withdrawn_later_is_put_on_frames(
    world: World,
) -> None:
    device = world.device()
    device.give(at(0), RHYTHM)
    _session(world, device, "raw", _moves(at(1)))
    device.act("consent.withdrawn", at(5), categories=["typing_rhythm"], policy=POLICY)
    world.collector.upload(device, device.bundle())
    summary = world.ingest()
    assert summary.ok, summary.rejected
    times = [r["t_us"] for r in world.rows() if r["kind"] == "move"]
    assert len(times) == 50
    assert {t % FRAME_US for t in times} == {0}


def test_raw_keys_re_timed_into_a_redaction_after_withdrawal_are_dropped(world: World) -> None:
    device = world.device()
    device.give(at(0), RHYTHM)
    session = secrets.token_hex(16)
    device.act("session.started", at(0.5), session=session)
    device.act("session.ended", at(3), session=session)
    s = ns(at(2))
    # "ab" rolled over in 8 ms, "cd" half a second later: one run, re-timed 10 ms a key.
    rolled = [(0, 1, "a"), (3, 1, "b"), (5, 2, "a"), (8, 2, "b")]
    keys = [Event(s + ms * 1_000_000, Kind(k), ord(c)) for ms, k, c in rolled]
    raw = [
        Event(ns(at(1)), Kind.FOCUS, app="gedit"),
        *keys,
        *_slow("cd", at(2) + timedelta(seconds=0.5)),
    ]
    world.collector.upload(device, device.bundle(raw, session, timing="raw"))
    start, end = at(2) + timedelta(milliseconds=9), at(2) + timedelta(milliseconds=100)
    device.redact(session, start, end, events=4, when=at(5))
    device.act("consent.withdrawn", at(6), categories=["typing_rhythm"], policy=POLICY)
    world.collector.upload(device, device.bundle())
    summary = world.ingest()
    assert summary.ok, summary.rejected
    inside = [t for t in _key_times(world) if ns(start) // 1000 <= t <= ns(end) // 1000]
    assert inside == []
    assert _key_times(world)


def test_raw_timing_a_device_calls_even_is_evened_out_at_ingest(world: World) -> None:
    # A modified device signs a header saying "even" over keys as typed: the
    # organisation still never holds the rhythm.
    device = world.device()
    device.give(at(0), ALL)
    events = _events()
    _session(world, device, "even", events)
    summary = world.ingest()
    assert summary.ok, summary.rejected
    times = _key_times(world)
    assert len(times) == sum(e.kind in (Kind.KEY_DOWN, Kind.KEY_UP) for e in events)
    assert {b - a for a, b in pairwise(times)} == {PACE_US}
