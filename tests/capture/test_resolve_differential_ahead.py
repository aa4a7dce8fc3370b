"""The bisected `state_at` and the stretch resolver where the differential test
does not reach: many focus changes ahead of the events judged (the writer far
behind the watcher), and a backlog written in steps with `more`."""

from __future__ import annotations

import random

import pytest

from cleartrace.capture.base import StampedEvent
from cleartrace.capture.resolve import Resolver
from cleartrace.capture.timeline import LAG_MS, FocusState, FocusTimeline, TimelineView
from cleartrace.events import Kind, RawEvent
from tests.capture import resolve_reference
from tests.capture.test_resolve_differential import (
    EDITOR,
    OFFSET_NS,
    WINDOWS,
    SortedReference,
    confirm,
    judge,
    run,
    wake,
)
from tests.capture.test_resolve_differential import scenario as _scenario


def old_state_at(
    view: TimelineView, x: int, *, gaps: bool = True, lag: int = LAG_MS
) -> tuple[bool, FocusState]:
    """`state_at` as of 5d85c7f: every change scanned."""
    changes = view.changes
    first = -1
    for i in range(len(changes) - 1, -1, -1):
        hi = changes[i].hi
        if hi is not None and hi < x and (gaps or not changes[i].gap):
            first = i
            break
    excluded = (view.base if first < 0 else changes[first].state).excluded
    at = first
    for i in range(first + 1, len(changes)):
        change = changes[i]
        if change.gap and not gaps:
            continue
        if change.lo - (0 if change.gap else lag) <= x:
            excluded = excluded or change.state.excluded
            if change.hi is not None and change.hi <= x:
                at = i
    state = view.base if at < 0 else changes[at].state
    return excluded or state.excluded, state


def random_timeline(seed: int) -> FocusTimeline:
    rng = random.Random(seed)  # noqa: S311
    timeline = FocusTimeline(judge)
    timeline.attach(wake)
    timeline.untimed(EDITOR)
    t = 10_000
    confirm(timeline, t)
    for _ in range(rng.randint(1, 400)):
        t += rng.choice([0, 1, 3, 20, 150])
        r = rng.random()
        if r < 0.45:  # a timed change, reported late: may be before the watermark
            timeline.timed(t - rng.choice([0, 5, 40, 300]), rng.choice(WINDOWS))
        elif r < 0.65:  # untimed: lo is the watermark, possibly far back
            timeline.untimed(rng.choice(WINDOWS))
        elif r < 0.95:
            confirm(timeline, t)
        else:  # a gap
            confirm(timeline, t, final=True)
            timeline.detach(wake, final=True)
            timeline.attach(wake)
            timeline.untimed(rng.choice(WINDOWS))
            t += rng.choice([1, 50, 400])
            confirm(timeline, t)
    return timeline


@pytest.mark.parametrize("seed", range(200))
def test_the_bisected_state_at_answers_as_the_full_scan(seed: int) -> None:
    view = random_timeline(seed).view()
    lo = min((c.lo for c in view.changes), default=10_000) - 2 * LAG_MS
    hi = max((c.hi or c.lo for c in view.changes), default=10_000) + 2 * LAG_MS
    rng = random.Random(seed)  # noqa: S311
    points = {c.lo + d for c in view.changes for d in (-LAG_MS - 1, -LAG_MS, -1, 0, 1)}
    points |= {c.hi + d for c in view.changes if c.hi is not None for d in (-1, 0, 1)}
    points |= {rng.randint(lo, hi) for _ in range(200)}
    for x in sorted(points):
        for gaps in (True, False):
            for lag in (LAG_MS, LAG_MS + 1, LAG_MS + 700):
                assert view.state_at(x, gaps=gaps, lag=lag) == old_state_at(
                    view, x, gaps=gaps, lag=lag
                ), (x, gaps, lag)


def key(x: int, delay_ms: int = 2) -> StampedEvent:
    d = x * 1_000_000 + OFFSET_NS + delay_ms * 1_000_000
    return (d, int(Kind.KEY_DOWN), x % 90 + 32, 0, 0, 0, None, x & 0xFFFFFFFF)


