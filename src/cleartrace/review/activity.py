"""How busy each minute of a session was: the review timeline, without any content.

Minutes are counted from the session's first event (monotonic `t_ns`), so the
caller places them on the wall clock with the session's anchor. An event
stamped before the first one (threads enqueue in slightly different orders)
counts in minute 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cleartrace.events import Event, Kind

__all__ = ["MINUTE_NS", "MinuteActivity", "activity_per_minute"]

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
    if not events:
        return []
    t0 = events[0].t_ns
    counts: list[list[int]] = []  # per minute: key presses, moves, clicks, scrolls
    shaded: list[tuple[int, int]] = []
    opened = -1

    def add(minute: int, *row: int) -> None:
        if minute >= len(counts):
            counts.extend([0, 0, 0, 0] for _ in range(minute + 1 - len(counts)))
        counts[minute] = [a + b for a, b in zip(counts[minute], row, strict=True)]

    # Events come (nearly) in time order: count in locals until one leaves the minute.
    minute, low, high = 0, t0, t0 + MINUTE_NS
    keys = moves = clicks = scrolls = 0
    for event in events:
        t = event.t_ns
        if not low <= t < high:
            add(minute, keys, moves, clicks, scrolls)
            keys = moves = clicks = scrolls = 0
            minute = max(0, (t - t0) // MINUTE_NS)
            low, high = t0 + minute * MINUTE_NS, t0 + (minute + 1) * MINUTE_NS
            low = min(low, t)  # minute 0 also holds what came before the first event
        kind = event.kind
        if kind is Kind.MOVE:
            moves += 1
        elif kind is Kind.KEY_DOWN:
            keys += 1
        elif kind is Kind.BUTTON_DOWN:
            clicks += 1
        elif kind is Kind.SCROLL:
            scrolls += 1
        elif kind is Kind.EXCLUDED_START:
            opened = minute if opened < 0 else opened
        elif kind is Kind.EXCLUDED_END:
            shaded.append((minute if opened < 0 else opened, minute))
            opened = -1
    add(minute, keys, moves, clicks, scrolls)
    if opened >= 0:
        shaded.append((opened, len(counts) - 1))
    excluded = [False] * len(counts)
    for first, last in shaded:
        excluded[first : last + 1] = [True] * (last + 1 - first)
    return [
        MinuteActivity(minute, keys, moves, clicks, scrolls, excluded[minute])
        for minute, (keys, moves, clicks, scrolls) in enumerate(counts)
    ]
