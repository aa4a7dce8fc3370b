"""Deciding held input events against the focus timeline, on the writer's thread.

Input events wait here until the timeline can tell where each went (see
`cleartrace.capture.timeline`). Then an event that may have gone to an
excluded (or unknown) window is dropped, and the excluded interval is marked
by an EXCLUDED_START/EXCLUDED_END pair with no content; FOCUS events put each
kept event in its application's context, with its window's geometry. Focus changes with no input in
between are written too, at the server time they became possible, mapped to
the monotonic clock of the stored stream.

Nothing is held for ever: an event that no watermark has decided within
`MAX_HELD_NS` of its delivery (the focus watcher died, or the server is
stalled) is dropped as of unknown focus, under an excluded-interval marker.
"""

from __future__ import annotations

from bisect import bisect_left
from itertools import compress, count, islice, repeat
from operator import add, ge, gt, itemgetter, mul, sub

from cleartrace.capture.base import StampedEvent
from cleartrace.capture.timeline import (
    LAG_MS,
    FocusState,
    FocusTimeline,
    Geometry,
    TimelineView,
    unwrap_from,
)
from cleartrace.events import FocusText, Kind, RawEvent

__all__ = ["MAX_HELD_NS", "Resolver"]

#: The longest an event waits for a watermark before it is dropped.
MAX_HELD_NS = 5_000_000_000

_FOCUS, _START, _END = int(Kind.FOCUS), int(Kind.EXCLUDED_START), int(Kind.EXCLUDED_END)
_NEVER = 1 << 62
_MS = 1_000_000
_DELIVERED, _SERVER = itemgetter(0), itemgetter(7)
_TRIM = itemgetter(slice(0, 7))  # the event without its server time


