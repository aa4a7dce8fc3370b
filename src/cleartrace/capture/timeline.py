"""What had the input focus when, in the X server's clock, for deciding exclusion by time.

A hook callback cannot know whether its event went to an excluded window: the
focus watcher learns of a focus change after the server made it, and keys
typed in the same burst reach the callbacks first. So callbacks keep the
event's server time (`x_ms`, X's millisecond clock) and the writer holds each
event until the focus watcher has confirmed the focus up to that time (a
watermark), then judges it by the focus it went to.

The watcher adds a *timed* change when the server stamped it (an XInput 2
focus event carries the server time of the change) and an *untimed* one when
it only found out (its start, a window it was not watching yet); an untimed
change may have happened any time since the last watermark and is closed by
the next one. A watermark is the time of a probe the watcher sent: every
focus change the server made before it has reached the watcher first.

Judging an event at time x is conservative in three ways: a change within
`LAG_MS` after x may still have come first (the server stamps a device event
when it reads it and routes it when it processes it, a little later), an
untimed change may lie anywhere in its span, and a change in the same
millisecond as x may lie on either side. If any state the event may have gone
to is excluded, or unknown, the event is dropped.

`LAG_MS` covers a server that keeps up. One that stalls routes events later
still, but RECORD hands an event to its client only after routing it, so the
time a hook delivered the event, mapped onto the server's clock, bounds its
routing too: an event delivered more than `LAG_MS` after its stamp is judged
against every change up to its delivery (`TimelineView.reach`).

Server times are 32-bit and wrap after 49.7 days; they are unwrapped to
Python ints against the latest time seen (the first one seen starts it).
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Callable
from itertools import accumulate
from typing import NamedTuple

from cleartrace.capture.context import Context
from cleartrace.events import FocusText

__all__ = [
    "LAG_MS",
    "UNKNOWN",
    "FocusState",
    "FocusTimeline",
    "FocusedWindow",
    "Geometry",
    "Judge",
    "TimelineView",
]

#: How long after the server stamps a device event it may still route it.
LAG_MS = 100
#: Changes are kept this long (server ms) behind the oldest event the writer
#: still holds or decided last, for an event that a slow hook thread delivers late.
_KEEP_MS = 10_000
_WRAP, _HALF = 1 << 32, 1 << 31


def unwrap_from(ref: int, raw: int) -> int:
    """The 32-bit server time `raw` on the unwrapped axis, as the value
    nearest to `ref` (the server's millisecond clock wraps every 49.7 days)."""
    return ref + ((raw - ref + _HALF) % _WRAP) - _HALF


#: A window's frame in root coordinates: x, y, width, height (zeros: unknown).
Geometry = tuple[int, int, int, int]
NO_GEOMETRY: Geometry = (0, 0, 0, 0)


class FocusState(NamedTuple):
    """What the recorder makes of one focus: excluded, and the context to store."""

    excluded: bool
    #: The (app, title) a FOCUS event stores; None when app focus has no consent.
    shown: FocusText | None
    #: The window geometry a FOCUS event stores (zeros with `shown` None).
    geometry: Geometry = NO_GEOMETRY


#: The focus is not known (before the watcher ran, a window that vanished): as excluded.
UNKNOWN = FocusState(True, None)


class FocusedWindow(NamedTuple):
    """A focused window as the watcher read it."""

    #: The class the application is known by: the window's own, else its owner's.
    app: str | None
    title: str | None
    #: (class, instance) of the window, of every window it is transient for and
    #: of its client leader: it is excluded when any of them is, so a dialog of
    #: a password manager parented to a browser window is still excluded.
    names: tuple[tuple[str | None, str | None], ...]
    #: Its top-level window's frame when it got the focus.
    geometry: Geometry = NO_GEOMETRY


#: Turns a focused window into its state; None: cannot tell.
#: Called under the timeline's lock (so that no change is judged by stale
#: rules): it must be quick and take no lock of its own.
Judge = Callable[[FocusedWindow | None], FocusState]


class _Change(NamedTuple):
    lo: int  # the change happened at or after this server time
    hi: int | None  # ... and at or before this one (None: not confirmed yet)
    state: FocusState
    serial: int
    #: After a final watermark (the watcher stopped after the hooks): certainly
    #: after every event stamped up to it, and not itself a focus change to write.
    gap: bool = False


class TimelineView(NamedTuple):
    """An immutable snapshot for the writer; see `FocusTimeline.view`."""

    base: FocusState
    changes: tuple[_Change, ...]
    watermark: int | None  # every change before it is known
    final: int | None  # every event stamped at or before it can be decided now
    offset_ns: int | None  # monotonic ns minus server ms * 10**6, smallest seen
    #: The smallest `lo` of each change and all after it: from the first whose
    #: value is past a time, no change can have come before it. (An untimed
    #: change starts at the watermark, which may be before a timed change's
    #: time, so `lo` alone is not in order.) The writer may be far behind the
    #: watcher, with thousands of changes ahead of the events it judges.
    later_lows: tuple[int, ...] = ()

    def state_at(self, x: int, *, gaps: bool = True, lag: int = LAG_MS) -> tuple[bool, FocusState]:
        """(excluded, state) of an event at server time x.

        Excluded if any state the event may have gone to is: from the last
        change certainly before x to the last one that may have come first.
        The state, for attribution, is the one after the last change known to
        have happened by x (an untimed change counts from its confirmation).
        `gaps` False leaves out the unwatched gaps (for what is written between
        events: a pause is no excluded interval). `lag`: how long after x the
        event may have been routed (`reach`).
        """
        changes = self.changes
        end = bisect_right(self.later_lows, x + lag)  # none from here on matters
        first = -1  # the last change certainly before x
        for i in range(end - 1, -1, -1):
            hi = changes[i].hi
            if hi is not None and hi < x and (gaps or not changes[i].gap):
                first = i
                break
        excluded = (self.base if first < 0 else changes[first].state).excluded
        at = first
        for i in range(first + 1, end):
            change = changes[i]
            if change.gap and not gaps:
                continue
            if change.lo - (0 if change.gap else lag) <= x:
                excluded = excluded or change.state.excluded
                if change.hi is not None and change.hi <= x:
                    at = i
        state = self.base if at < 0 else changes[at].state
        return excluded or state.excluded, state

    def to_ns(self, x: int) -> int | None:
        return None if self.offset_ns is None else x * 1_000_000 + self.offset_ns

    def reach(self, x: int, delivered_ns: int) -> int:
        """How long after server time x an event delivered at monotonic
        `delivered_ns` may have been routed: `LAG_MS`, or longer when it was
        delivered later than that (the server had stalled)."""
        if self.offset_ns is None:
            return LAG_MS
        return max(LAG_MS, (delivered_ns - self.offset_ns) // 1_000_000 - x)


class FocusTimeline:
    """Shared by the focus watcher (writes), the writer (reads) and the recorder.

    Thread-safe; every method is quick (no I/O under the lock).
    """

    def __init__(self, judge: Judge) -> None:
        self._judge = judge
        self._cond = threading.Condition(threading.Lock())
        self._base = UNKNOWN
        self._changes: list[_Change] = []
        self._serial = 0
        self._watermark: int | None = None
        self._final: int | None = None
        self._ref: int | None = None  # the latest server time seen, for unwrapping
        self._offset: int | None = None
        self._wanted = False
        self._wake: Callable[[], None] | None = None
        self._window: FocusedWindow | None = None  # the latest window reported
        self.current = UNKNOWN  # the latest state, for status (not for judging events)
        #: The screen and keyboard layout, reported by the same watcher.
        self.context = Context()

    # -- the watcher's side --------------------------------------------------

    def unwrap(self, raw: int) -> int:
        """A 32-bit server time as an int on the timeline's unwrapped axis."""
        ref = self._ref
        if ref is None:  # the first time seen is itself: no jump at 2**31
            return raw
        return unwrap_from(ref, raw)

    def _seen(self, raw: int) -> int:
        """Unwrap `raw` and move the reference up to it (under the lock)."""
        ms = self.unwrap(raw)
        if self._ref is None or ms > self._ref:
            self._ref = ms
        return ms

    def attach(self, wake: Callable[[], None]) -> None:
        """A watcher starts; `wake` (any thread) makes it probe soon."""
        with self._cond:
            self._wake = wake

    def detach(self, wake: Callable[[], None], *, final: bool) -> None:
        """The watcher that attached `wake` stopped: nothing is known after its
        last watermark (`final`: the watermark it confirmed as it stopped).
        A watcher that ends after another one attached changes nothing."""
        with self._cond:
            if self._wake != wake:
                return
            self._wake = None
            if final and self._final is not None:
                self._changes.append(_Change(self._final + 1, None, UNKNOWN, self._serial, True))
                self._serial += 1
                self.current = UNKNOWN
            else:
                self._untimed(UNKNOWN)

    def timed(self, raw_ms: int, window: FocusedWindow | None) -> None:
        """The focus moved to `window` at server time `raw_ms`."""
        with self._cond:  # judged under the lock: see rejudge
            ms = self._seen(raw_ms)
            self._window = window
            self._add(ms, ms, self._judge(window))

    def untimed(self, window: FocusedWindow | None) -> None:
        """The focus is on `window` now, since some time after the last watermark."""
        with self._cond:
            self._window = window
            self._untimed(self._judge(window))

    def to_ns(self, raw_ms: int) -> int | None:
        """Server time `raw_ms` on the monotonic clock of the stored stream
        (None before any offset is known)."""
        with self._cond:
            return self._view().to_ns(self.unwrap(raw_ms))

    def probe_token(self) -> int:
        """Taken just before sending a probe; passed back to `confirm`."""
        with self._cond:
            self._wanted = False
            return self._serial

    def confirm(self, raw_ms: int, token: int, mono_ns: int, *, final: bool = False) -> None:
        """The probe sent after `probe_token()` returned `token` came back stamped
        `raw_ms` (received at monotonic `mono_ns`): every change before it is known.

        `final`: the input hooks had stopped before the probe, so every event
        they delivered can be decided now.
        """
        with self._cond:
            ms = self._seen(raw_ms)
            self._changes = [
                c._replace(hi=ms) if c.hi is None and c.serial < token else c for c in self._changes
            ]
            if self._watermark is None or ms > self._watermark:
                self._watermark = ms
            if final:
                self._final = ms
            offset = mono_ns - ms * 1_000_000
            if self._offset is None or offset < self._offset:
                self._offset = offset
            self._cond.notify_all()

    def wanted(self) -> bool:
        """True when the writer asked for a probe since the last `probe_token()`."""
        return self._wanted

    # -- the recorder's side ---------------------------------------------------

    def rejudge(self) -> None:
        """Judge the focused window again (consent or exclusions changed).

        Read, judged and recorded under one lock: a focus change reported in
        between would otherwise be overwritten by the window before it.
        """
        with self._cond:
            if self._watermark is not None:
                self._untimed(self._judge(self._window))
        self.request()

    # -- the writer's side -------------------------------------------------------

    def request(self) -> None:
        """Ask the watcher for a new watermark (it probes at once)."""
        with self._cond:
            self._wanted = True
            wake = self._wake
        if wake is not None:
            wake()

    def wait(self, predicate: Callable[[TimelineView], bool], timeout: float) -> TimelineView:
        """Wait until `predicate(view)` holds or `timeout` passes; the latest view."""
        with self._cond:
            self._cond.wait_for(lambda: predicate(self._view()), timeout)
            return self._view()

    def view(self) -> TimelineView:
        with self._cond:
            return self._view()

    def release(self, oldest: int) -> None:
        """The writer needs no state before server time `oldest` any more."""
        with self._cond:
            self._prune(oldest - _KEEP_MS)

    def reference(self) -> int | None:
        """The latest server time seen (unwrapped), to unwrap others against."""
        return self._ref

    def sample_offset(self, offset_ns: int) -> None:
        """An event delivered at monotonic t had server time x: offset t - x * 10**6."""
        with self._cond:
            if self._offset is None or offset_ns < self._offset:
                self._offset = offset_ns

    # -- internals -----------------------------------------------------------------

    def _view(self) -> TimelineView:
        changes = tuple(self._changes)
        lows = tuple(accumulate(reversed([c.lo for c in changes]), min))[::-1]
        return TimelineView(self._base, changes, self._watermark, self._final, self._offset, lows)

    def _untimed(self, state: FocusState) -> None:
        if self._watermark is None:
            self._base = state  # before the first watermark no event is judged
            self.current = state
            return
        self._add(self._watermark, None, state)

    def _add(self, lo: int, hi: int | None, state: FocusState) -> None:
        last = self._changes[-1].state if self._changes else self._base
        self.current = state
        if state == last:
            return
        self._changes.append(_Change(lo, hi, state, self._serial))
        self._serial += 1

    def _prune(self, before: int) -> None:
        changes = self._changes
        keep = 0
        while keep < len(changes) - 1:
            hi = changes[keep].hi
            if hi is None or hi >= before:
                break
            keep += 1
        if keep:
            self._base = changes[keep - 1].state
            del changes[:keep]
