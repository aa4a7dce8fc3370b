"""The writer thread: from the hook queue to sealed chunks on disk.

Hooks only timestamp and enqueue (see `capture.base.Sink`). This thread wakes
every `flush_interval` seconds, drains the queue, asks the focus watcher for
a watermark and writes what it lets it decide (`capture.resolve`): events
that went to an excluded window are dropped there. It coalesces mouse moves
to the policy's rate and hands the batch to the store, which seals it as one
chunk in one transaction. An event waits until the watermark is `LAG_MS`
past it. While input keeps coming, a flush decides with the watermark the
one before it asked for (its answer came in between) rather than waiting for
a round trip with the watcher's thread, so a crash loses at most two flush
intervals plus `LAG_MS`; the first flush after a quiet spell asks and waits
(≤ 50 ms), so a lone key press is written at the next flush. An event no
watermark decides within `MAX_HELD_NS` (the focus watcher died) is dropped,
so what is held stays bounded. Events of a category whose hooks were removed
(a pause, consent withdrawn) that are still queued or held then are never
written (`Writer.withdraw`).

The screen and keyboard layouts (`capture.context`) join the stream here,
merged in by time: the whole context at the session's first event, each
change where it happened, once the exclusion markers up to its time are
decided (so it lands on the right side of them). Inside an excluded interval
none is written; the context in force is told when it ends.

At the end (stop, pause, a new session) everything held is decided: the
focus watcher's final watermark covers every event the stopped hooks
delivered, or, while hooks still run, the writer waits (≤ 1 s) for a
watermark past the last event.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from itertools import repeat
from operator import call, itemgetter

from cleartrace.capture.base import StampedEvent
from cleartrace.capture.context import CONTEXT_KINDS
from cleartrace.capture.resolve import MAX_HELD_NS, Resolver
from cleartrace.capture.timeline import FocusTimeline, TimelineView
from cleartrace.events import Kind, RawEvent

__all__ = ["BATCH", "WRITER_NICENESS", "MoveCoalescer", "Writer"]

log = logging.getLogger(__name__)

_MOVE = int(Kind.MOVE)
_START, _END = int(Kind.EXCLUDED_START), int(Kind.EXCLUDED_END)
_MONITOR, _LAYOUT = int(Kind.MONITOR), int(Kind.LAYOUT)
_PROBE_WAIT = 0.05  # a watermark is one round trip away; don't stall the writer on it
_FINAL_WAIT = 1.0  # at the end, for a watermark past the last event
#: The most events written as one chunk: a backlog is written in steps of this.
BATCH = 8_192
#: How much lower the writer thread's scheduling priority is than the process's:
#: on a busy machine the hooks' thread, whose callbacks have 5 ms, gets the CPU
#: first (a 1 M event flood beside another busy process: callbacks over 5 ms
#: fell from 27-29 to 4-6); the writer's work waits a little, nothing is lost.
WRITER_NICENESS = 10


_time: Callable[[RawEvent], int] = itemgetter(0)


class MoveCoalescer:
    """Keeps at most one mouse move per 1/hz-second bin: the last one in it.

    A pending move is emitted before any other event, so the pointer position
    at a click or key press is always exact, and when its bin has passed.
    """

    __slots__ = ("_bin_ns", "_pending")

    def __init__(self, hz: int) -> None:
        if hz <= 0:
            raise ValueError("the mouse move rate must be positive")
        self._bin_ns = 1_000_000_000 // hz
        self._pending: RawEvent | None = None

    def feed(self, batch: Sequence[RawEvent], now_ns: int) -> list[RawEvent]:
        """Coalesce one drained batch; `now_ns` decides whether a held move is final."""
        out: list[RawEvent] = []
        append = out.append
        width = self._bin_ns
        pending = self._pending
        for ev in batch:
            if ev[1] == _MOVE:
                if pending is not None and ev[0] // width != pending[0] // width:
                    append(pending)
                pending = ev
            else:
                if pending is not None:
                    append(pending)
                    pending = None
                append(ev)
        if pending is not None and now_ns // width != pending[0] // width:
            append(pending)
            pending = None
        self._pending = pending
        return out

    @property
    def pending(self) -> bool:
        """Whether a move is held for its bin to pass."""
        return self._pending is not None

    def flush(self) -> list[RawEvent]:
        """Whatever is still held, at the end of a session."""
        pending, self._pending = self._pending, None
        return [] if pending is None else [pending]


class Writer:
    """Drains `source` every `flush_interval` seconds into `sink_batch`.

    `sink_batch` is called on this thread with each non-empty coalesced batch;
    an exception from it stops the writer and is re-raised by `join()`.
    """

    def __init__(
        self,
        source: queue.SimpleQueue[StampedEvent],
        sink_batch: Callable[[list[RawEvent]], None],
        clock_ns: Callable[[], int],
        timeline: FocusTimeline,
        *,
        flush_interval: float = 0.2,
        move_hz: int = 120,
    ) -> None:
        self._source = source
        self._sink_batch = sink_batch
        self._clock_ns = clock_ns
        self._interval = flush_interval
        self._coalescer = MoveCoalescer(move_hz)
        self._timeline = timeline
        self._resolver = Resolver(timeline)
        self._stopping = threading.Event()
        self._withdrawn_lock = threading.Lock()
        # kind -> monotonic ns: events of that kind delivered up to then are not
        # written (the latest withdrawal of a kind covers every earlier one).
        self._withdrawn: dict[int, int] = {}
        self._error: BaseException | None = None
        self._opened = False  # the session's context is written
        # Exclusion as of the last batch written, the markers seen by then, and
        # whether a context change was held back inside the current exclusion.
        self._was_excluded = False
        self._marked = 0
        self._held_back = False
        # The context as written (or held back) so far, by group (screen,
        # layout): what is told again when an exclusion ends.
        self._told: dict[bool, list[RawEvent]] = {}
        self._last_ns = 0  # the latest stamp written: nothing goes before it
        # The watermark when the last flush asked for a new one (None: none
        # asked, or its answer was waited for and used).
        self._asked: int | None = None
        self._thread = threading.Thread(target=self._run, name="cleartrace-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to flush what is queued and end; idempotent."""
        self._stopping.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; whether it has ended. Re-raises the error that
        stopped it, if any."""
        self._thread.join(timeout)
        if self._error is not None:
            raise self._error
        return not self._thread.is_alive()

    def withdraw(self, kinds: frozenset[int], until_ns: int) -> None:
        """Never write events of `kinds` stamped up to monotonic `until_ns` (any
        thread): their hooks are removed, and what they delivered but is not
        written yet (held for a watermark, a coalesced move, a FOCUS event
        still to come) goes with them."""
        with self._withdrawn_lock:
            # Replaced, not changed in place: the writer reads it without the lock.
            self._withdrawn = {
                **self._withdrawn,
                **{k: max(until_ns, self._withdrawn.get(k, until_ns)) for k in kinds},
            }

    @property
    def failed(self) -> BaseException | None:
        return self._error

    def flush_now(self, *, final: bool = True) -> int:
        """Drain and write on the calling thread (when the thread is not running);
        `final` decides everything held, as at the end of a session."""
        return self._drain(final=final)

    def _drain(self, *, final: bool) -> int:
        """Write what is queued, at most `BATCH` events at a time (so that no
        single step holds the interpreter long while the hooks wait for it);
        `final` applies to the last of them."""
        written, source = 0, self._source
        while True:
            # One consumer: what qsize() counts stays there to be taken.
            n = source.qsize()
            batch = list(map(call, repeat(source.get_nowait, min(n, BATCH))))
            if n <= BATCH:
                return written + self._write(batch, final=final, more=False)
            written += self._write(batch, final=False, more=True)

    def _write(self, batch: list[StampedEvent], *, final: bool, more: bool) -> int:
        """Decide and write `batch`; `more`: the queue holds more already."""
        resolver = self._resolver
        if not (batch or final or resolver.held or self._coalescer.pending) and self._idle():
            self._asked = None  # quiet: the next input's flush asks afresh and waits
            return 0
        resolver.add(batch)
        view = self._watermark(final=final, more=more)
        decided = resolver.resolve(view, more=more)
        # Within a backlog, what waits for the next step is not given up on.
        expired, markers = (0, []) if more else resolver.expire(self._clock_ns() - MAX_HELD_NS)
        if expired:
            log.warning("%d input events the focus watcher did not place were not kept", expired)
            decided.extend(markers)
        if final and resolver.held:
            # No watermark covers them (the X server went away): where they went
            # is not known, so they are treated as excluded and not written.
            log.warning("%d input events of unknown focus were not kept", resolver.drop_undecided())
        out = self._coalescer.feed(decided, self._clock_ns())
        if final:
            out.extend(self._coalescer.flush())
        if out or self._opened:
            upto = resolver.decided
            until = None if upto is None else view.to_ns(upto)
            out = self._with_context(out, -1 if until is None else until)
        withdrawn = self._withdrawn
        if withdrawn and out:
            out = [ev for ev in out if ev[0] > withdrawn.get(ev[1], -1)]
        if out:
            self._sink_batch(out)
        return len(out)

    def _idle(self) -> bool:
        """Nothing to write: no focus change to place, no context change."""
        timeline = self._timeline
        return not self._resolver.waiting(timeline.view()) and not timeline.context.pending

    def _with_context(self, out: list[RawEvent], until: int) -> list[RawEvent]:
        """`out` with the context changes up to monotonic `until` merged in by
        time (ties: context first), the whole context at the session's first
        event, or held back to the end of the exclusion the session opens in."""
        context, resolver = self._timeline.context, self._resolver
        floor = self._last_ns
        if self._opened:
            changes = context.take(until=until)
        else:
            self._opened = True
            floor = out[0][0]
            changes = context.take(floor, until)
            if out[0][1] == _START:  # opens excluded: nothing of it yet
                self._note(changes)
                self._held_back = bool(changes)
                changes = []
        # A change handed out late never goes before what is written already.
        changes = [ev if ev[0] >= floor else (floor, *ev[1:]) for ev in changes]
        if resolver.marked == self._marked and not self._was_excluded:
            # No exclusion in this batch or before it: nothing to hold back.
            self._note(changes)
            kept = list(heapq.merge(changes, out, key=_time)) if changes else out
        else:
            self._marked = resolver.marked
            merged = list(heapq.merge(changes, out, key=_time)) if changes else out
            kept = self._outside_exclusions(merged)
            self._was_excluded = resolver.excluded
        if kept:
            self._last_ns = max(self._last_ns, max(map(_time, kept)))
        return kept

    def _note(self, changes: list[RawEvent]) -> None:
        """Keep track of the context in force as `changes` pass by, in order."""
        for ev in changes:
            if ev[1] == _MONITOR:
                self._told.setdefault(False, []).append(ev)
            else:
                self._told[ev[1] == _LAYOUT] = [ev]

    def _outside_exclusions(self, events: list[RawEvent]) -> list[RawEvent]:
        """`events` without the context changes made inside an excluded
        interval; after an interval in which one was held back, the whole
        context in force (nothing is recorded between the markers, not even
        a keyboard layout switched while a password manager had the focus)."""
        inside = self._was_excluded
        allowed = self._timeline.context.allowed
        out: list[RawEvent] = []
        for ev in events:
            kind = ev[1]
            if kind == _START:
                inside = True
            elif kind == _END:
                inside = False
                out.append(ev)
                if self._held_back:
                    told = (e for group in (False, True) for e in self._told.get(group, ()))
                    out += ((ev[0], *e[1:]) for e in told if e[1] in allowed)
                    self._held_back = False
                continue
            elif kind in CONTEXT_KINDS:
                self._note([ev])
                if inside:
                    self._held_back = True
                    continue
            out.append(ev)
        return out

    def _watermark(self, *, final: bool, more: bool = False) -> TimelineView:
        """A view of the timeline after asking for a fresh watermark, if needed
        (not for a step of a backlog the watermark covers already: a watcher
        asked again within the same millisecond has nothing new to say)."""
        timeline, resolver = self._timeline, self._resolver
        view = timeline.view()
        # A context change is written once a watermark past it decides where it goes.
        pending = self._opened and timeline.context.pending
        if not pending and (not resolver.waiting(view) or (more and resolver.covered(view))):
            self._asked = None
            return view
        if not final:
            before, asked = view.watermark, self._asked
            timeline.request()
            if more or asked is None or before == asked:
                view = timeline.wait(lambda v: v.watermark != before, _PROBE_WAIT)
                if not more:
                    timeline.request()  # its answer is the next flush's
            # Else input keeps coming: the watermark the last flush asked for
            # has come and decides what it covers, and this request's answer is
            # the next flush's. No round trip with the watcher's thread is
            # waited for at each flush (it was a third of a flush's CPU).
            self._asked = None if more else view.watermark
            return view
        deadline = time.monotonic() + _FINAL_WAIT
        while not resolver.all_decidable(view) and time.monotonic() < deadline:
            timeline.request()
            view = timeline.wait(resolver.all_decidable, 0.05)
        return view

    def _run(self) -> None:
        with contextlib.suppress(OSError):  # lowering one's own priority is always allowed
            mine = os.getpriority(os.PRIO_PROCESS, 0)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), mine + WRITER_NICENESS)
        try:
            while not self._stopping.wait(self._interval):
                self._drain(final=False)
            self._drain(final=True)
        except BaseException as exc:  # surfaced through join(); the recorder reports it
            log.error("writer stopped: %s", type(exc).__name__)
            self._error = exc
