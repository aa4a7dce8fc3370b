"""The Resolver that decides a stretch at a time against the per-event loop it
replaced (tests/capture/resolve_reference.py, as of a0b81ae), on random
streams: two hook threads interleaved by delivery, late deliveries, timed and
untimed focus changes into and out of an excluded window, watcher gaps,
watermark stalls long enough to expire events, and the 32-bit server clock
wrapping.

The reference is run with its held events kept sorted by server time across
batches (the new one sorts them so on purpose); every call's output and state
must be the same.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from cleartrace.capture.base import StampedEvent
from cleartrace.capture.resolve import MAX_HELD_NS, Resolver
from cleartrace.capture.timeline import LAG_MS, UNKNOWN, FocusState, FocusTimeline, unwrap_from
from cleartrace.events import FocusText, Kind, RawEvent
from tests.capture import resolve_reference

EDITOR: FocusText = ("Gedit", None)
VAULT: FocusText = ("KeePassXC", None)
OTHER: FocusText = ("Xterm", None)
WINDOWS: list[FocusText | None] = [EDITOR, EDITOR, OTHER, OTHER, VAULT, None]
OFFSET_NS = 7_000_000_123  # monotonic ns at server time 0 (not whole ms)


def judge(window: FocusText | None) -> FocusState:
    if window is None:
        return UNKNOWN
    return FocusState(True, None) if window == VAULT else FocusState(False, window)


def wake() -> None:
    """A watcher's wake-up, for a timeline with no watcher thread."""


class SortedReference(resolve_reference.Resolver):
    """The old loop, its held events sorted by server time across batches too."""

    def add(self, batch: list[StampedEvent]) -> None:
        super().add(batch)
        self._held.sort(key=lambda item: item[0])


Op = tuple[Any, ...]