def ahead_run(seed: int, make: type) -> list[object]:
    """Events judged against a timeline that ran far ahead: hundreds of
    changes past the events of each flush."""
    rng = random.Random(seed)  # noqa: S311
    timeline = FocusTimeline(judge)
    timeline.attach(wake)
    timeline.untimed(EDITOR)
    start = 5_000_000
    confirm(timeline, start - 1000)
    resolver = make(timeline)
    events = []
    x = start
    for _ in range(600):
        x += rng.choice([1, 2, 7, 30])
        delay = rng.choice([1, 2, 3, 3, 3, 3, LAG_MS + 50]) if rng.random() < 0.1 else 2
        events.append(key(x, delay))
    last = x
    # The watcher: timed changes all along, untimed ones and watermarks.
    t = start
    while t < last + 500:
        t += rng.choice([3, 10, 25])
        if rng.random() < 0.6:
            timeline.timed(t - rng.randint(0, 20), rng.choice(WINDOWS))
        elif rng.random() < 0.3:
            timeline.untimed(rng.choice(WINDOWS))
        else:
            confirm(timeline, t)
    confirm(timeline, last + 600)
    seen: list[object] = []
    events.sort(key=lambda ev: ev[0])
    pos = 0
    while pos < len(events):
        n = rng.choice([1, 5, 40, 200])
        resolver.add(events[pos : pos + n])
        pos += n
        view = timeline.view()
        out: list[RawEvent] = resolver.resolve(view)
        seen.append((out, resolver.held, resolver.decided, resolver.excluded, resolver.marked))
    return seen


@pytest.mark.parametrize("seed", range(60))
def test_many_changes_ahead_of_the_events_decide_as_the_per_event_loop(seed: int) -> None:
    assert ahead_run(seed, Resolver) == ahead_run(seed, SortedReference)


def kept_with_app(out: list[RawEvent]) -> list[tuple[RawEvent, object]]:
    app: object = None
    res = []
    for ev in out:
        if ev[1] == Kind.FOCUS:
            app = ev[6]
        elif ev[1] == Kind.EXCLUDED_START:
            app = "excluded"
        elif ev[1] == Kind.EXCLUDED_END:
            app = "after-excluded"
        else:
            res.append((ev, app))
    return res


@pytest.mark.parametrize("seed", range(80))
def test_steps_with_more_keep_what_one_step_keeps(seed: int) -> None:
    """The same held events, one view: added and resolved in steps with
    `more` (the last without) keeps and attributes the same events as one."""
    rng = random.Random(seed)  # noqa: S311
    timeline = FocusTimeline(judge)
    timeline.attach(wake)
    timeline.untimed(EDITOR)
    start = 5_000_000
    confirm(timeline, start - 1000)
    evs = []
    for kind in (Kind.KEY_DOWN, Kind.BUTTON_DOWN):
        x = start
        for _ in range(300):
            x += rng.choice([0, 1, 2, 9, 30])
            ev = key(x, rng.choice([1, 2, 3, 2, 2, 2, 2, 2, 2]))
            evs.append((ev[0], int(kind), *ev[2:]))
    evs.sort(key=lambda ev: ev[0])
    last = max(ev[7] for ev in evs)
    t = start
    while t < last + 200:
        t += rng.choice([5, 40, 200])
        r = rng.random()
        if r < 0.5:
            timeline.timed(t, rng.choice(WINDOWS))
        elif r < 0.6:
            timeline.untimed(rng.choice(WINDOWS))
        confirm(timeline, t + 1)
    confirm(timeline, last + 500)
    view = timeline.view()

    one = Resolver(timeline)
    one.add(list(evs))
    whole = one.resolve(view)
    assert one.held == 0

    steps = Resolver(timeline)
    size = rng.choice([7, 50, 111])
    got: list[RawEvent] = []
    for pos in range(0, len(evs), size):
        steps.add(evs[pos : pos + size])
        got += steps.resolve(view, more=pos + size < len(evs))
    assert steps.held == 0
    assert kept_with_app(got) == kept_with_app(whole)


_ = resolve_reference


def crowded(seed: int) -> list[tuple[object, ...]]:
    """`scenario(seed)` with a timed focus change after most watermarks: the
    watcher hundreds of changes ahead of a backlog."""
    rng = random.Random(seed + 10_000)  # noqa: S311
    out: list[tuple[object, ...]] = []
    for op in _scenario(seed):
        out.append(op)
        if op[0] == "confirm" and rng.random() < 0.8:
            out.append(("timed", int(op[1]) + rng.randint(1, 30), rng.choice(WINDOWS)))
    return out


@pytest.mark.parametrize("seed", range(0, 300, 15))
def test_a_crowded_backlog_written_in_steps_is_written_as_in_one(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.capture import test_resolve_differential as base

    monkeypatch.setattr(base, "scenario", crowded)
    base.test_a_backlog_written_in_steps_is_written_as_in_one(seed, monkeypatch)


@pytest.mark.parametrize("seed", range(0, 300, 3))
def test_a_crowded_timeline_decides_as_the_per_event_loop(seed: int) -> None:
    ops = crowded(seed)
    expected = run(ops, SortedReference)
    got = run(ops, Resolver)
    assert got == expected
