"""How busy each minute of a session was: the review timeline, without any content.

Minutes are counted from the session's first event (monotonic `t_ns`), so the
caller places them on the wall clock with the session's anchor. An event
stamped before the first one (threads enqueue in slightly different orders)
counts in minute 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cleartrace.events import Event, Kind, RawEvent

__all__ = ["MINUTE_NS", "ActivityCount", "MinuteActivity", "activity_per_minute"]

MINUTE_NS = 60 * 10**9


@dataclass(frozen=True, slots=True)
class MinuteActivity:
    """Counts for minute `minute` (from 0); `excluded` shades a minute that was
    at least partly inside an excluded interval (nothing was recorded there)."""

    minute: int
    keys: int = 0  # key presses (auto-repeat included)
    moves: int = 0
    clicks: int = 0  # button presses
    scrolls: int = 0
    excluded: bool = False


def activity_per_minute(events: Sequence[Event]) -> list[MinuteActivity]:
    """One entry per minute from the first event's to the last event's, quiet minutes included.

    An excluded interval still open at the end shades every minute up to the
    last one; an end marker without a start shades its own minute.
    """
    counting = ActivityCount()
    counting.feed(events)
    return counting.finish()


_MOVE, _KEY_DOWN, _BUTTON_DOWN, _SCROLL = (
    int(Kind.MOVE),
    int(Kind.KEY_DOWN),
    int(Kind.BUTTON_DOWN),
    int(Kind.SCROLL),
)
_START, _END = int(Kind.EXCLUDED_START), int(Kind.EXCLUDED_END)


class ActivityCount:
    """`activity_per_minute`, fed a session a chunk at a time (`feed`, then
    `finish`): a review folds the session as the store decodes it."""

    def __init__(self) -> None:
        #: The session's first event's time, once one was fed.
        self.first_t_ns: int | None = None
        self._counts: list[list[int]] = []  # per minute: key presses, moves, clicks, scrolls
        self._shaded: list[tuple[int, int]] = []
        self._opened = -1
        # The minute being counted: its number and [low, high) on the clock.
        self._minute, self._low, self._high = 0, 0, 0

    def _add(self, minute: int, row: tuple[int, int, int, int]) -> None:
        counts = self._counts
        if minute >= len(counts):
            counts.extend([0, 0, 0, 0] for _ in range(minute + 1 - len(counts)))
        counts[minute] = [a + b for a, b in zip(counts[minute], row, strict=True)]

    def feed(self, events: Sequence[Event | RawEvent]) -> None:
        """Count the next events of the session."""
        if self.first_t_ns is None:
            if not events:
                return
            t0 = self.first_t_ns = events[0][0]
            self._low, self._high = t0, t0 + MINUTE_NS
        t0 = self.first_t_ns
        # Events come (nearly) in time order: count in locals until one leaves the minute.
        minute, low, high, opened = self._minute, self._low, self._high, self._opened
        keys = moves = clicks = scrolls = 0
        for event in events:
            t, kind = event[0], event[1]
            if not low <= t < high:
                self._add(minute, (keys, moves, clicks, scrolls))
                keys = moves = clicks = scrolls = 0
                minute = max(0, (t - t0) // MINUTE_NS)
                low, high = t0 + minute * MINUTE_NS, t0 + (minute + 1) * MINUTE_NS
                low = min(low, t)  # minute 0 also holds what came before the first event
            if kind == _MOVE:
                moves += 1
            elif kind == _KEY_DOWN:
                keys += 1
            elif kind == _BUTTON_DOWN:
                clicks += 1
            elif kind == _SCROLL:
                scrolls += 1
            elif kind == _START:
                opened = minute if opened < 0 else opened
            elif kind == _END:
                self._shaded.append((minute if opened < 0 else opened, minute))
                opened = -1
        self._add(minute, (keys, moves, clicks, scrolls))
        self._minute, self._low, self._high, self._opened = minute, low, high, opened

    def finish(self) -> list[MinuteActivity]:
        """One entry per minute, as `activity_per_minute` gives them."""
        counts, shaded = self._counts, list(self._shaded)
        if self._opened >= 0:
            shaded.append((self._opened, len(counts) - 1))
        excluded = [False] * len(counts)
        for first, last in shaded:
            excluded[first : last + 1] = [True] * (last + 1 - first)
        return [
            MinuteActivity(minute, keys, moves, clicks, scrolls, excluded[minute])
            for minute, (keys, moves, clicks, scrolls) in enumerate(counts)
        ]