class Resolver:
    """Holds stamped events until decidable; emits what may be stored, in order
    of server time.

    Not thread-safe: the writer's thread only. It runs for every event, so the
    common case (a stretch of events between two focus changes, none delivered
    late) is done a stretch at a time with C-level passes over the held
    events, kept as two parallel lists sorted by server time.
    """

    __slots__ = (
        "_decided",
        "_done",
        "_evs",
        "_excluded",
        "_last_t",
        "_marked",
        "_shown",
        "_timeline",
        "_xs",
    )

    def __init__(self, timeline: FocusTimeline) -> None:
        self._timeline = timeline
        self._xs: list[int] = []  # the held events' unwrapped server ms, ascending
        self._evs: list[StampedEvent] = []  # ... and the events
        self._done: int | None = None  # the last server time whose focus was written
        self._decided: int | None = None  # the last server time whose exclusion is written
        self._excluded = False
        self._marked = 0  # exclusion markers written so far
        # The (text, geometry) of the last FOCUS event written.
        self._shown: tuple[FocusText, Geometry] | None = None
        self._last_t = 0

    @property
    def held(self) -> int:
        return len(self._xs)

    @property
    def excluded(self) -> bool:
        """Whether the last thing written is the start of an excluded interval."""
        return self._excluded

    @property
    def marked(self) -> int:
        """How many exclusion markers were written so far (to tell that a batch has some)."""
        return self._marked

    @property
    def decided(self) -> int | None:
        """The last server time up to which every exclusion marker is written:
        what happened up to then (a layout switched) can be placed among them."""
        if self._done is None:
            return self._decided
        return self._done if self._decided is None else max(self._done, self._decided)

    def add(self, batch: list[StampedEvent]) -> None:
        if not batch:
            return
        raw = list(map(_SERVER, batch))
        ref = self._timeline.reference()
        if ref is None:
            ref = raw[0]
        # One shift unwraps the whole batch unless it straddles a wrap.
        lo, hi = min(raw), max(raw)
        shift = unwrap_from(ref, lo) - lo
        if unwrap_from(ref, hi) - hi != shift:
            xs = [unwrap_from(ref, r) for r in raw]
        else:
            xs = list(map(add, raw, repeat(shift))) if shift else raw
        evs = batch
        # The keyboard and mouse hooks deliver on two threads: a batch may
        # interleave them out of server-time order, and a batch may hold an
        # event older than one still held.
        held_xs = self._xs
        if any(map(gt, xs, islice(xs, 1, None))) or (held_xs and xs[0] < held_xs[-1]):
            xs, evs = held_xs + xs, self._evs + evs
            order = sorted(range(len(xs)), key=xs.__getitem__)  # stable
            self._xs, self._evs = (
                list(map(xs.__getitem__, order)),
                list(map(evs.__getitem__, order)),
            )
        else:
            held_xs.extend(xs)
            self._evs.extend(evs)
        # The smallest (delivery time - server time) seen maps server times onto
        # the monotonic clock, for the focus events written between inputs.
        delivered = map(_DELIVERED, batch)
        self._timeline.sample_offset(
            min(map(sub, delivered, map(mul, raw, repeat(_MS)))) - shift * _MS
        )

    def waiting(self, view: TimelineView) -> bool:
        """True while something is held or a focus change is not written yet."""
        if self._xs or self._done is None:
            return True
        return any(p > self._done for p, write in _points(view) if write)

    def all_decidable(self, view: TimelineView) -> bool:
        bound = _bound(view)
        times = map(_DELIVERED, self._evs)
        return all(_decidable(view, x, t, bound) for x, t in zip(self._xs, times, strict=True))

    def resolve(self, view: TimelineView, *, more: bool = False) -> list[RawEvent]:
        """What can be decided now: kept events, markers and FOCUS events, in order.

        `more`: events delivered already wait to be added (a backlog written in
        steps), so no transition after the last event held is written yet.

        The decision is constant between two consecutive `_points`, so it is
        computed once per stretch, not per event; crossing a point writes the
        transition there (a marker, a FOCUS event).
        """
        out: list[RawEvent] = []
        if view.watermark is None:
            return out
        bound, xs, evs = _bound(view), self._xs, self._evs
        apply, state_at = self._apply, view.state_at
        if self._done is None:
            start = (xs[0] if xs else bound) - 1
            apply(*state_at(start, gaps=False), view.to_ns(start), out)
            self._done = start
        done = self._done
        points = sorted({p for p in _points(view) if p[0] > done})
        k, end, begin = 0, points[0][0] if points else _NEVER, done  # the stretch [begin, end)
        excluded = state_at(done)[0]
        # Delivered at or after this (monotonic), an event at server time 0 was late.
        late_ns = None if view.offset_ns is None else view.offset_ns + (LAG_MS + 1) * _MS
        append, extend = out.append, out.extend
        i, n = 0, len(xs)
        while i < n:
            x, ev = xs[i], evs[i]
            if x > bound:
                break  # keep the order: what follows waits too
            # Delivered later than LAG_MS after its stamp: judged up to its delivery.
            lag = view.reach(x, ev[0])
            late = lag > LAG_MS
            if late and not _decidable(view, x, ev[0], bound):
                break
            if x >= end:
                if i:  # a transition comes after the events before it
                    self._last_t = max(self._last_t, evs[i - 1][0])
                while k < len(points) and points[k][0] <= x:
                    excluded = self._cross(view, points[k], out)
                    k += 1
                begin, end = points[k - 1][0], points[k][0] if k < len(points) else _NEVER
            if x < begin or late:  # delivered late: judged on its own
                if not (excluded and x >= begin) and not state_at(x, lag=lag)[0]:
                    append(_TRIM(ev))
                done = max(done, x)
                i += 1
                continue
            # The rest of this stretch up to the bound, to the first one delivered late.
            j = bisect_left(xs, min(end, bound + 1), i + 1, n)
            if late_ns is not None and j > i + 1:
                delivered = map(_DELIVERED, islice(evs, i + 1, j))
                lags = map(sub, delivered, map(mul, islice(xs, i + 1, j), repeat(_MS)))
                j = next(compress(count(i + 1), map(ge, lags, repeat(late_ns))), j)
            if not excluded:
                extend(map(_TRIM, islice(evs, i, j)))
            done = max(done, xs[j - 1])
            i = j
        if i == n and not more:
            while k < len(points) and points[k][0] <= bound:
                self._cross(view, points[k], out)
                done = max(done, points[k][0])
                k += 1
        if i:
            self._last_t = max(self._last_t, evs[i - 1][0])
            del xs[:i], evs[:i]
        self._done = done
        # Nothing held: every point up to the bound is crossed.
        decided = done if xs or more else max(done, bound)
        self._decided = decided if self._decided is None else max(self._decided, decided)
        self._timeline.release(xs[0] if xs else done)
        return out

    def _cross(self, view: TimelineView, point: tuple[int, bool], out: list[RawEvent]) -> bool:
        """Pass a point: write its transition (unless it bounds a gap); whether
        the events from it on are excluded."""
        at, write = point
        if write:
            self._apply(*view.state_at(at, gaps=False), view.to_ns(at), out)
        return view.state_at(at)[0]

    def expire(self, before_ns: int) -> tuple[int, list[RawEvent]]:
        """Drop the events held since before monotonic `before_ns`: how many,
        and the excluded-interval marker pair that stands for them."""
        xs, evs = self._xs, self._evs
        n = 0
        while n < len(evs) and evs[n][0] < before_ns:
            n += 1
        if not n:
            return 0, []
        first = max(min(map(_DELIVERED, evs[:n])), self._last_t)
        last = max(first, max(map(_DELIVERED, evs[:n])))
        if self._done is not None:
            self._done = max(self._done, max(xs[:n]))
        del xs[:n], evs[:n]
        if self._excluded:  # inside an excluded interval already
            return n, []
        # Closed at once: what follows is decided (and marked) as it comes.
        self._shown, self._last_t = None, last
        self._marked += 2
        return n, [(first, _START, 0, 0, 0, 0, None), (last, _END, 0, 0, 0, 0, None)]

    def drop_undecided(self) -> int:
        """Forget what could not be decided (the focus watcher is gone); how many."""
        n = len(self._xs)
        self._xs.clear()
        self._evs.clear()
        return n

    def _apply(self, excluded: bool, state: FocusState, t: int | None, out: list[RawEvent]) -> None:
        """Write the transition into (excluded, state), stamped `t` (monotonic)."""
        stamp = self._last_t if t is None else max(t, self._last_t)
        if excluded:
            if not self._excluded:
                out.append((stamp, _START, 0, 0, 0, 0, None))
                self._excluded, self._shown, self._last_t = True, None, stamp
                self._marked += 1
            return
        if self._excluded:
            out.append((stamp, _END, 0, 0, 0, 0, None))
            self._excluded, self._last_t = False, stamp
            self._marked += 1
        if state.shown is not None and (state.shown, state.geometry) != self._shown:
            out.append((stamp, _FOCUS, *state.geometry, state.shown))
            self._shown, self._last_t = (state.shown, state.geometry), stamp


def _decidable(view: TimelineView, x: int, delivered_ns: int, bound: int) -> bool:
    """Whether every change that may have come before the event's routing is known."""
    if x > bound:
        return False
    if view.final is not None or view.watermark is None:
        return view.final is not None
    return x + view.reach(x, delivered_ns) < view.watermark


def _bound(view: TimelineView) -> int:
    """The last server time whose events can be decided: `LAG_MS` before the
    watermark (no change unknown yet can have come first), or the final
    watermark (the hooks stopped before it: nothing can come first any more)."""
    bound = -_NEVER if view.watermark is None else view.watermark - LAG_MS - 1
    return bound if view.final is None else max(bound, view.final)


def _points(view: TimelineView) -> list[tuple[int, bool]]:
    """(server time, write) where the decision may change: where each change
    becomes possible (LAG_MS before it), where it counts for attribution (its
    upper bound), and where the state before it stops being possible. A gap's
    bounds change only what events are dropped (`write` False)."""
    out = []
    for change in view.changes:
        write = not change.gap
        out.append((change.lo - (LAG_MS if write else 0), write))
        if change.hi is not None:
            out += ((change.hi, write), (change.hi + 1, write))
    return out
