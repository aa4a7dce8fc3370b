"""Ingest and key timing: raw timing only under `typing_rhythm`, re-timed once it is withdrawn."""

from __future__ import annotations

import secrets
from itertools import pairwise

import pytest

from cleartrace.events import Event, Kind
from cleartrace.upload import bundle
from cleartrace.upload.events_arrow import events_table
from cleartrace.upload.retiming import PACE_US, retime
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