def scenario(seed: int) -> list[Op]:
    """A random run: ops in the order the writer's thread would see their effects."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible stream, not a secret
    start = rng.choice([5_000_000, (1 << 32) - 1500, (1 << 31) - 700, (1 << 32) - 40])
    span = rng.choice([1500, 3000, 9000])
    ops: list[Op] = [("start", start)]
    # Two hook threads: each delivers its own events in server-time order.
    deliveries: list[tuple[int, int, float, StampedEvent]] = []
    for kind in (Kind.KEY_DOWN, Kind.BUTTON_DOWN):
        x, last_d = start + 1, 0
        while x < start + span:
            x += rng.choice([0, 1, 1, 2, 5, 13, 40])
            delay_us = rng.randint(200, 3000)
            if rng.random() < 0.04:  # a stalled server delivers it late
                delay_us = (LAG_MS + rng.randint(1, 600)) * 1000
            d = max(last_d, x * 1_000_000 + OFFSET_NS + delay_us * 1000)
            last_d = d
            ev: StampedEvent = (d, int(kind), x % 97 + 32, 0, 0, 0, None, x & 0xFFFFFFFF)
            # Delivered at once: in its thread's order, either thread first.
            deliveries.append((d, x, rng.random(), ev))
    deliveries.sort(key=lambda item: item[:3])
    # Focus changes (timed, reported within 30 ms; untimed), watermarks, flushes.
    timed = sorted(rng.sample(range(start + 1, start + span), rng.randint(0, 12)))
    untimed = sorted(rng.sample(range(start + 1, start + span), rng.randint(0, 4)))
    stalls = [(s, s + rng.choice([200, 6000])) for s in rng.sample(range(start, start + span), 2)]
    gap = rng.choice([None, rng.randrange(start + 100, start + span)])
    timeline_ops: list[tuple[int, int, Op]] = []
    for c in timed:
        timeline_ops.append((c + rng.randint(1, 30), 0, ("timed", c, rng.choice(WINDOWS))))
    for c in untimed:
        timeline_ops.append((c, 0, ("untimed", rng.choice(WINDOWS))))
    t = start
    while t < start + span + 1000:
        t += rng.choice([20, 50, 100, 250])
        if not any(a <= t < b for a, b in stalls):
            timeline_ops.append((t, 1, ("confirm", t - 31)))
    if gap is not None:
        timeline_ops.append((gap, 2, ("gap", gap - 31, gap + rng.choice([50, 400, 7000]))))
    t = start
    while t < start + span + 1500:
        t += rng.choice([10, 200, 200, 450])
        timeline_ops.append((t, 3, ("flush", t)))
    timeline_ops.sort(key=lambda item: (item[0], item[1]))
    di = 0
    for at, _, op in timeline_ops:
        if op[0] == "flush":
            batch = []
            while di < len(deliveries) and deliveries[di][0] <= at * 1_000_000 + OFFSET_NS:
                batch.append(deliveries[di][3])
                di += 1
            ops.append(("add", batch))
        ops.append(op)
    ops.append(("add", [d[3] for d in deliveries[di:]]))
    ops.append(("final", start + span + 3000))
    return ops


def confirm(timeline: FocusTimeline, x: int, *, final: bool = False) -> None:
    timeline.confirm(x & 0xFFFFFFFF, timeline.probe_token(), x * 1_000_000 + OFFSET_NS, final=final)


def run(ops: list[Op], make: Callable[[FocusTimeline], Any]) -> list[object]:
    """Every observable result of driving a resolver through `ops`."""
    timeline = FocusTimeline(judge)
    resolver = make(timeline)
    seen: list[object] = []

    def resolve(now: int) -> None:
        view = timeline.view()
        out: list[RawEvent] = resolver.resolve(view)
        expired = resolver.expire(now * 1_000_000 + OFFSET_NS - MAX_HELD_NS)
        seen.append((now, out, expired, resolver.held, resolver.decided))
        seen.append((resolver.excluded, resolver.marked, view.offset_ns))

    for op in ops:
        match op:
            case ("start", at):
                timeline.attach(wake)
                timeline.untimed(EDITOR)
                confirm(timeline, at - 1000)
            case ("add", batch):
                resolver.add(batch)
            case ("timed", c, window):
                timeline.timed(c & 0xFFFFFFFF, window)
            case ("untimed", window):
                timeline.untimed(window)
            case ("confirm", x):
                confirm(timeline, x)
            case ("gap", x, back):
                confirm(timeline, x, final=True)
                timeline.detach(wake, final=True)
                timeline.attach(wake)
                timeline.untimed(EDITOR)
                confirm(timeline, back)
            case ("flush", now):
                resolve(now)
            case ("final", x):
                confirm(timeline, x, final=True)
                resolve(x)
    return seen


@pytest.mark.parametrize("seed", range(300))
def test_the_stretch_resolver_decides_as_the_per_event_loop_did(seed: int) -> None:
    ops = scenario(seed)
    expected = run(ops, SortedReference)
    got = run(ops, Resolver)
    for i, (want, have) in enumerate(zip(expected, got, strict=True)):
        assert have == want, f"seed {seed}: call {i // 2} differs"


def test_a_batch_that_straddles_the_server_clock_wrap_keeps_its_keys() -> None:
    """One flush holds keys from just before and just after the 32-bit server
    clock wrapped: the offset that maps server time onto the monotonic clock
    must come out the same as from two flushes, or every key after it looks
    delivered 49 days late and is never decided (then dropped as expired)."""
    wrap = 1 << 32
    timeline = FocusTimeline(judge)
    timeline.attach(wake)
    timeline.untimed(EDITOR)
    confirm(timeline, wrap - 1000)
    resolver = Resolver(timeline)

    def key(x: int, char: str) -> StampedEvent:
        d = x * 1_000_000 + OFFSET_NS + 2_000_000
        return (d, int(Kind.KEY_DOWN), ord(char), 0, 0, 0, None, x & 0xFFFFFFFF)

    resolver.add([key(wrap - 150, "a"), key(wrap + 20, "b")])
    confirm(timeline, wrap + 20 + LAG_MS + 50)
    view = timeline.view()
    out = resolver.resolve(view)
    assert [chr(ev[2]) for ev in out if ev[1] == Kind.KEY_DOWN] == ["a", "b"]
    assert resolver.held == 0
    assert view.offset_ns == OFFSET_NS  # from the watermarks: the keys came 2 ms after
    resolver.add([key(wrap + 3000, "c")])  # a later flush: nowhere near the wrap
    confirm(timeline, wrap + 3000 + LAG_MS + 50)
    out = resolver.resolve(timeline.view())
    assert [chr(ev[2]) for ev in out if ev[1] == Kind.KEY_DOWN] == ["c"]


@pytest.mark.parametrize("seed", range(0, 300, 15))
def test_a_backlog_written_in_steps_is_written_as_in_one(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer fell behind: the same backlog (two hook threads, focus
    changes into and out of the vault, gaps) written `BATCH` events at a time
    keeps the same inputs as written in one step, each delivered on time in
    the same application (the stamps of FOCUS events and markers may differ:
    each step's last delivery bounds them from below, as each flush's did
    before). An event delivered later than `LAG_MS` after its stamp is judged
    on its own and may land after a focus change already written, in a step
    as in a flush: only whether it is kept must agree."""
    import queue

    from cleartrace.capture import pipeline

    monkeypatch.setattr(pipeline, "_PROBE_WAIT", 0.001)
    ops = scenario(seed)
    end = ops[-1][1]

    def write(batch_size: int) -> list[RawEvent]:
        monkeypatch.setattr(pipeline, "BATCH", batch_size)
        timeline = FocusTimeline(judge)
        source: queue.SimpleQueue[StampedEvent] = queue.SimpleQueue()
        written: list[RawEvent] = []
        for op in ops:
            match op:
                case ("start", at):
                    timeline.attach(wake)
                    timeline.untimed(EDITOR)
                    confirm(timeline, at - 1000)
                case ("add", batch):
                    for ev in batch:
                        source.put(ev)
                case ("timed", c, window):
                    timeline.timed(c & 0xFFFFFFFF, window)
                case ("untimed", window):
                    timeline.untimed(window)
                case ("confirm", x):
                    confirm(timeline, x)
                case ("gap", x, back):
                    confirm(timeline, x, final=True)
                    timeline.detach(wake, final=True)
                    timeline.attach(wake)
                    timeline.untimed(EDITOR)
                    confirm(timeline, back)
                case ("final", x):
                    confirm(timeline, x, final=True)
        writer = pipeline.Writer(
            source, written.extend, lambda: end * 1_000_000 + OFFSET_NS, timeline
        )
        writer.flush_now(final=True)
        return written

    late = {
        ev[:7]
        for op in ops
        if op[0] == "add"
        for ev in op[1]
        if (ev[0] - OFFSET_NS) // 1_000_000 - unwrap_from(end, ev[7]) > LAG_MS
    }

    def attributed(written: list[RawEvent]) -> list[tuple[RawEvent, object]]:
        app: object = None
        out = []
        for ev in written:
            if ev[1] == Kind.FOCUS:
                app = ev[6]
            elif ev[1] == Kind.EXCLUDED_START:
                app = "excluded"
            elif ev[1] != Kind.EXCLUDED_END:
                out.append((ev, "late" if ev in late else app))
        return sorted(out, key=repr)

    assert attributed(write(61)) == attributed(write(1 << 20))


