from __future__ import annotations

import itertools
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cleartrace.capture.base import StampedEvent
from cleartrace.capture.pipeline import BATCH, WRITER_NICENESS, MoveCoalescer, Writer
from cleartrace.capture.timeline import FocusState, FocusTimeline, TimelineView
from cleartrace.events import Kind, RawEvent
from tests.support.waiting import wait_for

MS = 1_000_000
MOVE, KEY = int(Kind.MOVE), int(Kind.KEY_DOWN)


def move(t_ms: float, x: int) -> RawEvent:
    return (int(t_ms * MS), MOVE, x, 0, 0, 0, None)


def clock_timeline() -> FocusTimeline:
    """A timeline whose watcher answers every request at once with the monotonic
    clock as server time: the focus never moves, from Xterm."""
    timeline = FocusTimeline(lambda window: FocusState(False, window))
    timeline.untimed(("Xterm", None))

    def wake() -> None:
        now = time.monotonic_ns()
        timeline.confirm((now // MS) & 0xFFFFFFFF, timeline.probe_token(), now)

    timeline.attach(wake)
    wake()
    return timeline


def key(code: int) -> StampedEvent:
    now = time.monotonic_ns()
    return (now, KEY, code, 0, 0, 0, None, (now // MS) & 0xFFFFFFFF)


def test_coalescer_keeps_at_most_one_move_per_bin_at_120_hz() -> None:
    c = MoveCoalescer(120)
    moves = [move(i * 1.0, i) for i in range(1000)]  # 1 kHz for one second
    out = c.feed(moves, now_ns=2_000 * MS) + c.flush()
    assert 119 <= len(out) <= 121
    assert out[-1] == moves[-1]  # the final position is never lost
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(out)]
    assert min(gaps) >= 1 * MS


def test_coalescer_emits_held_move_before_a_click_so_its_position_is_exact() -> None:
    c = MoveCoalescer(120)
    click = (int(2.5 * MS), int(Kind.BUTTON_DOWN), 7, 0, 1, 0, None)
    out = c.feed([move(1, 5), move(2, 7), click], now_ns=3 * MS)
    assert out == [move(2, 7), click]


def test_coalescer_holds_the_newest_move_until_its_bin_has_passed() -> None:
    c = MoveCoalescer(100)  # 10 ms bins
    assert c.feed([move(1, 1), move(3, 2)], now_ns=5 * MS) == []
    assert c.feed([], now_ns=12 * MS) == [move(3, 2)]


def test_writer_flushes_every_interval_and_drains_all_on_stop() -> None:
    q: queue.SimpleQueue[StampedEvent] = queue.SimpleQueue()
    batches: list[list[RawEvent]] = []
    w = Writer(q, batches.append, time.monotonic_ns, clock_timeline(), flush_interval=0.05)
    w.start()
    q.put(key(97))
    wait_for(lambda: any(ev[1] == KEY for b in batches for ev in b), timeout=2, what="the key")
    assert [ev[1:] for ev in batches[0]] == [(int(Kind.FOCUS), 0, 0, 0, 0, ("Xterm", None))]
    assert [ev[2] for b in batches for ev in b if ev[1] == KEY] == [97]
    for i in range(500):
        q.put(key(i))
    w.stop()
    w.join(timeout=2)
    written = [ev for b in batches for ev in b]
    assert [ev[2] for ev in written if ev[1] == KEY] == [97, *range(500)]
    assert all(len(ev) == 7 for ev in written)  # stored without the server time


def test_writer_error_surfaces_from_join() -> None:
    q: queue.SimpleQueue[StampedEvent] = queue.SimpleQueue()

    def broken(batch: list[RawEvent]) -> None:
        raise OSError("disk went away")

    w = Writer(q, broken, time.monotonic_ns, clock_timeline(), flush_interval=0.01)
    w.start()
    q.put(key(97))
    wait_for(lambda: w.failed is not None, timeout=2, what="the write to fail")
    with pytest.raises(OSError, match="disk went away"):
        w.join(timeout=2)
    assert isinstance(w.failed, OSError)


def test_events_of_a_withdrawn_category_still_held_are_never_written() -> None:
    """Consent for keys is withdrawn (or recording paused) while keys wait for
    a watermark: they must not be written after the withdrawal."""
    source: queue.SimpleQueue[StampedEvent] = queue.SimpleQueue()
    written: list[RawEvent] = []
    writer = Writer(source, written.extend, time.monotonic_ns, clock_timeline())
    for code in (97, 98):
        source.put(key(code))
    writer.withdraw(frozenset({KEY, int(Kind.KEY_UP)}), time.monotonic_ns())
    source.put(key(99))  # consent given again: a new hook's key is kept
    writer.flush_now()
    assert [ev[2] for ev in written if ev[1] == KEY] == [99]


def test_a_backlog_is_written_in_steps_with_every_focus_change_in_its_place() -> None:
    """A backlog of several `BATCH`es (the writer fell behind) is written a
    batch at a time; the focus changes it spans are written where they
    happened, not all before the first step's events."""
    timeline = FocusTimeline(lambda window: FocusState(False, window))
    timeline.untimed(("app0", None))
    base, x0, n, every = 10**12, 5_000, 3 * BATCH + 100, 4_000  # a change every 4,000 ms
    source: queue.SimpleQueue[StampedEvent] = queue.SimpleQueue()
    for i in range(n):
        x = x0 + i
        if i and i % every == 0:
            timeline.timed(x, (f"app{i // every}", None))
        source.put((base + x * MS + 300_000, KEY, i, 0, 0, 0, None, x))
    timeline.confirm(x0 + n, timeline.probe_token(), base + (x0 + n) * MS, final=True)
    batches: list[list[RawEvent]] = []
    writer = Writer(source, batches.append, lambda: base + (x0 + n) * MS, timeline)
    writer.flush_now()
    assert all(sum(ev[1] == KEY for ev in b) <= BATCH for b in batches)
    assert len(batches) == 4
    app, seen = None, []
    for ev in itertools.chain.from_iterable(batches):
        if ev[1] == Kind.FOCUS:
            assert ev[6] is not None
            app = ev[6][0]
        else:
            assert ev[1] == KEY
            assert app == f"app{ev[2] // every}", ev[2]
            seen.append(ev[2])
    assert seen == list(range(n))


class _Watcher:
    """A focus watcher that answers requests when told: between two flushes,
    as a real one does in the 200 ms between them."""

    def __init__(self, timeline: _CountingTimeline) -> None:
        self.timeline, self.asked = timeline, False
        timeline.untimed(("Xterm", None))
        timeline.attach(self.ask)
        self.answer()

    def ask(self) -> None:
        self.asked = True

    def answer(self) -> None:
        self.asked = False
        now = time.monotonic_ns()
        self.timeline.confirm((now // MS) & 0xFFFFFFFF, self.timeline.probe_token(), now)


class _CountingTimeline(FocusTimeline):
    """The real timeline, counting the writer's waits for a watermark."""

    def __init__(self) -> None:
        super().__init__(lambda window: FocusState(False, window))
        self.waits = 0

    def wait(self, predicate: Callable[[TimelineView], bool], timeout: float) -> TimelineView:
        self.waits += 1
        return super().wait(predicate, timeout)


def test_while_input_keeps_coming_a_flush_decides_with_the_answer_the_last_one_asked_for() -> None:
    timeline = _CountingTimeline()
    watcher = _Watcher(timeline)
    source: queue.SimpleQueue[StampedEvent] = queue.SimpleQueue()
    written: list[RawEvent] = []
    writer = Writer(source, written.extend, time.monotonic_ns, timeline)
    codes = iter(range(1000))
    for _ in range(12):  # a key every few ms, a flush every ~30 ms
        for _ in range(5):
            source.put(key(next(codes)))
            time.sleep(0.006)
        writer.flush_now(final=False)
        if watcher.asked:
            watcher.answer()  # in the time between two flushes
    assert timeline.waits == 1  # only the first flush waited for its answer
    kept = [ev[2] for ev in written if ev[1] == KEY]
    assert kept == list(range(len(kept)))  # in order, once each
    assert len(kept) >= 20  # all but the last LAG_MS and two flushes
    timeline.attach(watcher.answer)  # at the end, the writer waits for an answer
    writer.flush_now(final=True)
    assert [ev[2] for ev in written if ev[1] == KEY] == list(range(60))


def test_a_lone_key_after_a_quiet_spell_is_written_at_its_own_flush() -> None:
    timeline = _CountingTimeline()
    _Watcher(timeline)
    timeline.attach(lambda: timeline.confirm(*_now_answer(timeline)))  # answers at once
    source: queue.SimpleQueue[StampedEvent] = queue.SimpleQueue()
    written: list[RawEvent] = []
    writer = Writer(source, written.extend, time.monotonic_ns, timeline)
    source.put(key(1))
    time.sleep(0.12)  # older than LAG_MS by the flush
    writer.flush_now(final=False)
    assert [ev[2] for ev in written if ev[1] == KEY] == [1]
    writer.flush_now(final=False)  # quiet: nothing held, nothing asked
    source.put(key(2))
    time.sleep(0.12)
    waits = timeline.waits
    writer.flush_now(final=False)
    assert timeline.waits == waits + 1  # it asked, and waited for the answer
    assert [ev[2] for ev in written if ev[1] == KEY] == [1, 2]


def _now_answer(timeline: FocusTimeline) -> tuple[int, int, int]:
    now = time.monotonic_ns()
    return (now // MS) & 0xFFFFFFFF, timeline.probe_token(), now


class _ThreadWatcher:
    """A focus watcher that answers each request on a thread of its own, a
    moment later (as the X11 watcher does: a probe is a round trip)."""

    def __init__(self, timeline: _CountingTimeline) -> None:
        import threading

        self.timeline = timeline
        self._asked = threading.Event()
        self._done = False
        timeline.untimed(("Xterm", None))
        timeline.attach(self._asked.set)
        self._answer()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _answer(self) -> None:
        token = self.timeline.probe_token()
        time.sleep(0.002)  # the round trip to the X server
        now = time.monotonic_ns()
        self.timeline.confirm((now // MS) & 0xFFFFFFFF, token, now)

    def _watch(self) -> None:
        while True:
            self._asked.wait()
            self._asked.clear()
            if self._done:
                return
            self._answer()

    def stop(self) -> None:
        self._done = True
        self._asked.set()
        self._thread.join()


def test_a_lone_key_after_a_quiet_spell_of_keys_is_written_at_its_own_flush() -> None:
    """After a burst of keys then a quiet spell, the first flush that has a new
    key must ask for a watermark and wait for it (as the module says), not
    decide with the one the last flush of the burst left behind: otherwise the
    key waits one more flush (and a crash then loses it)."""
    timeline = _CountingTimeline()
    watcher = _ThreadWatcher(timeline)
    source: queue.SimpleQueue[StampedEvent] = queue.SimpleQueue()
    written: list[RawEvent] = []
    writer = Writer(source, written.extend, time.monotonic_ns, timeline)
    try:
        source.put(key(1))
        time.sleep(0.12)  # older than LAG_MS by the flush
        writer.flush_now(final=False)
        assert [ev[2] for ev in written if ev[1] == KEY] == [1]
        time.sleep(0.2)  # quiet: the watcher answers what the flush asked meanwhile
        writer.flush_now(final=False)  # nothing held, nothing written
        time.sleep(0.2)
        source.put(key(2))
        time.sleep(0.12)  # older than LAG_MS by the flush, as key 1 was
        writer.flush_now(final=False)
        assert [ev[2] for ev in written if ev[1] == KEY] == [1, 2]
    finally:
        watcher.stop()


def test_the_writer_runs_at_a_lower_priority_than_the_hooks() -> None:
    """On a busy machine the writer's work must not take the CPU from the
    thread that runs the input hooks (their callbacks have 5 ms at most)."""
    source: queue.SimpleQueue[StampedEvent] = queue.SimpleQueue()
    niceness: list[int] = []

    def sink(batch: list[RawEvent]) -> None:
        stat = Path(f"/proc/self/task/{threading.get_native_id()}/stat").read_text()
        niceness.append(int(stat.rsplit(")", 1)[1].split()[16]))

    writer = Writer(source, sink, time.monotonic_ns, clock_timeline(), flush_interval=0.01)
    writer.start()
    source.put(key(97))
    wait_for(lambda: bool(niceness), timeout=5, what="a batch written")
    writer.stop()
    writer.join(timeout=5)
    assert niceness[0] == os.getpriority(os.PRIO_PROCESS, 0) + WRITER_NICENESS