def test_a_key_queued_with_a_backlog_keeps_its_application_across_a_step() -> None:
    """The mouse hook delivered a full `BATCH` after a focus change to Xterm;
    the keyboard hook delivered, just after, a key typed in Gedit before the
    change. All are queued when the writer drains: written in one step (as
    before the backlog was split), the key comes before the FOCUS event of
    Xterm; written in two, it comes after it, so it reads as typed in Xterm."""
    import queue

    from cleartrace.capture import pipeline
    from cleartrace.capture.pipeline import Writer

    batch = getattr(pipeline, "BATCH", 16_384)  # the old writer had no steps
    t = 5_000_000
    timeline = FocusTimeline(judge)
    timeline.attach(wake)
    timeline.untimed(EDITOR)
    confirm(timeline, t - 1000)
    timeline.timed(t, OTHER)
    confirm(timeline, t + 2000)
    source: queue.SimpleQueue[StampedEvent] = queue.SimpleQueue()
    click = int(Kind.BUTTON_DOWN)
    for i in range(batch):
        x = t + 5 + i // 1000
        source.put((x * 1_000_000 + OFFSET_NS + 1_000_000, click, 1, 0, 0, 0, None, x))
    x = t - 5  # typed before the change, delivered 20 ms later
    source.put((x * 1_000_000 + OFFSET_NS + 20_000_000, int(Kind.KEY_DOWN), 97, 0, 0, 0, None, x))
    written: list[RawEvent] = []
    writer = Writer(source, written.extend, lambda: (t + 100) * 1_000_000 + OFFSET_NS, timeline)
    writer.flush_now(final=False)
    app = None
    for ev in written:
        if ev[1] == Kind.FOCUS:
            app = ev[6]
        elif ev[1] == Kind.KEY_DOWN:
            assert app == EDITOR
            break
    else:
        raise AssertionError("the key was not written")
